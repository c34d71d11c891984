"""The ``none`` backend: commands run directly on the host. Explicit opt-in only.

Nothing is confined: the command can read and write anything the server's user can and
reach the network. What it keeps from the other backends: the environment allowlist (the
server's secrets are not handed over), the wall-time cap with process-group kill, bounded
output, and RLIMIT_DATA/FSIZE/NPROC through ``prlimit``. The engine shows an
"unsandboxed" warning on every task that uses it.

Known gaps compared with the sandboxes: a process that calls ``setsid`` leaves the
process group and survives the kill; RLIMIT_NPROC counts every process of the user (it
is set to the current count plus ``max_processes``) and does nothing for root.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil

from errand.sandbox.base import ExecResult, OutputSink, SandboxSpec, SandboxUnavailable
from errand.sandbox.process import rlimit_argv, run_process, sandbox_env

WARNING = "unsandboxed: ERRAND_SANDBOX=none runs the agent's commands directly on this machine"


def _user_task_count(uid: int) -> int:
    """Threads and processes owned by ``uid`` (what RLIMIT_NPROC counts)."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with os.scandir(f"/proc/{entry.name}/task") as tasks:
                if os.stat(f"/proc/{entry.name}").st_uid != uid:
                    continue
                count += sum(1 for _ in tasks)
        except OSError:
            continue
    return count


class NoneSandbox:
    name = "none"
    warning = WARNING

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        self._stop = asyncio.Event()
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._home = os.environ.get("HOME") or str(spec.root)

    def argv(self, command: str, limits_nproc: int | None) -> list[str]:
        limits = self.spec.limits
        if limits_nproc is not None:
            limits = dataclasses.replace(limits, max_processes=limits_nproc)
        return [*rlimit_argv(limits, nproc=limits_nproc is not None), "bash", "-c", command]

    async def run(
        self,
        command: str,
        *,
        timeout_s: float | None = None,
        on_output: OutputSink | None = None,
    ) -> ExecResult:
        if self._stop.is_set():
            raise RuntimeError("sandbox is closed")
        limits = self.spec.limits
        if timeout_s is not None:
            limits = dataclasses.replace(limits, timeout_s=timeout_s)
        uid = os.getuid()
        nproc = None if uid == 0 else _user_task_count(uid) + limits.max_processes
        self._running += 1
        self._idle.clear()
        try:
            return await run_process(
                self.argv(command, nproc),
                env=sandbox_env(self.spec.env, home=self._home),
                cwd=self.spec.root,
                limits=limits,
                on_output=on_output,
                stop=self._stop,
            )
        finally:
            self._running -= 1
            if self._running == 0:
                self._idle.set()

    async def close(self) -> None:
        self._stop.set()
        await self._idle.wait()


async def open(spec: SandboxSpec) -> NoneSandbox:
    """Open the unsandboxed backend. Only call this when the user chose ``none``."""
    root = spec.root.resolve()
    if not root.is_dir():
        raise SandboxUnavailable(f"sandbox root {root} is not a directory")
    if shutil.which("prlimit") is None:
        raise SandboxUnavailable("`prlimit` (util-linux) is not on PATH; install util-linux.")
    if shutil.which("bash") is None:
        raise SandboxUnavailable("`bash` is not on PATH.")
    return NoneSandbox(dataclasses.replace(spec, root=root))
