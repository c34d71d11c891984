"""The bubblewrap backend, run for real: caps, kills, confinement, environment, preflight."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import errand
from errand.sandbox import Limits, SandboxSpec, SandboxUnavailable, bwrap, open_sandbox
from errand.sandbox.process import CUT_MARKER, TIMEOUT_EXIT_CODE
from support.processes import processes_gone

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None and os.environ.get("CI") != "true",
    reason="bubblewrap is not installed (CI installs it; there this test fails instead)",
)


T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def pids_with(token: str) -> list[int]:
    """Host pids whose command line contains ``token``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if token.encode() in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


class Places:
    """A fake user repository and a task copy, outside /tmp so that the host's /tmp
    being hidden does not make the confinement checks vacuous."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.repo = base / "repo"
        self.copy = base / "copy"
        self.repo.mkdir()
        self.copy.mkdir()
        subprocess.run(["git", "init", "-q", str(self.repo)], check=True)
        (self.repo / "tracked.txt").write_text("user data\n")
        (self.copy / "tracked.txt").write_text("copy data\n")


@pytest.fixture
def places() -> Iterator[Places]:
    base = Path(tempfile.mkdtemp(prefix="errand-test-", dir="/var/tmp")).resolve()
    try:
        yield Places(base)
    finally:
        subprocess.run(["chmod", "-R", "u+rwX", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)


def spec(places: Places, **kw: object) -> SandboxSpec:
    limits = kw.pop("limits", Limits(timeout_s=60))
    return SandboxSpec(root=places.copy, limits=limits, **kw)  # type: ignore[arg-type]


async def sh(places: Places, command: str, kind: str = "bwrap", **kw: object) -> tuple[int, str]:
    sb = await open_sandbox(kind, spec(places, **kw))
    try:
        result = await sb.run(command)
    finally:
        await sb.close()
    return result.exit_code, result.output


# --- exit codes and output ----------------------------------------------------------


def test_exit_codes(places: Places) -> None:
    async def go() -> list[int]:
        sb = await open_sandbox("bwrap", spec(places))
        codes = [(await sb.run(c)).exit_code for c in ("true", "exit 7", "kill -9 $$", "false")]
        await sb.close()
        return codes

    assert run(go()) == [0, 7, 137, 1]


@pytest.mark.parametrize("kind", ["bwrap", "none"])
def test_commands_run_in_a_login_shell_that_keeps_the_servers_path(
    places: Places, kind: str
) -> None:
    code, output = run(sh(places, 'shopt -q login_shell && echo login; echo "$PATH"', kind))
    assert code == 0
    first, path = output.splitlines()
    assert first == "login"
    server_path = [p for p in os.environ["PATH"].split(":") if p.startswith("/")]
    assert path.split(":") == server_path


def test_streaming_output_in_order_and_merged(places: Places) -> None:
    chunks: list[str] = []
    command = "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; sleep 0.05; done; printf 'é\\n'"

    async def go() -> str:
        sb = await open_sandbox("bwrap", spec(places))
        result = await sb.run(command, on_output=chunks.append)
        await sb.close()
        assert result.exit_code == 0
        return result.output

    output = run(go())
    expected = "".join(f"out{i}\nerr{i}\n" for i in range(1, 6)) + "é\n"
    assert output == expected
    assert "".join(chunks) == expected
    assert len(chunks) > 1  # delivered while running, not in one piece at the end


def test_output_cap_keeps_head_and_tail_with_marker(places: Places) -> None:
    limits = Limits(timeout_s=60, max_output_bytes=10_000)
    # 30 000 bytes: under the kill cap (8x), over the capture cap.
    command = "echo FIRST; head -c 29988 /dev/zero | tr '\\0' x; echo; echo LAST"

    async def go() -> tuple[str, bool, str | None, int]:
        sb = await open_sandbox("bwrap", spec(places, limits=limits))
        r = await sb.run(command)
        await sb.close()
        return r.output, r.truncated, r.killed_reason, r.exit_code

    output, truncated, reason, code = run(go())
    total = len("FIRST\n") + 29988 + 1 + len("LAST\n")
    assert code == 0 and truncated and reason is None
    assert output.startswith("FIRST\n") and output.endswith("x\nLAST\n")
    marker = CUT_MARKER.format(cut=total - 10_000)
    assert marker in output
    assert len(output.encode()) <= 10_000 + len(marker) + 2


def test_endless_output_is_killed_at_the_hard_cap(places: Places) -> None:
    limits = Limits(timeout_s=120, max_output_bytes=4096)
    streamed: list[str] = []

    async def go() -> tuple[int, str | None, bool]:
        sb = await open_sandbox("bwrap", spec(places, limits=limits))
        r = await sb.run("yes errand", on_output=streamed.append)
        await sb.close()
        return r.exit_code, r.killed_reason, r.timed_out

    code, reason, timed_out = run(go())
    assert (code, reason, timed_out) == (137, "output cap", False)
    assert len("".join(streamed).encode()) <= 8 * 4096


# --- timeouts, cancellation, close ---------------------------------------------------


def _background_command(token: str) -> str:
    # A grandchild in the background, and one that left the process group with setsid.
    return (
        f"(exec -a {token}-bg sleep 300) & "
        f"setsid bash -c 'exec -a {token}-setsid sleep 300' & "
        "sleep 0.2; echo ready; sleep 300"
    )


def test_timeout_kills_the_whole_tree(places: Places) -> None:
    token = f"errand-{uuid.uuid4().hex[:10]}"
    seen_running: list[int] = []

    async def go() -> tuple[int, bool, str | None]:
        sb = await open_sandbox("bwrap", spec(places))

        def on_output(text: str) -> None:
            if "ready" in text:
                seen_running.extend(pids_with(token))

        r = await sb.run(_background_command(token), timeout_s=3, on_output=on_output)
        await sb.close()
        return r.exit_code, r.timed_out, r.killed_reason

    assert run(go()) == (TIMEOUT_EXIT_CODE, True, "timeout")
    assert len(seen_running) >= 2  # the probe sees both grandchildren while they run
    assert processes_gone(pids_with, token)


def test_cancellation_kills_everything_then_propagates(places: Places) -> None:
    token = f"errand-{uuid.uuid4().hex[:10]}"
    seen_running: list[int] = []

    async def go() -> None:
        sb = await open_sandbox("bwrap", spec(places))
        ready = asyncio.Event()

        def on_output(text: str) -> None:
            if "ready" in text:
                seen_running.extend(pids_with(token))
                ready.set()

        task = asyncio.create_task(sb.run(_background_command(token), on_output=on_output))
        await ready.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert processes_gone(pids_with, token)
        await sb.close()

    run(go())
    assert len(seen_running) >= 2


def test_close_kills_running_commands(places: Places) -> None:
    token = f"errand-{uuid.uuid4().hex[:10]}"

    async def go() -> tuple[int, str | None]:
        sb = await open_sandbox("bwrap", spec(places))
        ready = asyncio.Event()
        task = asyncio.create_task(
            sb.run(_background_command(token), on_output=lambda t: ready.set())
        )
        await ready.wait()
        await sb.close()
        r = await task
        with pytest.raises(RuntimeError):
            await sb.run("true")
        return r.exit_code, r.killed_reason

    assert run(go()) == (137, "sandbox closed")
    assert processes_gone(pids_with, token)


# --- filesystem -----------------------------------------------------------------------


def test_writes_inside_the_copy_reach_the_host(places: Places) -> None:
    code, out = run(sh(places, "echo new > made.txt && mkdir -p d/e && echo ok > d/e/f"))
    assert code == 0, out
    assert (places.copy / "made.txt").read_text() == "new\n"
    assert (places.copy / "d" / "e" / "f").read_text() == "ok\n"


def test_writes_outside_the_copy_fail(places: Places) -> None:
    targets = {
        "user repo": places.repo / "evil.txt",
        "user repo file": places.repo / "tracked.txt",
        "user .git": places.repo / ".git" / "config",
        "sibling": places.base / "evil.txt",
        "real home": Path(os.path.expanduser("~")) / f"errand-evil-{uuid.uuid4().hex}",
        "var tmp": Path("/var/tmp") / f"errand-evil-{uuid.uuid4().hex}",
        "run": Path("/run") / f"errand-evil-{uuid.uuid4().hex}",
        "etc": Path("/etc") / f"errand-evil-{uuid.uuid4().hex}",
    }
    before = {name: p.read_bytes() if p.is_file() else None for name, p in targets.items()}
    for name, path in targets.items():
        # The same write works on the host (as this user), so the probe itself is sound…
        if name not in ("user repo file", "user .git"):
            assert os.access(path.parent, os.W_OK), name
        code, out = run(sh(places, f"echo pwned >> {path}"))
        assert code != 0, (name, out)
        assert "Read-only file system" in out or "Permission denied" in out, (name, out)
        after = path.read_bytes() if path.is_file() else None
        assert after == before[name], name


def test_host_tmp_is_hidden_and_sandbox_tmp_and_home_are_private(places: Places) -> None:
    host_file = Path(tempfile.mkstemp(prefix="errand-host-")[1])
    try:
        code, out = run(
            sh(
                places,
                f"test -e {host_file} && echo VISIBLE; "
                "echo t > /tmp/inside && echo h > $HOME/inside && echo $HOME && cat /tmp/inside",
            )
        )
        assert code == 0, out
        assert "VISIBLE" not in out
        assert out.splitlines() == [bwrap.HOME, "t"]
        assert not Path("/tmp/inside").exists()
        assert not (Path(os.path.expanduser("~")) / "inside").exists()
    finally:
        host_file.unlink()


def test_read_only_spec_refuses_writes_but_reads(places: Places) -> None:
    code, out = run(sh(places, "cat tracked.txt; echo x > tracked.txt", writable=False))
    assert code != 0
    assert out.startswith("copy data\n") and "Read-only file system" in out
    assert (places.copy / "tracked.txt").read_text() == "copy data\n"


def test_credential_folders_are_masked(places: Places, monkeypatch: pytest.MonkeyPatch) -> None:
    home = places.base / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY")
    (home / ".netrc").write_text("machine x password hunter2")
    monkeypatch.setenv("HOME", str(home))
    probe = f"cat {home}/.ssh/id_ed25519 {home}/.netrc"
    outside = subprocess.run(["bash", "-c", probe], capture_output=True, text=True)
    assert "PRIVATE KEY" in outside.stdout and "hunter2" in outside.stdout
    code, out = run(sh(places, probe))
    assert "PRIVATE KEY" not in out and "hunter2" not in out
    assert code != 0


# --- network and environment ------------------------------------------------------------


def test_network_is_blocked_but_the_probe_works_outside(places: Places) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    probe = (
        # The real interpreter: a venv under /tmp would be hidden by the private /tmp.
        f"{shlex_quote(os.path.realpath(sys.executable))} -c "
        f"\"import socket; socket.create_connection(('127.0.0.1', {port}), 3); print('CONNECTED')\""
    )
    try:
        outside = subprocess.run(["bash", "-c", probe], capture_output=True, text=True)
        assert outside.returncode == 0 and "CONNECTED" in outside.stdout
        code, out = run(sh(places, probe))
        assert code != 0 and "CONNECTED" not in out
        assert "Connection refused" in out or "Network is unreachable" in out
        # …and with spec.network the same probe connects from inside.
        code, out = run(sh(places, probe, network=True))
        assert code == 0 and "CONNECTED" in out
    finally:
        listener.close()


def shlex_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def test_environment_is_an_allowlist(places: Places, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-test-secret")
    monkeypatch.setenv("ERRAND_PARENT_ONLY", "parent-value")
    code, out = run(sh(places, "env; cat /proc/1/environ | tr '\\0' '\\n'", env={"EXTRA": "1"}))
    assert code == 0
    assert "sk-test-secret" not in out and "ghp-test-secret" not in out
    assert "parent-value" not in out and "OPENAI" not in out
    names = {line.split("=", 1)[0] for line in out.splitlines() if "=" in line}
    assert {"PATH", "HOME", "LANG", "EXTRA"} <= names


# --- preflight --------------------------------------------------------------------------


def test_preflight_names_the_fix_when_bwrap_is_missing(
    places: Places, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxUnavailable) as info:
        run(open_sandbox("bwrap", spec(places)))
    message = str(info.value)
    assert "not installed" in message and "apt-get install bubblewrap" in message
    assert "never falls back" in message


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        ("bwrap: loopback: Failed RTM_NEWADDR: Operation not permitted", "apparmor"),
        ("bwrap: Failed to make / slave: Permission denied", "container"),
        ("bwrap: No permissions to create new namespace", "unprivileged_userns_clone"),
        ("bwrap: setting up uid map: Permission denied", "max_user_namespaces"),
    ],
)
def test_fix_hints_for_known_field_failures(stderr: str, expected: str) -> None:
    assert expected in bwrap._fix_hint(stderr).lower()


# --- an unprivileged server user ----------------------------------------------------------


UNPRIVILEGED_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from errand.sandbox import Limits, SandboxSpec, open_sandbox

    FORKER = (
        "import os, time\\n"
        "n = 0\\n"
        "for _ in range(60):\\n"
        "    try:\\n"
        "        if os.fork() == 0:\\n"
        "            time.sleep(3); os._exit(0)\\n"
        "        n += 1\\n"
        "    except OSError:\\n"
        "        break\\n"
        "print(n)"
    )

    async def main():
        spec = SandboxSpec(root=Path(sys.argv[1]), limits=Limits(timeout_s=60, max_processes=20))
        sb = await open_sandbox("bwrap", spec)
        r1 = await sb.run("id -u; echo x > made && echo WROTE")
        r2 = await sb.run(f"{sys.executable} -c '{FORKER}'")
        await sb.close()
        print(r1.output, r2.output, sep="\\n---\\n")

    asyncio.run(main())
    """
)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to switch to an unprivileged user")
def test_works_for_an_unprivileged_user_with_a_per_sandbox_process_cap(places: Places) -> None:
    os.chmod(places.base, 0o755)
    os.chown(places.copy, 65534, 65534)
    # The errand code that user runs, copied where it can read it: the checkout may not
    # be readable by others (a clone under /root, which is 0700 on Debian).
    src = places.base / "pylib"
    shutil.copytree(
        Path(errand.__file__).parent, src / "errand", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(["chmod", "-R", "a+rX", str(src)], check=True)
    # The system interpreter: a virtualenv under /root is not readable by that user.
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    assert python is not None
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         python, "-c", UNPRIVILEGED_SCRIPT, str(places.copy)],
        capture_output=True, text=True,
        env={"PYTHONPATH": str(src), "PATH": os.environ["PATH"], "PYTHONDONTWRITEBYTECODE": "1"},
        cwd="/", timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.split("---")
    assert first.split() == ["65534", "WROTE"]
    assert (places.copy / "made").stat().st_uid == 65534
    assert 0 < int(second.split()[-1]) < 20  # forks stopped at the sandbox's own cap
