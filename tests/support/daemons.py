"""errand daemons for tests: each test gets its own runtime folder (so its socket never
meets another test's or the user's), and its daemon is stopped when it ends."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from support.lsp_harness import server_env


def daemon_env(tmp_path: Path, url: str, model: str, **extra: str) -> dict[str, str]:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    settings = {
        "ERRAND_DAEMON": "auto",
        "XDG_RUNTIME_DIR": str(runtime),
        "ERRAND_DAEMON_IDLE_SECONDS": "120",
        **extra,
    }
    return server_env(tmp_path, url, model, **settings)


def errand(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``errand ARGS`` as the user types it, with ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "errand", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def daemon_pid(env: dict[str, str]) -> int:
    status = errand(env, "daemon", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    return int(status.stdout.split()[1])


def wait_gone(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if _zombie(pid):
            return
        time.sleep(0.1)
    raise AssertionError(f"pid {pid} still runs after {timeout}s")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def stop(env: dict[str, str]) -> None:
    """Stop the test's daemon, if one runs, attempts and all."""
    errand(env, "daemon", "stop", "--force")
