"""The Docker backend against a real engine (scripts/start-dockerd.sh starts one).

Confinement probes for every backend live in tests/escape/; these tests cover what is
Docker's own: the container's settings, its lifecycle, the reaper and clear errors.
Without an engine they skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from errand.sandbox import Limits, SandboxSpec, SandboxUnavailable, docker, open_sandbox, owner
from errand.sandbox.process import TIMEOUT_EXIT_CODE
from support.docker_image import engine_or_skip, ensure_test_image

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def client() -> Any:
    return engine_or_skip()


@pytest.fixture(scope="module")
def image(client: Any) -> Iterator[str]:
    tag = ensure_test_image(client)
    old = os.environ.get("ERRAND_DOCKER_IMAGE")
    os.environ["ERRAND_DOCKER_IMAGE"] = tag
    yield tag
    if old is None:
        os.environ.pop("ERRAND_DOCKER_IMAGE", None)
    else:
        os.environ["ERRAND_DOCKER_IMAGE"] = old


@pytest.fixture
def root() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="errand-docker-", dir="/var/tmp")).resolve()
    (base / "copy").mkdir()
    (base / "copy" / "hello.txt").write_text("hello\n")
    try:
        yield base / "copy"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def containers_for(client: Any, root: Path) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": f"errand.task={root}"}))


def test_container_settings(client: Any, image: str, root: Path) -> None:
    async def go() -> None:
        sb = await open_sandbox("docker", SandboxSpec(root=root, limits=Limits(timeout_s=60)))
        try:
            [container] = containers_for(client, root)
            container.reload()
            host = container.attrs["HostConfig"]
            assert host["NetworkMode"] == "none"
            assert host["ReadonlyRootfs"] is True
            assert host["CapDrop"] == ["ALL"]
            assert "no-new-privileges" in host["SecurityOpt"]
            assert host["PidsLimit"] == 256 and host["Memory"] == 2 << 30
            assert host["NanoCpus"] > 0
            assert "/tmp" in host["Tmpfs"]
            assert container.labels["errand"] == "1"
            assert container.labels["errand.owner"] == docker.owner_label()
            r = await sb.run("id -u; pwd; cat hello.txt; echo made > made.txt")
            uid, cwd, hello = r.output.split()
            assert r.exit_code == 0
            assert uid != "0" and cwd == str(root) and hello == "hello"
            assert (root / "made.txt").read_text() == "made\n"
        finally:
            await sb.close()
        assert containers_for(client, root) == []

    run(go())


def test_exit_codes_streaming_and_timeout(client: Any, image: str, root: Path) -> None:
    chunks: list[str] = []

    async def go() -> None:
        sb = await open_sandbox("docker", SandboxSpec(root=root, limits=Limits(timeout_s=60)))
        try:
            codes = [(await sb.run(c)).exit_code for c in ("true", "exit 7", "kill -9 $$")]
            assert codes == [0, 7, 137]
            r = await sb.run(
                "for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.1; done",
                on_output=chunks.append,
            )
            assert sorted(r.output.split()) == sorted(["out1", "out2", "out3", "err1", "err2",
                                                       "err3"])  # fmt: skip
            assert "".join(chunks) == r.output and len(chunks) > 1
            r = await sb.run("sleep 300 & setsid sleep 301 & sleep 302", timeout_s=2)
            assert (r.exit_code, r.timed_out, r.killed_reason) == (TIMEOUT_EXIT_CODE, True,
                                                                   "timeout")  # fmt: skip
            [container] = containers_for(client, root)
            commands = [p[-1] for p in container.top(ps_args="-eo pid,args")["Processes"]]
            assert not any(c.startswith("sleep 30") for c in commands), commands
            assert (await sb.run("echo still usable")).output == "still usable\n"
        finally:
            await sb.close()

    run(go())


def test_cancellation_kills_the_command_inside_the_container(
    client: Any, image: str, root: Path
) -> None:
    async def go() -> None:
        sb = await open_sandbox("docker", SandboxSpec(root=root, limits=Limits(timeout_s=60)))
        try:
            ready = asyncio.Event()
            task = asyncio.create_task(
                sb.run("sleep 303 & echo ready; sleep 304", on_output=lambda t: ready.set())
            )
            await ready.wait()
            [container] = containers_for(client, root)
            running = [p[-1] for p in container.top(ps_args="-eo pid,args")["Processes"]]
            assert "sleep 303" in running and "sleep 304" in running
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            running = [p[-1] for p in container.top(ps_args="-eo pid,args")["Processes"]]
            assert "sleep 303" not in running and "sleep 304" not in running
        finally:
            await sb.close()

    run(go())


def test_git_works_inside_through_bound_read_only_folders(
    client: Any, image: str, root: Path
) -> None:
    """The object folders a copy borrows, given as read-only binds, make git work
    inside, and stay read-only."""
    repo = root.parent / "user-repo"
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e.invalid"}  # fmt: skip
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "a.txt").write_text("a\n")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "first"], check=True, env=env)
    copy = root.parent / "shared-copy"
    subprocess.run(["git", "clone", "-q", "--shared", str(repo), str(copy)], check=True)

    async def go() -> str:
        spec = SandboxSpec(
            root=copy, limits=Limits(timeout_s=60), read_only_binds=(repo / ".git" / "objects",)
        )
        sb = await open_sandbox("docker", spec)
        try:
            r = await sb.run("git log --format=%s && git status --porcelain && echo ok")
            assert r.exit_code == 0, r.output
            r2 = await sb.run(f"echo x >> {repo}/.git/objects/info/evil")
            assert r2.exit_code != 0
            return r.output
        finally:
            await sb.close()

    assert run(go()).split() == ["first", "ok"]


def label_of(*prefix: str, then: str = "") -> tuple[subprocess.Popen[str], str]:
    """A Python process (after ``prefix``) that prints its owner label, then runs
    ``then``; the process and the label."""
    code = "from errand.sandbox import owner; print(owner.label(), flush=True)" + then
    proc = subprocess.Popen([*prefix, sys.executable, "-c", code],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def test_reaper_removes_containers_of_dead_servers_only(
    client: Any, image: str, root: Path
) -> None:
    dead, label = label_of()
    dead.wait(timeout=60)
    labels = {"errand": "1", "errand.task": str(root)}
    orphan = client.containers.create(
        image, ["sleep", "infinity"], network_mode="none",
        labels={**labels, "errand.owner": label},
    )  # fmt: skip
    unrelated = client.containers.create(image, ["sleep", "infinity"], network_mode="none")

    async def go() -> None:
        sb = await open_sandbox("docker", SandboxSpec(root=root, limits=Limits(timeout_s=60)))
        try:
            assert await docker.reap_orphans() >= 1
            ids = {c.id for c in containers_for(client, root)}
            assert orphan.id not in ids
            assert sb.container.id in ids  # this server's live container stays
            assert (await sb.run("echo alive")).output == "alive\n"
        finally:
            await sb.close()

    try:
        run(go())
        unrelated.reload()  # not labelled: never touched
    finally:
        unrelated.remove(force=True)


def test_reaper_keeps_containers_of_a_live_server_in_another_pid_namespace(
    client: Any, image: str, root: Path
) -> None:
    """A server in a container or under ``unshare --pid`` has a PID (1 here) that names
    another process in ours: its containers stay while it runs, and go once it is gone."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for PID namespaces")
    unshare = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
    server, label = label_of(*unshare, then="; import time; time.sleep(120)")
    try:
        container = client.containers.create(
            image, ["sleep", "infinity"], network_mode="none",
            labels={"errand": "1", "errand.task": str(root), "errand.owner": label},
        )  # fmt: skip
        try:
            run(docker.reap_orphans())
            assert [c.id for c in containers_for(client, root)] == [container.id]
        finally:
            server.kill()  # and with it its PID namespace
            server.wait(timeout=30)
        if owner._pid_ns("self") != owner.INIT_PID_NS:
            return  # an emptied namespace is known gone only from the initial one
        deadline = time.monotonic() + 30
        while containers_for(client, root):
            assert time.monotonic() < deadline, "the dead server's container was kept"
            run(docker.reap_orphans())
            time.sleep(0.1)
    finally:
        for c in containers_for(client, root):
            c.remove(force=True)


