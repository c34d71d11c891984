"""Where the daemon listens, how a front end finds or starts it, and how it is stopped.

One daemon per user and data folder. Its socket lives in a folder only the user can
open (``$XDG_RUNTIME_DIR/errand``, else ``/tmp/errand-<uid>``, mode 0700), named after
the data folder, so that every front end of that folder finds the same one. Which
process owns the data folder is decided by the owner lock (see
:mod:`errand.engine.owner`), never by the socket: a daemon that can't take the lock
exits and names the owner.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import stat
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from errand.config.paths import DataPaths

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
"""How long a front end waits for the daemon it started to answer."""


class DaemonError(RuntimeError):
    """The daemon can't be reached or started; the message says why and what to do."""


def socket_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "errand"
    return Path(f"/tmp/errand-{os.getuid()}")


def socket_path(paths: DataPaths) -> Path:
    """The socket of the daemon of ``paths`` (short: Unix socket paths are limited)."""
    key = hashlib.sha256(str(paths.root.absolute()).encode()).hexdigest()[:16]
    return socket_dir() / f"{key}.sock"


def private_dir(folder: Path) -> Path:
    """``folder``, made if need be, after checking that only this user can open it."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise DaemonError(
            f"{folder} is not a folder of this user (uid {os.getuid()}); remove it or set "
            "XDG_RUNTIME_DIR to a private folder"
        )
    if info.st_mode & 0o077:
        os.chmod(folder, 0o700)
    return folder


def start_detached(
    data_dir: Path, log_file: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``errand daemon`` for ``data_dir`` in its own session: it outlives the
    front end that started it. It gets this process's environment with ``env`` on top
    (the starting front end's settings); its stderr goes to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "errand", "daemon", "--data-dir", str(data_dir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
            close_fds=True,
            env={**os.environ, **(env or {})},
        )


async def wait_for_socket(path: Path, process: subprocess.Popen[bytes], log_file: Path) -> None:
    """Until the started daemon listens, or say why it did not."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if path.exists():
            try:
                _, writer = await asyncio.open_unix_connection(str(path))
            except OSError:
                pass
            else:
                writer.close()
                return
        if process.poll() is not None:
            # It exited: another daemon may have won the start; its socket then answers.
            if path.exists():
                return
            raise DaemonError(f"errand's daemon exited at once: {last_lines(log_file)}")
        await asyncio.sleep(0.05)
    raise DaemonError(
        f"errand's daemon did not answer on {path} within {START_TIMEOUT_S:g}s: "
        f"{last_lines(log_file)}"
    )


def last_lines(log_file: Path, count: int = 3) -> str:
    try:
        lines = log_file.read_text("utf-8", "replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " / ".join(lines[-count:]) or "(no output)"
