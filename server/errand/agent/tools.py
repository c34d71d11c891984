"""The two tools offered to the model: ``shell`` and ``apply_patch``.

Every command is recorded with a chunk id before its result reaches the model, so
the report's checks and citations can be verified against what really ran.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import msgspec

from errand.models.base import ToolCall, ToolSpec
from errand.sandbox.base import ExecResult, OutputSink

SHELL = ToolSpec(
    name="shell",
    description=(
        "Run a command with `bash -lc` in the root of your copy of the repository. "
        "No network. Returns the exit code, a chunk id to cite, and the output "
        "(the middle is cut when long)."
    ),
    parameters={
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The bash command line to run."},
            "timeout_ms": {
                "type": "integer",
                "description": "Kill the command after this many milliseconds.",
            },
        },
        "required": ["command"],
        "additionalProperties": False,
    },
)

APPLY_PATCH = ToolSpec(
    name="apply_patch",
    description=(
        "Edit files. The patch starts with `*** Begin Patch` and ends with `*** End Patch`; "
        "each file section is `*** Add File: path`, `*** Delete File: path` or "
        "`*** Update File: path` (optionally followed by `*** Move to: path`), then lines "
        "prefixed with '+', '-' or ' ' (context), with `@@ anchor` lines to locate hunks. "
        "Paths are relative to the repository root. All-or-nothing."
    ),
    parameters={
        "type": "object",
        "properties": {"patch": {"type": "string", "description": "The whole patch text."}},
        "required": ["patch"],
        "additionalProperties": False,
    },
)


T = TypeVar("T")


class ShellArgs(msgspec.Struct, forbid_unknown_fields=True):
    command: str
    timeout_ms: int | None = None


class PatchArgs(msgspec.Struct, forbid_unknown_fields=True):
    patch: str


@dataclass(frozen=True, slots=True)
class CommandRecord:
    chunk_id: str
    command: str
    exit_code: int
    duration_ms: int
    output: str
    timed_out: bool
    started_at: float

    @classmethod
    def of(
        cls, chunk_id: str, command: str, result: ExecResult, started_at: float
    ) -> CommandRecord:
        """The record of ``command``, run as ``chunk_id`` from ``started_at`` (epoch s)."""
        return cls(
            chunk_id=chunk_id,
            command=command,
            exit_code=result.exit_code,
            duration_ms=result.duration_ms,
            output=result.output,
            timed_out=result.timed_out,
            started_at=started_at,
        )


class Recorder(Protocol):
    """Where the toolbox reports each command as it starts, streams and ends."""

    def command_started(self, chunk_id: str, command: str) -> None: ...

    def command_output(self, chunk_id: str, text: str) -> None: ...

    def command_finished(self, record: CommandRecord) -> None: ...

    def files_changed(self, summary: str) -> None: ...


class Runner(Protocol):
    """Runs one command in the attempt's copy (the host's sandboxed shell)."""

    async def run(
        self, command: str, *, timeout_s: float | None = None, on_output: OutputSink | None = None
    ) -> ExecResult: ...


class PatchReply(Protocol):
    @property
    def applied(self) -> bool: ...

    @property
    def text(self) -> str:
        """The files the patch changed, or why it changed nothing."""
        ...


class Patcher(Protocol):
    """Applies an ``apply_patch`` patch to the attempt's copy, all or nothing."""

    async def apply_patch(self, patch: str) -> PatchReply: ...


@dataclass(frozen=True, slots=True)
class ToolOutput:
    text: str
    """What the model reads."""
    header: str = ""
    """The lines that stay when the output is trimmed to save context (a command's
    chunk id and exit code, say)."""


class Toolbox:
    def __init__(
        self,
        shell: Runner,
        patcher: Patcher | None,
        *,
        recorder: Recorder,
        next_chunk_id: Callable[[], str],
        max_timeout_s: float,
    ) -> None:
        """``patcher`` is None for a read-only attempt: ``apply_patch`` is not offered."""
        self._shell = shell
        self._patcher = patcher
        self._recorder = recorder
        self._next_chunk_id = next_chunk_id
        self._max_timeout_s = max_timeout_s

    @property
    def specs(self) -> list[ToolSpec]:
        return [SHELL, APPLY_PATCH] if self._patcher is not None else [SHELL]

    async def call(self, call: ToolCall) -> ToolOutput:
        """Run one tool call. Bad calls produce an error text for the model, never
        an exception."""
        if call.name == SHELL.name:
            shell_args = _decode(
                call.arguments, ShellArgs, '{"command": string, "timeout_ms"?: int}'
            )
            if isinstance(shell_args, str):
                return ToolOutput(shell_args)
            return await self._run(shell_args)
        if call.name == APPLY_PATCH.name and self._patcher is not None:
            patch_args = _decode(call.arguments, PatchArgs, '{"patch": string}')
            if isinstance(patch_args, str):
                return ToolOutput(patch_args)
            return await self._apply_patch(self._patcher, patch_args)
        names = ", ".join(spec.name for spec in self.specs)
        return ToolOutput(f"error: unknown tool {call.name!r}; available tools: {names}")

    async def _run(self, args: ShellArgs) -> ToolOutput:
        timeout_s = self._max_timeout_s
        if args.timeout_ms is not None and args.timeout_ms > 0:
            timeout_s = min(timeout_s, args.timeout_ms / 1000)
        chunk_id = self._next_chunk_id()
        self._recorder.command_started(chunk_id, args.command)
        started = time.time()
        result = await self._shell.run(
            args.command,
            timeout_s=timeout_s,
            on_output=lambda text: self._recorder.command_output(chunk_id, text),
        )
        self._recorder.command_finished(CommandRecord.of(chunk_id, args.command, result, started))
        note = ""
        if result.timed_out:
            note = f"note: killed after {timeout_s:g}s timeout\n"
        elif result.killed_reason:
            note = f"note: killed ({result.killed_reason})\n"
        header = (
            f"chunk_id: {chunk_id}\nexit_code: {result.exit_code}\n"
            f"duration_ms: {result.duration_ms}\n{note}"
        )
        return ToolOutput(f"{header}output:\n{result.output}", header.rstrip("\n"))

    async def _apply_patch(self, patcher: Patcher, args: PatchArgs) -> ToolOutput:
        reply = await patcher.apply_patch(args.patch)
        if not reply.applied:
            return ToolOutput(f"error: {reply.text}")
        self._recorder.files_changed(reply.text)
        return ToolOutput(f"patch applied:\n{reply.text}")


def _decode(raw: str, kind: type[T], shape: str) -> T | str:
    try:
        return msgspec.json.decode(raw.encode() if raw else b"{}", type=kind)
    except msgspec.DecodeError as exc:
        hint = "" if _is_json(raw) else " (not valid JSON)"
        return f"error: bad arguments{hint}: {exc}; expected {shape}"


def _is_json(raw: str) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True
