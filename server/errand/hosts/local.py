"""The local host: attempt copies on this machine, commands in this machine's sandbox.

A copy is made by the data folder's :class:`~errand.workspace.copies.choice.CopyManager`
(overlay, reflink or checkout) and held while an attempt works in it. Commands run in
the configured sandbox backend, with the object folders the copy's ``.git`` borrows
bound read-only so that ``git`` works inside.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from pathlib import Path, PurePosixPath

from errand.config.paths import DataPaths
from errand.hosts.base import HostRef, PatchOutcome, Shell, ShellOptions
from errand.patch import PatchError, apply_patch
from errand.sandbox import Limits, SandboxSpec, open_sandbox
from errand.workspace.copies.base import TaskCopy, object_alternates
from errand.workspace.copies.choice import CopyManager, choose_provider
from errand.workspace.copies.gc import collect_garbage
from errand.workspace.results import DiffResult, record_result
from errand.workspace.snapshot import Snapshot

log = logging.getLogger(__name__)

KIND = "local"
READ_LIMIT = 16 << 20
"""A file read for the engine (a cited file, AGENTS.md) is cut at this many bytes."""


class LocalHost:
    node = KIND

    def __init__(self, pool: LocalHosts, dest: Path, copy: TaskCopy | None = None) -> None:
        self._pool = pool
        self._dest = dest
        self._copy = copy
        self._snapshot: Snapshot | None = None

    @property
    def copy(self) -> TaskCopy:
        if self._copy is None:
            raise RuntimeError("the attempt's copy was not prepared")
        return self._copy

    async def prepare(self, snapshot: Snapshot) -> HostRef:
        self._snapshot = snapshot
        copies = self._pool.copies
        if self._copy is None:
            self._copy = await asyncio.to_thread(copies.create, snapshot, self._dest)
        else:
            await asyncio.to_thread(copies.reopen, self._copy)
        return self.ref()

    def ref(self) -> HostRef:
        c = self.copy
        return HostRef(
            kind=KIND, path=str(c.path), index=str(c.index), copy_kind=c.kind, reason=c.reason
        )

    @asynccontextmanager
    async def shell(self, options: ShellOptions) -> AsyncIterator[Shell]:
        root = self.copy.path
        spec = SandboxSpec(
            root=root,
            writable=options.writable,
            network=options.network,
            env=dict(options.env),
            limits=Limits(timeout_s=options.timeout_s),
            read_only_binds=tuple(await asyncio.to_thread(object_alternates, root)),
        )
        sandbox = await open_sandbox(self._pool.sandbox, spec)
        try:
            yield sandbox
        finally:
            await sandbox.close()

    async def apply_patch(self, patch: str) -> PatchOutcome:
        try:
            result = await asyncio.to_thread(apply_patch, patch, self.copy.path)
        except PatchError as exc:
            return PatchOutcome(False, str(exc))
        return PatchOutcome(True, result.summary())

    async def read_files(self, paths: Sequence[str]) -> dict[str, bytes | None]:
        root = self.copy.path
        return await asyncio.to_thread(lambda: {p: read_inside(root, p) for p in paths})

    async def disk_usage(self) -> int:
        return await asyncio.to_thread(self._pool.copies.disk_usage, self.copy)

    async def result(self) -> DiffResult:
        if self._snapshot is None:
            raise RuntimeError("the attempt's copy was not prepared")
        return await asyncio.to_thread(record_result, self._snapshot, self.copy)

    async def release(self) -> None:
        if self._copy is not None:
            await asyncio.to_thread(self._pool.copies.release, self._copy)

    async def discard(self) -> None:
        if self._copy is not None:
            await asyncio.to_thread(self._pool.copies.remove, self._copy)
            self._copy = None


class LocalHosts:
    """Local hosts for every attempt of one data folder."""

    def __init__(self, paths: DataPaths, sandbox: str, copies: CopyManager | None = None) -> None:
        self.paths = paths
        self.sandbox = sandbox
        self.copies = copies or choose_provider(paths)

    async def start(self) -> None:
        """Commands and containers a killed server left behind: per-command cgroups of
        dead servers are emptied when they are detected, labelled containers of dead
        servers are removed."""
        from errand.sandbox import cgroup

        await asyncio.to_thread(cgroup.detect)
        if self.sandbox == "docker":
            from errand.sandbox import docker

            removed = await docker.reap_orphans()
            if removed:
                log.info("removed %d container(s) left by a crashed server", removed)

    def new(self, task_id: str, attempt: int) -> LocalHost:
        return LocalHost(self, self.paths.copy(task_id, attempt))

    def restore(self, ref: HostRef) -> LocalHost:
        copy = TaskCopy(Path(ref.path), Path(ref.index), ref.copy_kind, ref.reason)
        return LocalHost(self, copy.path, copy)

    async def collect_garbage(
        self, live: Collection[HostRef], running: Collection[HostRef]
    ) -> None:
        keep = [Path(r.path) for r in live if r.kind == KIND]
        mounted = [Path(r.path) for r in running if r.kind == KIND]
        try:
            await asyncio.to_thread(lambda: collect_garbage(self.paths, keep, mounted=mounted))
        except OSError as exc:
            log.warning("garbage collection failed: %s", exc)


def read_inside(root: Path, rel: str, limit: int = READ_LIMIT) -> bytes | None:
    """The bytes of the regular file ``rel`` inside ``root`` (symlinks followed while
    they stay inside), or None: missing, not a file, under ``.git``, or outside."""
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or ".." in parts or parts[0] == ".git":
        return None
    base = root.resolve()
    try:
        real = base.joinpath(*parts).resolve()
        if real != base and base not in real.parents:
            return None
        if real.relative_to(base).parts[:1] == (".git",) or not real.is_file():
            return None
        with open(real, "rb") as handle:
            return handle.read(limit)
    except (OSError, RuntimeError, ValueError):
        return None
