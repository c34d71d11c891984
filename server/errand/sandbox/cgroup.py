"""Per-command cgroups: a process and memory cap the kernel enforces even for root.

RLIMIT_NPROC is ignored for uid 0, and RLIMIT_DATA caps each process rather than the
command as a whole. When the server may create cgroups (root on cgroup v1, or root on
cgroup v2 with the ``pids``/``memory`` controllers available at the root), every command
gets its own cgroup with ``pids.max`` and a memory limit, and the cgroup is also used
to kill everything the command started, including processes that left its session.

Where no cgroup can be created (typically an unprivileged user on a systemd machine), the
backends rely on the rlimits alone and say so in their ``warnings``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from errand.sandbox.base import Limits

log = logging.getLogger(__name__)

CGROUP_FS = Path("/sys/fs/cgroup")
_counter = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Support:
    version: int
    pids: Path
    """Parent folder where per-command cgroups for ``pids`` are made."""
    memory: Path | None
    """Same for ``memory`` (v1: another hierarchy; v2: the same folder as ``pids``)."""


def _own_path(controller: str) -> str | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


def _prepare(parent: Path) -> Path | None:
    folder = parent / "errand"
    try:
        folder.mkdir(exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


def _reap_stale(folder: Path) -> None:
    """Kill what is left in the per-command cgroups of servers that are gone, and remove
    those cgroups. A server killed at the very moment it spawned a command can leave the
    command running (before bwrap had set its parent-death signal); this ends it."""
    for child in folder.glob("errand-*"):
        pid = child.name.split("-")[1]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        for _ in range(100):
            try:
                procs = [int(p) for p in (child / "cgroup.procs").read_text().split()]
            except OSError:
                break
            if not procs:
                break
            for proc in procs:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(proc, signal.SIGKILL)
            time.sleep(0.01)  # let the kernel finish the kills before looking again
        for _ in range(50):
            try:
                child.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)  # the kernel is still reaping the killed processes
        else:
            log.warning("could not remove stale cgroup %s", child)


@cache
def detect() -> Support | None:
    """Where this process can create per-command cgroups, if anywhere (cached)."""
    if (CGROUP_FS / "cgroup.controllers").exists():  # pure cgroup v2
        try:
            available = (CGROUP_FS / "cgroup.subtree_control").read_text().split()
        except OSError:
            return None
        if "pids" not in available:
            return None
        folder = _prepare(CGROUP_FS)
        if folder is None:
            return None
        wanted = [c for c in ("pids", "memory") if c in available]
        try:
            (folder / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))
        except OSError as exc:
            log.info("cannot enable cgroup controllers in %s: %s", folder, exc)
            return None
        _reap_stale(folder)
        return Support(2, folder, folder if "memory" in wanted else None)
    pids_own = _own_path("pids")
    if pids_own is None or not (CGROUP_FS / "pids").is_dir():
        return None
    pids = _prepare(CGROUP_FS / "pids" / pids_own.lstrip("/"))
    if pids is None:
        return None
    _reap_stale(pids)
    memory = None
    memory_own = _own_path("memory")
    if memory_own is not None and (CGROUP_FS / "memory").is_dir():
        memory = _prepare(CGROUP_FS / "memory" / memory_own.lstrip("/"))
        if memory is not None:
            _reap_stale(memory)
    return Support(1, pids, memory)


class CommandCgroup:
    """The cgroup(s) of one command. Use :meth:`create`, then :meth:`wrap` the argv."""

    def __init__(self, support: Support, dirs: list[Path]) -> None:
        self.support = support
        self.dirs = dirs

    @classmethod
    def create(cls, limits: Limits) -> CommandCgroup | None:
        support = detect()
        if support is None:
            return None
        name = f"errand-{os.getpid()}-{next(_counter)}"
        dirs: list[Path] = []
        try:
            pids_dir = support.pids / name
            pids_dir.mkdir()
            dirs.append(pids_dir)
            (pids_dir / "pids.max").write_text(str(limits.max_processes))
            if support.memory is not None:
                if support.version == 2:
                    mem_dir = pids_dir
                    (mem_dir / "memory.max").write_text(str(limits.max_memory_bytes))
                    with contextlib.suppress(OSError):
                        (mem_dir / "memory.swap.max").write_text("0")
                else:
                    mem_dir = support.memory / name
                    mem_dir.mkdir()
                    dirs.append(mem_dir)
                    (mem_dir / "memory.limit_in_bytes").write_text(str(limits.max_memory_bytes))
                    with contextlib.suppress(OSError):
                        (mem_dir / "memory.memsw.limit_in_bytes").write_text(
                            str(limits.max_memory_bytes)
                        )
        except OSError as exc:
            log.warning("could not set up a cgroup for a command: %s", exc)
            cls(support, dirs).remove()
            return None
        return cls(support, dirs)

    def wrap(self, argv: list[str]) -> list[str]:
        """Prefix ``argv`` with a shell that joins these cgroups before exec'ing it, so
        the command never runs outside them."""
        joins = " && ".join(f'echo $$ > "${i + 1}"' for i in range(len(self.dirs)))
        script = f'{joins} && shift {len(self.dirs)} && exec "$@"'
        procs = [str(d / "cgroup.procs") for d in self.dirs]
        return ["/bin/sh", "-c", script, "errand-cgroup", *procs, *argv]

    def _pids(self) -> list[int]:
        try:
            text = (self.dirs[0] / "cgroup.procs").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def kill(self) -> None:
        """SIGKILL every process in the cgroup, including ones that escaped the group."""
        if not self.dirs:
            return
        kill_file = self.dirs[0] / "cgroup.kill"
        if self.support.version == 2 and kill_file.exists():
            with contextlib.suppress(OSError):
                kill_file.write_text("1")
            return
        for _ in range(100):  # a fork bomb may add processes while we kill
            pids = self._pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of this command for the memory cap."""
        for d in self.dirs:
            for name in ("memory.events", "memory.oom_control"):
                try:
                    text = (d / name).read_text()
                except OSError:
                    continue
                for line in text.splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and value.strip() not in ("", "0"):
                        return True
        return False

    def remove(self) -> bool:
        """Remove the cgroup folders; False while some process is still in them."""
        left = []
        for d in self.dirs:
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                left.append(d)
        self.dirs = left
        return not left

    async def release(self, wait_s: float = 5.0) -> None:
        """Kill what is left and remove the cgroup once the kernel has reaped it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            self.kill()
            if self.remove() or loop.time() > deadline:
                break
            await asyncio.sleep(0.02)
        if self.dirs:
            log.warning("cgroup %s still busy; leaving it for the next start", self.dirs[0])
