"""The attempt host: the place that holds one attempt's copy and runs its commands.

The engine chooses a host per attempt and speaks to it only through this interface;
the agent's tools speak only to the host's shell and patcher. The local host keeps the
copy on this machine; another host (a cluster node) keeps it elsewhere, and nothing
above this interface changes.

A host's life: :meth:`AttemptHost.prepare` makes the copy from a snapshot (or reopens
it for a follow-up); :meth:`AttemptHost.shell` opens a sandboxed shell in it for one
phase (the setup script with network and secrets, the agent without); the agent edits
through :meth:`AttemptHost.apply_patch` and reads through
:meth:`AttemptHost.read_files`; :meth:`AttemptHost.result` records what changed;
:meth:`AttemptHost.release` lets go of what the copy holds between turns, and
:meth:`AttemptHost.discard` removes it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

import msgspec

from errand.sandbox.base import ExecResult, OutputSink
from errand.workspace.results import DiffResult
from errand.workspace.snapshot import Snapshot


class HostRef(msgspec.Struct, kw_only=True):
    """What the store keeps of a host, enough to find its copy again after a restart."""

    kind: str
    """``local``, or another host kind."""
    path: str
    index: str
    copy_kind: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PatchOutcome:
    applied: bool
    text: str
    """The files the patch changed (one line each), or why it changed nothing."""


@dataclass(frozen=True, slots=True)
class ShellOptions:
    writable: bool
    """False for ask mode: the copy is read-only to the commands."""
    timeout_s: float
    network: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    """Extra variables for the commands (never the server's own environment)."""


class Shell(Protocol):
    """A sandboxed shell in the copy, for one phase of the attempt."""

    name: str
    """The sandbox backend: ``bwrap``, ``docker`` or ``none``."""
    warnings: tuple[str, ...]

    async def run(
        self, command: str, *, timeout_s: float | None = None, on_output: OutputSink | None = None
    ) -> ExecResult: ...


class AttemptHost(Protocol):
    node: str
    """Where the copy lives: ``local`` or a cluster node's id."""

    async def prepare(self, snapshot: Snapshot) -> HostRef:
        """Make the copy of ``snapshot``, or reopen the one this host already has."""
        ...

    def shell(self, options: ShellOptions) -> AbstractAsyncContextManager[Shell]: ...

    async def apply_patch(self, patch: str) -> PatchOutcome:
        """Apply an ``apply_patch`` patch to the copy, all or nothing."""
        ...

    async def read_files(self, paths: Sequence[str]) -> dict[str, bytes | None]:
        """The contents of regular files inside the copy by relative path; None for a
        path that is missing, not a file, under ``.git`` or leads outside the copy."""
        ...

    async def disk_usage(self) -> int:
        """Bytes the copy uses of its own (a shared base is not counted)."""
        ...

    async def result(self) -> DiffResult:
        """Record the copy's state in errand's mirror and diff it against the snapshot."""
        ...

    async def release(self) -> None: ...

    async def discard(self) -> None: ...


class HostPool(Protocol):
    """Makes hosts, finds them again, and tidies what they leave behind."""

    async def start(self) -> None:
        """Clean up after a crashed server (commands, containers)."""
        ...

    def new(self, task_id: str, attempt: int) -> AttemptHost: ...

    def restore(self, ref: HostRef) -> AttemptHost: ...

    async def collect_garbage(
        self, live: Collection[HostRef], running: Collection[HostRef]
    ) -> None:
        """Remove copies no attempt knows; unmount those not ``running``."""
        ...
