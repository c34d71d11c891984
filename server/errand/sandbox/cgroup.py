"""Per-command cgroups: a process and memory cap the kernel enforces even for root.

RLIMIT_NPROC is ignored for uid 0, and RLIMIT_DATA caps each process rather than the
command as a whole. When the server may create cgroups (root on cgroup v1, or root on
cgroup v2 with the ``pids``/``memory`` controllers available at the root), every command
gets its own cgroup with ``pids.max`` and a memory limit, and the cgroup is also used
to kill everything the command started, including processes that left its session.

Where no cgroup can be created (typically an unprivileged user on a systemd machine), the
backends rely on the rlimits alone and say so in their ``warnings``.

Each server makes its commands' cgroups, ``cmd-<n>``, in a folder of its own that
:func:`detect` claims at start, after reaping the folders of servers that are gone;
:mod:`errand.sandbox.cgroup_folders` says how a folder is owned, and why that holds for
servers in different PID, mount and cgroup namespaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from errand.sandbox.base import Limits
from errand.sandbox.cgroup_folders import claim, members, reap_stale

log = logging.getLogger(__name__)

CGROUP_FS = Path("/sys/fs/cgroup")
COMMAND_PREFIX = "cmd-"
_counter = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Support:
    version: int
    pids: Path
    """This server's own folder (see :mod:`errand.sandbox.cgroup_folders`), where
    per-command cgroups for ``pids`` are made."""
    memory: Path | None
    """Same for ``memory`` (v1: another hierarchy; v2: the same folder as ``pids``)."""


_detect_lock = threading.Lock()
_detected: list[Support | None] = []


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


def detect() -> Support | None:
    """Where this process can create per-command cgroups, if anywhere (cached). The first
    call reaps the folders of dead servers and claims this server's own."""
    with _detect_lock:
        if not _detected:
            _detected.append(_detect())
        return _detected[0]


def _detect() -> Support | None:
    if (CGROUP_FS / "cgroup.controllers").exists():  # pure cgroup v2
        return _detect_v2()
    return _detect_v1()


def _detect_v2() -> Support | None:
    """One hierarchy: this server's folder under ``errand/`` at the root, with the
    ``pids`` (and, when available, ``memory``) controllers enabled down to it."""
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
    enable = " ".join(f"+{c}" for c in wanted)
    try:
        (folder / "cgroup.subtree_control").write_text(enable)
    except OSError as exc:
        log.info("cannot enable cgroup controllers in %s: %s", folder, exc)
        return None
    reap_stale(folder)
    own = claim(folder)
    if own is None:
        return None
    try:
        (own / "cgroup.subtree_control").write_text(enable)
    except OSError as exc:
        log.info("cannot enable cgroup controllers in %s: %s", own, exc)
        return None
    return Support(2, own, own if "memory" in wanted else None)


def _detect_v1() -> Support | None:
    """One hierarchy per controller: a folder in ``pids`` (required) and one in
    ``memory`` (when there is one), each under this server's own cgroup."""
    pids_own = _own_path("pids")
    if pids_own is None or not (CGROUP_FS / "pids").is_dir():
        return None
    pids_folder = _prepare(CGROUP_FS / "pids" / pids_own.lstrip("/"))
    if pids_folder is None:
        return None
    reap_stale(pids_folder)
    pids = claim(pids_folder)
    if pids is None:
        return None
    memory = None
    memory_own = _own_path("memory")
    if memory_own is not None and (CGROUP_FS / "memory").is_dir():
        memory_folder = _prepare(CGROUP_FS / "memory" / memory_own.lstrip("/"))
        if memory_folder is not None:
            reap_stale(memory_folder)
            memory = claim(memory_folder)
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
        name = f"{COMMAND_PREFIX}{next(_counter)}"
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
        return members(self.dirs[0])

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
