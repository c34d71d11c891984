"""The types errand's daemon speaks with its front ends, beside those of
:mod:`errand.wire.protocol`.

The daemon protocol is JSON-RPC 2.0 over a Unix socket, with the same
``Content-Length`` framing as LSP. A front end opens it with :data:`HELLO`; then it
sends the engine's commands by their names (``errand.delegate``, ...), with the same
params and results as over LSP, and receives the same notifications
(``errand/taskChanged``, ``errand/taskLog``). What an editor must do itself (read its
open buffers, send ``workspace/applyEdit``) stays in the front end: the daemon plans an
apply (:data:`PLAN`) and the front end carries the plan out, then says so
(:data:`APPLIED`).
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from errand.wire.changes import ApplyPlan, OpenFile
from errand.wire.protocol import FileStat, Task, Wire

PROTOCOL_VERSION: Final = 1
"""Bumped on any change a front end of another version could not follow."""

HELLO: Final = "errand/hello"
STATUS: Final = "errand/status"
STOP: Final = "errand/stop"
DIFF: Final = "errand/diff"
PLAN: Final = "errand/plan"
APPLIED: Final = "errand/applied"
WAIT: Final = "errand/wait"

FrontEnd = Literal["lsp", "cli", "bench"]


class Hello(Wire, forbid_unknown_fields=True):
    protocol: int
    version: str
    client: FrontEnd = "lsp"


class HelloResult(Wire):
    protocol: int
    version: str
    pid: int
    data_dir: str
    started_at: str


class StatusResult(Wire):
    """``errand/status``: allowed before ``errand/hello``, so that a front end of
    another version can see whether this daemon may be replaced."""

    pid: int
    version: str
    protocol: int
    socket: str
    data_dir: str
    started_at: str
    uptime_s: float
    clients: int
    running_attempts: int


class StopParams(Wire, forbid_unknown_fields=True):
    force: bool = False
    """Stop even when attempts run (they end as interrupted)."""


class DiffParams(Wire, forbid_unknown_fields=True):
    task_id: str
    attempt: int | None = None


class DiffResult(Wire):
    diff: str
    files: list[FileStat]
    attempt: int


class PlanParams(Wire, forbid_unknown_fields=True):
    task_id: str
    attempt: int | None = None
    files: list[str] | None = None
    opened: dict[str, OpenFile] = msgspec.field(default_factory=dict)
    """The front end's open buffers by absolute path; other files are read from disk."""
    preview: bool = False
    """What getDiff shows (any attempt; its changes when it did not complete) rather than
    what Apply writes (a completed attempt only)."""


class PlanResult(Wire):
    attempt: int
    repository: str
    plan: ApplyPlan


class WaitResult(Wire):
    task: Task
