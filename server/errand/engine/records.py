"""What the store keeps of tasks and attempts, each body with a schema version.

A task's record holds its facts (prompts, repository, snapshot, ...); everything
derived from its attempts (status, diff stat, check counts, reason) is computed by
:mod:`errand.engine.state` and never stored. An attempt's record wraps its wire view
with what only the engine needs: the result tree and where its copy lives.
"""

from __future__ import annotations

import msgspec

from errand.hosts.base import HostRef
from errand.wire.protocol import Attempt, Mode
from errand.workspace.snapshot import Snapshot

TASK_VERSION = 1
ATTEMPT_VERSION = 1


class TaskRecord(msgspec.Struct, kw_only=True):
    v: int = TASK_VERSION
    task_id: str
    title: str
    mode: Mode
    created_at: str
    updated_at: str
    prompts: list[str]
    """The delegated prompt, then each follow-up."""
    attempt_count: int
    repository: str | None = None
    snapshot: Snapshot | None = None
    problem: str | None = None
    """Why the task could not start (the workspace could not be snapshotted)."""
    applied: bool = False


class AttemptRecord(msgspec.Struct, kw_only=True):
    v: int = ATTEMPT_VERSION
    info: Attempt
    result_tree: str | None = None
    host: HostRef | None = None
