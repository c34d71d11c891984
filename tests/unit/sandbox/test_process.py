"""run_process and the `none` backend: capture bounds, decoding, kills, environment."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from errand.sandbox import Limits, SandboxSpec, open_sandbox
from errand.sandbox.env import sandbox_env
from errand.sandbox.process import (
    CUT_MARKER,
    TIMEOUT_EXIT_CODE,
    _Capture,
    exit_code_of,
    run_process,
)
from support.processes import processes_gone

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def pids_with(token: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if token.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


@given(
    limit=st.integers(min_value=0, max_value=300),
    chunks=st.lists(st.binary(min_size=0, max_size=200), max_size=40),
)
def test_capture_keeps_head_and_tail_within_the_limit(limit: int, chunks: list[bytes]) -> None:
    capture = _Capture(limit)
    for chunk in chunks:
        capture.add(chunk)
    data = b"".join(chunks)
    assert capture.total == len(data)
    assert len(capture.head) + len(capture.tail) <= 2 * limit + 64 * 1024 + 200
    if len(data) <= limit:
        assert not capture.truncated
        assert capture.text() == data.decode("utf-8", errors="replace")
    else:
        head_n = limit - limit // 2
        tail_n = limit // 2
        tail = data[len(data) - tail_n :] if tail_n else b""
        marker = CUT_MARKER.format(cut=len(data) - head_n - tail_n)
        head_text = data[:head_n].decode("utf-8", errors="replace")
        sep = "" if not head_text or head_text.endswith("\n") else "\n"
        expected = f"{head_text}{sep}{marker}\n{tail.decode('utf-8', errors='replace')}"
        assert capture.truncated and capture.text() == expected


def test_exit_code_convention() -> None:
    assert exit_code_of(0) == 0
    assert exit_code_of(3) == 3
    assert exit_code_of(-9) == 137
    assert exit_code_of(-15) == 143


def test_multibyte_characters_split_across_reads_decode_cleanly(tmp_path: Path) -> None:
    chunks: list[str] = []
    argv = [
        "bash",
        "-c",
        r"printf '\xc3'; sleep 0.2; printf '\xa9\xe2\x82'; sleep 0.2; printf '\xac\n'",
    ]
    result = run(
        run_process(argv, env=sandbox_env({}, home=str(tmp_path)), cwd=tmp_path,
                    limits=Limits(timeout_s=30), on_output=chunks.append)
    )  # fmt: skip
    assert result.output == "é€\n"
    assert "".join(chunks) == "é€\n"
    assert "\ufffd" not in "".join(chunks)


def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    result = run(
        run_process(["bash", "-c", r"printf 'a\xffb\n'"], env=sandbox_env({}, home="/"),
                    cwd=tmp_path, limits=Limits(timeout_s=30))
    )  # fmt: skip
    assert result.output == "a\ufffdb\n"


def test_an_exception_in_on_output_kills_the_command_and_propagates(tmp_path: Path) -> None:
    token = f"errand-{uuid.uuid4().hex[:10]}"

    def explode(text: str) -> None:
        raise ValueError("sink broke")

    argv = ["bash", "-c", f"(exec -a {token} sleep 300) & sleep 0.2; echo hi; sleep 300"]
    with pytest.raises(ValueError, match="sink broke"):
        run(run_process(argv, env=sandbox_env({}, home="/"), cwd=tmp_path,
                        limits=Limits(timeout_s=60), on_output=explode))  # fmt: skip
    assert processes_gone(pids_with, token)


def test_background_jobs_do_not_outlive_their_command(tmp_path: Path) -> None:
    token = f"errand-{uuid.uuid4().hex[:10]}"
    argv = ["bash", "-c", f"(exec -a {token} sleep 300) & echo started"]
    result = run(
        run_process(argv, env=sandbox_env({}, home="/"), cwd=tmp_path, limits=Limits(timeout_s=60))
    )
    assert result.exit_code == 0 and result.output == "started\n" and not result.timed_out
    assert processes_gone(pids_with, token)


def test_sandbox_env_is_an_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv("PATH", "/usr/bin:.:relative/bin::/bin")
    env = sandbox_env({"EXTRA": "x"}, home="/tmp/home")
    assert env["PATH"] == "/usr/bin:/bin" == env["ERRAND_SANDBOX_PATH"]
    assert env["HOME"] == "/tmp/home" and env["EXTRA"] == "x"
    assert "OPENAI_API_KEY" not in env
    assert set(env) == {"PATH", "HOME", "LANG", "LC_ALL", "TERM", "TMPDIR", "PAGER",
                        "GIT_PAGER", "ERRAND_SANDBOX_PATH", "EXTRA"}  # fmt: skip


# --- the none backend --------------------------------------------------------------------


def test_none_backend_runs_on_the_host_with_caps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    token = f"errand-{uuid.uuid4().hex[:10]}"

    async def go() -> None:
        sb = await open_sandbox("none", SandboxSpec(root=tmp_path, limits=Limits(timeout_s=60)))
        assert sb.name == "none"
        r = await sb.run("env; echo made > f; exit 5")
        assert r.exit_code == 5 and "sk-test-secret" not in r.output
        assert (tmp_path / "f").read_text() == "made\n"
        r = await sb.run(f"(exec -a {token} sleep 300) & sleep 300", timeout_s=2)
        assert (r.exit_code, r.timed_out, r.killed_reason) == (TIMEOUT_EXIT_CODE, True, "timeout")
        assert processes_gone(pids_with, token)
        r = await sb.run("ulimit -v; ulimit -d; ulimit -f")
        assert r.output.split() == ["unlimited", str((2 << 30) // 1024), str((1 << 30) // 1024)]
        await sb.close()

    run(go())


@pytest.mark.parametrize(("size", "killed"), [(8192, False), (8193, True)])
def test_output_kill_cap_boundary(tmp_path: Path, size: int, killed: bool) -> None:
    limits = Limits(timeout_s=3, max_output_bytes=1024)  # kill cap: 8 x 1024 bytes
    argv = ["bash", "-c", f"head -c {size} /dev/zero; sleep 60"]
    result = run(run_process(argv, env=sandbox_env({}, home="/"), cwd=tmp_path, limits=limits,
                             stop=None))  # fmt: skip
    if killed:
        assert (result.exit_code, result.killed_reason) == (137, "output cap")
    else:
        assert (result.exit_code, result.killed_reason) == (TIMEOUT_EXIT_CODE, "timeout")


ORPHAN_SCRIPT = """
import asyncio, sys
from pathlib import Path
from errand.sandbox import Limits, SandboxSpec, cgroup, open_sandbox

