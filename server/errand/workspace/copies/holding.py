"""Copies in use.

A copy in use (being made, or an attempt running in it) is held with an flock on
``<copy>.lock``. Garbage collection in any process (a second server, a CLI command on
the same data folder) leaves held copies alone; a crashed server's locks go with it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from errand.workspace.copies.base import CopyUnavailable, lock_path

_held_lock = threading.Lock()


_held: dict[Path, int] = {}


def hold(dest: Path) -> None:
    """Mark ``dest`` in use by this process (idempotent)."""
    with _held_lock:
        if dest in _held:
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path(dest), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CopyUnavailable(f"{dest} is in use by another errand process") from None
        _held[dest] = fd


def let_go(dest: Path, *, forget: bool = False) -> None:
    """Stop holding ``dest``; ``forget`` also deletes its lock file."""
    with _held_lock:
        fd = _held.pop(dest, None)
        if forget:
            lock_path(dest).unlink(missing_ok=True)
        if fd is not None:
            os.close(fd)


def in_use(dest: Path) -> bool:
    """Whether some process (this one included) holds ``dest``."""
    try:
        fd = os.open(lock_path(dest), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
