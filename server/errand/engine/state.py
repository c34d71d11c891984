"""A task's state in memory, and everything derived from it.

What a task *is* lives in its :class:`~errand.engine.records.TaskRecord` and its
attempts' wire views; its status, diff stat, check counts and reason are derived from
the attempts by :func:`summarize`, the one place that says how.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

from errand.agent.tools import CommandRecord
from errand.engine.records import AttemptRecord, TaskRecord
from errand.hosts.base import AttemptHost, HostRef
from errand.models.base import Item
from errand.wire.protocol import TERMINAL_STATUSES, Attempt, Status, Task, TaskSummary

CANCELLED = "cancelled by the user"
INTERRUPTED = "interrupted"
"""The reason of an attempt whose server or daemon died while it ran."""
FOLLOW_UP = "\n\nFollow-up: "


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_title(prompt: str) -> str:
    line = next((line.strip() for line in prompt.splitlines() if line.strip()), "task")
    return line if len(line) <= 72 else line[:71].rstrip() + "…"


def default_branch_name(title: str, task_id: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40].strip("-")
    return f"errand/{slug or 'task'}-{task_id}"


def aggregate_status(statuses: list[Status]) -> Status:
    """Running if any attempt runs, else preparing, else queued; once all have ended,
    completed if any completed, else cancelled if any was, else failed."""
    order: tuple[Status, ...] = ("running", "preparing", "queued", "completed", "cancelled")
    return next((status for status in order if status in statuses), "failed")


def default_attempt(attempts: list[Attempt]) -> int:
    """The first completed attempt, else the first one."""
    return next((a.attempt for a in attempts if a.status == "completed"), 1)


def summarize(record: TaskRecord, attempts: list[Attempt]) -> TaskSummary:
    status = aggregate_status([a.status for a in attempts])
    chosen = (
        attempts[default_attempt(attempts) - 1] if attempts else Attempt(attempt=1, status=status)
    )
    reason = None
    if status == "failed":
        reason = record.problem or next((a.reason for a in attempts if a.reason), None)
    elif status == "cancelled":
        reason = CANCELLED
    return TaskSummary(
        task_id=record.task_id,
        title=record.title,
        mode=record.mode,
        status=status,
        created_at=record.created_at,
        updated_at=record.updated_at,
        attempt_count=record.attempt_count,
        diff_stat=msgspec.structs.replace(chosen.diff_stat),
        reason=reason,
        repository=record.repository,
        checks_passed=sum(c.passed for c in chosen.checks),
        checks_failed=sum(not c.passed for c in chosen.checks),
        applied=record.applied,
    )


def task_view(record: TaskRecord, attempts: list[Attempt]) -> Task:
    summary = summarize(record, attempts)
    fields = {name: getattr(summary, name) for name in TaskSummary.__struct_fields__}
    return Task(**fields, prompt=FOLLOW_UP.join(record.prompts), attempts=list(attempts))


@dataclass(slots=True)
class AttemptState:
    """One attempt: its wire view, as it runs, and what only the engine needs."""

    info: Attempt
    host: AttemptHost | None = None
    host_ref: HostRef | None = None
    result_tree: str | None = None
    conversation: list[Item] = field(default_factory=list)
    commands: list[CommandRecord] = field(default_factory=list)
    setup_outputs: dict[str, str] = field(default_factory=dict)
    check_extra: list[str] = field(default_factory=list)
    chunk_seq: int = 0
    runner: asyncio.Task[None] | None = None
    finishing: bool = False
    """The attempt's work is done and its result is being recorded."""

    def next_chunk_id(self) -> str:
        self.chunk_seq += 1
        return f"c{self.info.attempt}-{self.chunk_seq}"

    def record(self) -> AttemptRecord:
        return AttemptRecord(info=self.info, result_tree=self.result_tree, host=self.host_ref)

    @property
    def active(self) -> bool:
        return self.runner is not None and not self.runner.done()


@dataclass(slots=True)
class TaskState:
    record: TaskRecord
    attempts: list[AttemptState] = field(default_factory=list)
    prepared: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def task_id(self) -> str:
        return self.record.task_id

    def infos(self) -> list[Attempt]:
        return [a.info for a in self.attempts]

    def summary(self) -> TaskSummary:
        return summarize(self.record, self.infos())

    def task(self) -> Task:
        return task_view(self.record, self.infos())

    @property
    def ended(self) -> bool:
        return all(a.info.status in TERMINAL_STATUSES for a in self.attempts)

    def touch(self) -> None:
        self.record.updated_at = now_iso()
