"""Per-command cgroups shared by several servers: a server reaps the cgroups of servers
that are gone, and never those of a live server, whatever PID namespace each runs in.

The servers here are real processes using the sandbox the way the engine does (a
``none`` sandbox, whose commands get per-command cgroups as root), each in its own PID
namespace (``unshare --pid --fork --mount-proc``) and all sharing this machine's cgroup
tree. The "starting server" is :func:`cgroup.detect`, which the engine calls at start.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from errand.sandbox import Limits, cgroup, cgroup_folders
from support.processes import processes_gone

SERVER = """
import asyncio, json, os, signal, sys
from pathlib import Path
from errand.sandbox import Limits, SandboxSpec, cgroup, open_sandbox

async def main():
    root, command, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    support = cgroup.detect()
    (root / "folder.txt").write_text(str(support.pids) if support else "")
    sb = await open_sandbox("none", SandboxSpec(root=root, limits=Limits(timeout_s=120)))
    run = asyncio.ensure_future(sb.run(command))
    if mode == "die":  # a crash: no cleanup, the command is left running
        for _ in range(1200):
            if (root / "started").exists():
                os.kill(os.getpid(), signal.SIGKILL)
            await asyncio.sleep(0.05)
        sys.exit("the command never started")
    result = await run
    (root / "result.json").write_text(json.dumps([result.exit_code, result.output]))

asyncio.run(main())
"""

REAPER = """
import sys
from errand.sandbox import cgroup
support = cgroup.detect()  # what the engine does at start: reap, then claim a folder
print(support.pids if support else "")
"""


def in_new_pid_namespace(*argv: str) -> list[str]:
    """``argv`` in a new PID namespace, under a shell that stays its PID 1 (so what the
    server leaves behind outlives it); killing ``unshare`` kills the whole namespace.

    The server gets a PID that no process has in ours, as a server in a container has:
    the PID test that errand once used takes such a server for dead."""
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    taken = {int(entry) for entry in os.listdir("/proc") if entry.isdigit()}
    free = random.choice([p for p in range(pid_max // 2, pid_max) if p not in taken])
    shell = 'echo "$0" > /proc/sys/kernel/ns_last_pid; "$@"; exec sleep 300'
    return ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
            "sh", "-c", shell, str(free - 1), *argv]  # fmt: skip


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def named(token: str) -> list[int]:
    """Processes whose argv[0] is ``token``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[0] == token.encode():
                    found.append(int(entry))
    return found


def lock_is_free(folder: Path) -> bool:
    fd = cgroup_folders.lock(folder)
    if fd is None:
        return False
    os.close(fd)
    return True


def start_reaper(*, own_namespace: bool = True) -> str:
    """A server starting, in a PID namespace of its own or in ours; the folder it claimed."""
    unshare = ["unshare", "--pid", "--fork", "--mount-proc"] if own_namespace else []
    done = subprocess.run(
        [*unshare, sys.executable, "-c", REAPER], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def support() -> cgroup.Support:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for PID namespaces")
    found = cgroup.detect()
    if found is None:
        pytest.skip("no per-command cgroups here (needs root and a writable cgroup hierarchy)")
    return found


@pytest.fixture
def servers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for server in started:
        server.kill()  # --kill-child: the whole PID namespace goes with it
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=30)


def start_server(root: Path, command: str, mode: str) -> subprocess.Popen[bytes]:
    argv = in_new_pid_namespace(sys.executable, "-c", SERVER, str(root), command, mode)
    return subprocess.Popen(argv)


def test_a_live_server_in_another_pid_namespace_keeps_its_commands(
    support: cgroup.Support, servers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    # The command waits for the test's go-ahead, so it is running while the other
    # server starts, and finishes on its own afterwards: a reap would show as 137.
    wait = "for i in $(seq 1200); do [ -e go ] && { echo survived; exit 0; }; sleep 0.05; done"
    servers.append(start_server(tmp_path, f"touch started; {wait}; exit 3", "live"))
    wait_for(lambda: (tmp_path / "started").exists(), "the first server's command")
    folder = Path((tmp_path / "folder.txt").read_text())
    assert folder.parent == support.pids.parent  # both servers share one cgroup tree
    assert list(folder.glob(f"{cgroup.COMMAND_PREFIX}*")), "the command has no cgroup"

    for own_namespace in (False, True):  # a server on the host, and one beside
        other = start_reaper(own_namespace=own_namespace)
        assert other and Path(other) != folder

    assert folder.is_dir()
    (tmp_path / "go").touch()
    wait_for(lambda: (tmp_path / "result.json").exists(), "the first server's result")
    assert json.loads((tmp_path / "result.json").read_text()) == [0, "survived\n"]


def test_a_dead_servers_command_is_reaped(
    support: cgroup.Support, servers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """The server dies in a PID namespace of its own, its command still running. A server
    starting in a sibling namespace reaps it where ``cgroup.kill`` reaches processes it
    can't see; otherwise it leaves it, and a server in the parent namespace reaps it."""
    token = f"errand-orphan-{uuid.uuid4().hex[:8]}"
    servers.append(start_server(tmp_path, f"touch started; exec -a {token} sleep 300", "die"))
    wait_for(lambda: bool(named(token)), "the command")
    folder = Path((tmp_path / "folder.txt").read_text())
    # The server killed itself; its lock went with it (the command never inherited it).
    wait_for(lambda: lock_is_free(folder), "the dead server's lock to be released")
    assert named(token), "the command should outlive its server (no parent-death signal)"

    start_reaper(own_namespace=True)
    if not (support.pids / "cgroup.kill").exists():
        assert named(token) and folder.is_dir() and lock_is_free(folder)
        start_reaper(own_namespace=False)

    assert processes_gone(named, token, timeout=10)
    assert not folder.exists()


def test_a_server_never_reaps_its_own_commands(support: cgroup.Support) -> None:
    group = cgroup.CommandCgroup.create(Limits())
    assert group is not None
    proc = subprocess.Popen(group.wrap(["sleep", "60"]))
    try:
        wait_for(lambda: bool(group._pids()), "the command to join its cgroup")
        cgroup_folders.reap_stale(support.pids.parent)
        assert proc.poll() is None
        assert group.dirs[0].is_dir() and group.dirs[0].parent == support.pids
    finally:
        proc.kill()
        proc.wait(timeout=30)
        group.kill()
        wait_for(group.remove, "the command's cgroup to be removed", timeout=10)