async def main():
    (Path(sys.argv[1]) / "folder.txt").write_text(str(cgroup.detect().pids))
    sb = await open_sandbox("none", SandboxSpec(root=Path(sys.argv[1]), limits=Limits()))
    await sb.run(f"exec -a {sys.argv[2][::-1]} sleep 300")  # not in our own argv

asyncio.run(main())
"""


def _named(token: str) -> list[int]:
    """Processes whose argv[0] is ``token``."""
    found = []
    for pid in pids_with(token):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] == token.encode():
                found.append(pid)
    return found


def test_commands_left_by_a_killed_server_are_reaped_at_the_next_start(tmp_path: Path) -> None:
    from errand.sandbox import cgroup, cgroup_folders

    support = cgroup.detect()
    if support is None:
        pytest.skip("no per-command cgroups here (needs root and a writable cgroup hierarchy)")
    token = f"errand-orphan-{uuid.uuid4().hex[:8]}"
    server = subprocess.Popen([sys.executable, "-c", ORPHAN_SCRIPT, str(tmp_path), token[::-1]])
    try:
        # Wait for the command itself (renamed by `exec -a`): the wrappers that start it
        # carry the token in their arguments before they have joined the cgroup.
        deadline = time.monotonic() + 60
        while not _named(token) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _named(token), "the command never started"
    finally:
        server.kill()
        server.wait()
    # The none backend has no parent-death signal: the command outlives its server.
    assert pids_with(token)
    cgroup_folders.reap_stale(support.pids.parent)  # what the next server's start does
    deadline = time.monotonic() + 10
    while pids_with(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_gone(pids_with, token)
    assert not Path((tmp_path / "folder.txt").read_text()).exists()