def test_missing_image_and_missing_engine_are_explained(
    client: Any, image: str, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = f"errand-missing-{uuid.uuid4().hex[:8]}:latest"
    with pytest.raises(SandboxUnavailable, match="is not available on the engine"):
        run(docker.open(SandboxSpec(root=root), image=missing))
    assert containers_for(client, root) == []
    monkeypatch.setenv("DOCKER_HOST", f"unix://{root}/no-engine.sock")
    with pytest.raises(SandboxUnavailable, match=r"start-dockerd\.sh"):
        run(docker.open(SandboxSpec(root=root)))


def test_network_opt_in_uses_the_configured_network(
    client: Any, image: str, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """spec.network (the setup step's opt-in) attaches ERRAND_DOCKER_NETWORK; "host" here,
    since the test engine runs without a bridge."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    monkeypatch.setenv("ERRAND_DOCKER_NETWORK", "host")
    probe = f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo CONNECTED"

    async def go(network: bool) -> str:
        spec = SandboxSpec(root=root, network=network, limits=Limits(timeout_s=60))
        sb = await open_sandbox("docker", spec)
        try:
            return (await sb.run(probe)).output
        finally:
            await sb.close()

    try:
        assert "CONNECTED" in run(go(True))
        assert "CONNECTED" not in run(go(False))
    finally:
        listener.close()
