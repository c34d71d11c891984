"""errand's daemon, end to end with real processes: LSP front ends and the CLI on one
data folder, an editor that closes mid-task, a daemon killed with SIGKILL, a peer of
another uid, garbage on the socket, and two daemons started at once."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.daemons import daemon_env, daemon_pid, errand, stop, wait_gone
from support.lsp_harness import delegate, start_client, stop_client
from support.repos import make_repo

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="function")]

REPO = {"calc.py": "def add(a, b):\n    return a - b\n"}
FIX = """*** Begin Patch
*** Update File: calc.py
@@ def add(a, b):
-    return a - b
+    return a + b
*** End Patch
"""


async def settled(client: Any, task_id: str, timeout: float = 90) -> dict[str, Any]:
    """The task once it has ended, asked for (not waited on as notifications: a window
    opened late has missed them)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        task = (await client.command("errand.getTask", {"taskId": task_id}))["task"]
        if task["status"] in ("completed", "failed", "cancelled"):
            return dict(task)
        assert asyncio.get_running_loop().time() < deadline, task
        await asyncio.sleep(0.3)


def slow(name: str, seconds: int) -> dict[str, Any]:
    """A task that waits in a command, then fixes ``add``."""
    return {
        "name": name,
        "turns": [
            {
                "tool_calls": [
                    {"name": "shell", "arguments": {"command": f"sleep {seconds}; echo slept"}}
                ]
            },
            {"tool_calls": [{"name": "apply_patch", "arguments": {"patch": FIX}}]},
            {"content": "Fixed add 【F:calc.py†L1-L2】."},
        ],
    }


