"""The ``none`` backend: commands run directly on the host. Explicit opt-in only.

Nothing is confined: the command can read and write anything the server's user can and
reach the network. What it keeps from the other backends: the environment allowlist (the
server's secrets are not handed over), the wall-time cap with process-group kill, bounded
output, and RLIMIT_DATA/FSIZE/NPROC through ``prlimit``. The engine shows an
"unsandboxed" warning on every task that uses it.

When the server may create cgroups (root), each command also gets a cgroup capping its
processes and memory and killing everything it started. Otherwise: a process that calls
``setsid`` leaves the process group and survives the kill, and RLIMIT_NPROC counts every
process of the user (it is set to the current count plus ``max_processes``).
"""

from __future__ import annotations

import dataclasses
import os
import shutil

from errand.sandbox.base import ExecResult, OutputSink, SandboxSpec, SandboxUnavailable
from errand.sandbox.env import sandbox_env, shell_argv
from errand.sandbox.process import CommandRunner, rlimit_argv

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

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        self.warnings: tuple[str, ...] = (WARNING,)
        self._runner = CommandRunner()
        self._home = os.environ.get("HOME") or str(spec.root)

    def argv(self, command: str, nproc: int | None) -> list[str]:
        limits = self.spec.limits
        if nproc is not None:
            limits = dataclasses.replace(limits, max_processes=nproc)
        return [*rlimit_argv(limits, nproc=nproc is not None), *shell_argv(command)]

    async def run(
        self,
        command: str,
        *,
        timeout_s: float | None = None,
        on_output: OutputSink | None = None,
    ) -> ExecResult:
        limits = self.spec.limits.with_timeout(timeout_s)
        uid = os.getuid()
        nproc = None if uid == 0 else _user_task_count(uid) + limits.max_processes
        return await self._runner.execute(
            self.argv(command, nproc),
            env=sandbox_env(self.spec.env, home=self._home),
            cwd=self.spec.root,
            limits=limits,
            on_output=on_output,
        )

    async def close(self) -> None:
        await self._runner.close()


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
