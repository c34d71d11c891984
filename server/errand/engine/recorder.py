"""Where the toolbox's command events go: the journal, and the attempt's own record."""

from __future__ import annotations

from errand.agent.evidence.checks import checks_from
from errand.agent.tools import CommandRecord
from errand.engine.journal import Journal
from errand.engine.state import AttemptState, TaskState
from errand.wire.protocol import LogKind


class Recorder:
    """A :class:`~errand.agent.tools.Recorder` for one attempt. A setup script's command
    is recorded and logged but is never a check."""

    def __init__(
        self, journal: Journal, state: TaskState, attempt: AttemptState, *, setup: bool = False
    ) -> None:
        self._journal = journal
        self._state = state
        self._attempt = attempt
        self._setup = setup

    def _log(self, kind: LogKind, **fields: object) -> None:
        self._journal.log(self._state, self._attempt, kind, **fields)

    def command_started(self, chunk_id: str, command: str) -> None:
        self._log("commandStarted", chunk_id=chunk_id, command=command)

    def command_output(self, chunk_id: str, text: str) -> None:
        self._log("output", chunk_id=chunk_id, text=text)

    def command_finished(self, record: CommandRecord) -> None:
        self._log(
            "commandFinished",
            chunk_id=record.chunk_id,
            command=record.command,
            exit_code=record.exit_code,
            duration_ms=record.duration_ms,
        )
        attempt = self._attempt
        if self._setup:
            attempt.setup_outputs[record.chunk_id] = record.output
        else:
            attempt.commands.append(record)
            attempt.info.checks = checks_from(attempt.commands, attempt.check_extra)
        self._journal.save_command(self._state, attempt, record)

    def files_changed(self, summary: str) -> None:
        self._log("message", command="apply_patch", text=summary)