@pytest.fixture
def env(tmp_path: Path, replay: Any, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    name = request.node.name.split("[")[0]
    server = replay(slow(name, 4))
    environment = daemon_env(tmp_path, server.url, name)
    yield environment
    stop(environment)


async def test_two_windows_and_the_cli_share_one_daemon(
    tmp_path: Path, env: dict[str, str]
) -> None:
    repo = make_repo(tmp_path / "repo", REPO)
    first, lsp1 = await start_client(folder=repo, env=env)
    second, lsp2 = await start_client(folder=repo, env=env)
    try:
        task_id = await delegate(first, "fix add")
        # The second window sees the first window's task live, as it runs.
        assert await second.wait_status(task_id, {"running"}, 60) == "running"
        listed = errand(env, "tasks")
        assert listed.returncode == 0 and task_id in listed.stdout and "running" in listed.stdout
        assert [t["taskId"] for t in (await second.command("errand.listTasks"))["tasks"]] == [
            task_id
        ]
        assert await first.wait_status(task_id, {"completed", "failed"}) == "completed"
        assert await second.wait_status(task_id, {"completed", "failed"}) == "completed"
        # Nothing was ever marked interrupted.
        statuses = [
            c["task"]["status"] for c in second.task_changes if c["task"]["taskId"] == task_id
        ]
        assert "failed" not in statuses
        logs = [e for e in second.task_logs if e["taskId"] == task_id and e["kind"] == "output"]
        assert any("slept" in (e.get("text") or "") for e in logs)
        shown = errand(env, "show", task_id)
        assert "+    return a + b" in shown.stdout
        # A task the CLI runs through the daemon shows in both windows as it runs.
        run = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "errand", "run", "fix add again", "--repo", str(repo),
            env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip

        def cli_task() -> str | None:
            ids = {c["task"]["taskId"] for c in first.task_changes} - {task_id}
            return next(iter(ids), None)

        await first.wait_for(lambda: cli_task() is not None, 60, "the CLI's task")
        cli_id = cli_task()
        assert cli_id is not None
        assert await second.wait_status(cli_id, {"completed", "failed"}) == "completed"
        out, _ = await asyncio.wait_for(run.communicate(), 60)
        assert run.returncode == 0 and f"errand show {cli_id}" in out.decode()
    finally:
        await stop_client(lsp1)
        await stop_client(lsp2)


async def test_a_window_that_closes_mid_task_cancels_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    repo = make_repo(tmp_path / "repo", REPO)
    client, lsp = await start_client(folder=repo, env=env)
    task_id = await delegate(client, "fix add")
    assert await client.wait_status(task_id, {"running"}, 60) == "running"
    await stop_client(lsp)  # shutdown, exit: the editor is gone
    later, lsp2 = await start_client(folder=repo, env=env)
    try:
        assert (await settled(later, task_id))["status"] == "completed"
        diff = await later.command("errand.getDiff", {"taskId": task_id})
        assert "+    return a + b" in diff["diff"]
        result = await later.command("errand.apply", {"taskId": task_id})
        assert result["applied"] is True, result
        assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    finally:
        await stop_client(lsp2)


async def test_a_killed_daemon_is_replaced_and_its_work_resumes(
    tmp_path: Path, replay: Any
) -> None:
    server = replay(slow("killed", 30))
    env = daemon_env(tmp_path, server.url, "killed")
    repo = make_repo(tmp_path / "repo", REPO)
    client, lsp = await start_client(folder=repo, env=env)
    try:
        task_id = await delegate(client, "fix add")
        assert await client.wait_status(task_id, {"running"}, 60) == "running"
        await client.wait_for(
            lambda: any(e["kind"] == "commandStarted" for e in client.task_logs), 30, "the command"
        )
        before = (await client.command("errand.getTask", {"taskId": task_id}))["task"]
        old = daemon_pid(env)
        os.kill(old, signal.SIGKILL)
        wait_gone(old)
        # The window says so, starts a new daemon and lists again, without a reload.
        await client.wait_for(
            lambda: any("daemon stopped" in str(m) for m in client.progress), 30, "the warning"
        )
        await client.wait_for(lambda: client.status_of(task_id) == "failed", 60, "the re-list")
        assert daemon_pid(env) != old
        task = (await client.command("errand.getTask", {"taskId": task_id}))["task"]
        assert task["attempts"][0]["reason"] == "interrupted"
        # Marking it interrupted is a change like any other: the task sorts as newer and
        # its log ends with the status it was given.
        assert task["updatedAt"] > before["updatedAt"]
        log = (await client.command("errand.getLog", {"taskId": task_id}))["entries"]
        assert log[-1]["kind"] == "status" and log[-1]["status"] == "failed", log[-1]
        assert log[-1]["text"] == "interrupted"
        # The interrupted attempt goes on in the same copy, with the same conversation.
        await client.command("errand.resume", {"taskId": task_id})
        done = await settled(client, task_id)
        assert done["status"] == "completed", done
        diff = await client.command("errand.getDiff", {"taskId": task_id})
        assert "+    return a + b" in diff["diff"]
        # The resumed turns were asked for with the conversation so far: the command the
        # dead daemon ran is answered as interrupted.
        last = server.requests[-1]
        said = [m.get("content") for m in last["messages"] if m.get("role") == "tool"]
        assert any("interrupted" in str(text) for text in said), said
    finally:
        await stop_client(lsp)
        stop(env)


def raw_connection(path: str) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(10)
    conn.connect(path)
    return conn


def hello_frame(protocol: int = 1) -> bytes:
    body = (
        b'{"jsonrpc":"2.0","id":1,"method":"errand/hello","params":{"protocol":%d,"version":"t"}}'
    )
    return b"Content-Length: %d\r\n\r\n" % len(body % protocol) + body % protocol


def receive(conn: socket.socket) -> bytes:
    data = b""
    while b"}" not in data.split(b"\r\n\r\n", 1)[-1]:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


async def test_the_socket_refuses_garbage_strangers_and_old_front_ends(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # A runtime folder another uid can reach (pytest's own is private to root).
    runtime = Path(tempfile.mkdtemp(prefix="errand-run-"))
    runtime.chmod(0o755)
    env["XDG_RUNTIME_DIR"] = str(runtime)
    assert errand(env, "daemon", "status").returncode == 1  # none yet
    started = subprocess.Popen(
        [sys.executable, "-m", "errand", "daemon"], env={**os.environ, **env},
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for _ in range(200):
            if errand(env, "daemon", "status").returncode == 0:
                break
            await asyncio.sleep(0.1)
        status = errand(env, "daemon", "status").stdout
        path = next(line.split()[1] for line in status.splitlines() if line.startswith("socket"))
        # Garbage ends that connection only.
        bad = raw_connection(path)
        bad.sendall(b"this is not a frame\r\n\r\n")
        assert bad.recv(100) == b""
        # An old front end is told what to do.
        old = raw_connection(path)
        old.sendall(hello_frame(protocol=999))
        answer = receive(old)
        assert b"speaks daemon protocol 1" in answer and b"errand daemon stop" in answer
        # A peer of another uid gets nothing: the folder and socket are opened up for
        # the test, so that only the uid check stands in the way.
        os.chmod(Path(path).parent, 0o755)
        os.chmod(path, 0o777)
        probe = (
            "import socket, sys\n"
            "c = socket.socket(socket.AF_UNIX); c.settimeout(10)\n"
            f"c.connect({path!r})\n"
            "try:\n"
            "    c.sendall(sys.stdin.buffer.read()); print(repr(c.recv(1000)))\n"
            "except ConnectionResetError:\n"
            "    print(repr(b''))\n"
        )
        stranger = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "/usr/bin/python3", "-c", probe],
            input=hello_frame(), capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        assert stranger.stdout.strip() == b"b''", stranger
        # The daemon goes on serving its own user.
        assert errand(env, "daemon", "status").returncode == 0
    finally:
        stop(env)
        started.wait(30)
        shutil.rmtree(runtime, ignore_errors=True)
    assert "refused a connection from uid 65534" in (tmp_path / "data" / "errand.log").read_text()


async def test_two_daemons_started_at_once_end_with_one_owner(
    tmp_path: Path, env: dict[str, str]
) -> None:
    both = [
        subprocess.Popen(
            [sys.executable, "-m", "errand", "daemon"],
            env={**os.environ, **env},
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for _ in range(300):
            if any(p.poll() is not None for p in both):
                break
            await asyncio.sleep(0.1)
        loser = next(p for p in both if p.poll() is not None)
        winner = next(p for p in both if p is not loser)
        assert loser.returncode == 3
        assert loser.stderr is not None
        assert f"pid {winner.pid}" in loser.stderr.read()
        assert daemon_pid(env) == winner.pid
    finally:
        stop(env)
        for process in both:
            process.wait(30)


async def test_stop_waits_for_running_attempts_and_idle_exit(tmp_path: Path, replay: Any) -> None:
    server = replay(slow("idle", 6))
    env = daemon_env(tmp_path, server.url, "idle", ERRAND_DAEMON_IDLE_SECONDS="2")
    repo = make_repo(tmp_path / "repo", REPO)
    client, lsp = await start_client(folder=repo, env=env)
    task_id = await delegate(client, "fix add")
    assert await client.wait_status(task_id, {"running"}, 60) == "running"
    pid = daemon_pid(env)
    refused = errand(env, "daemon", "stop")
    assert refused.returncode == 2 and "still run" in refused.stderr and "--force" in refused.stderr
    await stop_client(lsp)
    # With no front end, the daemon finishes its attempt, then exits once idle.
    wait_gone(pid, timeout=60)
    again, lsp2 = await start_client(folder=repo, env=env)
    try:
        assert (await settled(again, task_id))["status"] == "completed"
    finally:
        await stop_client(lsp2)
        stop(env)


async def test_a_daemon_of_another_version_with_nothing_running_is_replaced(
    tmp_path: Path, env: dict[str, str]
) -> None:
    older = (
        "import sys, errand.wire.daemon as d; d.PROTOCOL_VERSION = 0; "
        "from errand.frontends.cli.main import main; sys.exit(main(['daemon']))"
    )
    old = subprocess.Popen([sys.executable, "-c", older], env={**os.environ, **env})
    try:
        for _ in range(200):
            if errand(env, "daemon", "status").returncode == 0:
                break
            await asyncio.sleep(0.1)
        assert daemon_pid(env) == old.pid
        repo = make_repo(tmp_path / "repo", REPO)
        client, lsp = await start_client(folder=repo, env=env)
        try:
            task_id = await delegate(client, "fix add")
            assert (await settled(client, task_id))["status"] == "completed"
            assert old.wait(30) == 0  # it was stopped, cleanly
            assert daemon_pid(env) != old.pid
        finally:
            await stop_client(lsp)
    finally:
        stop(env)
        if old.poll() is None:
            old.kill()
