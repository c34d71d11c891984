"""The one process that owns a data folder.

Every engine that writes a data folder (the daemon's, or an in-process one with
``ERRAND_DAEMON=off``) holds an exclusive flock on ``<data>/owner.lock`` for its whole
life. Only the owner recovers (marks attempts of dead owners ``interrupted``) and
collects garbage, so a second process can never mark a live owner's running attempts
as interrupted. The kernel drops the lock however the owner ends; the pid written in
the file is only there to be named in messages.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class DataFolderBusy(RuntimeError):
    def __init__(self, folder: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"the data folder {folder} is owned by another errand ({who}); its tasks are "
            "shown by `errand tasks`, and that errand's daemon serves every window"
        )
        self.pid = pid


class Owner:
    """The owner lock, held until :meth:`release`."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataFolderBusy(path.parent, owner_pid(path)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd: int | None = fd
        self.path = path

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def owner_pid(path: Path) -> int | None:
    """The pid the owner wrote, or None."""
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().strip())
    return None
