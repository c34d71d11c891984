"""Carrying out a plan on disk: writes, deletions, and rollback when one fails.

Existing files are replaced by a temporary file and a rename (so a hard link shared with
another tree is never written through); new files are created exclusively, never through
a symlink. When any OS call fails, what was already done is undone in reverse order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

from errand.patch.errors import NOTHING_CHANGED, PatchError
from errand.patch.plan import Entry

log = logging.getLogger(__name__)


def execute(entries: list[Entry]) -> None:
    """Write the planned changes; on any OS error undo what was done and raise PatchError."""
    writes = _Writes()
    try:
        writes.run(entries)
    except OSError as ex:
        raise writes.undo(ex) from ex


class _Writes:
    """The writes done so far, in order, so that they can be undone."""

    def __init__(self) -> None:
        self.done: list[Entry] = []
        self.made_dirs: list[Path] = []
        self.current: Entry | None = None

    def run(self, entries: list[Entry]) -> None:
        """Deletions first (a deleted path may be re-created as a directory), then writes."""
        for e in entries:
            if not e.present:
                self.current = e
                os.unlink(e.real)
                self.done.append(e)
        for e in entries:
            if e.data is None:
                continue
            self.current = e
            if e.orig is not None:
                _write_replace(e.real, e.data, e.mode, like=e.real)
            else:
                _create(e.real, e.data, e.mode, self.made_dirs)
            self.done.append(e)

    def undo(self, ex: OSError) -> PatchError:
        """Roll back after ``ex``; the error to raise says whether that worked."""
        failed = self.current.rel if self.current is not None else "?"
        log.warning("apply_patch: writing %s failed (%s); rolling back", failed, ex)
        broken = _rollback(self.done, self.made_dirs)
        msg = f"Writing {failed} failed: {ex.strerror or ex}."
        if broken:
            return PatchError(
                f"{msg} Rolling back also failed for: {', '.join(broken)}; those files may be "
                "in a partial state. Check them before continuing.",
                partial=True,
            )
        return PatchError(f"{msg} Everything already written was rolled back. {NOTHING_CHANGED}")


def _rollback(done: list[Entry], made_dirs: list[Path]) -> list[str]:
    """Put back what ``done`` changed and remove ``made_dirs``; the paths that failed."""
    broken: list[str] = []
    for e in reversed(done):
        try:
            _restore(e)
        except OSError as ex:
            log.error("apply_patch: rollback of %s failed: %s", e.rel, ex)
            broken.append(e.rel)
    for d in reversed(made_dirs):
        try:
            os.rmdir(d)
        except OSError as ex:
            log.warning("apply_patch: could not remove %s during rollback: %s", d, ex)
    return broken


def _restore(e: Entry) -> None:
    if e.orig_link is not None:
        if not os.path.lexists(e.real):
            os.symlink(e.orig_link, e.real)
    elif e.orig is None:
        os.unlink(e.real)
    elif os.path.lexists(e.real):
        _write_replace(e.real, e.orig, e.orig_mode, like=e.real)
    else:
        _create(e.real, e.orig, e.orig_mode, [])


def _write_replace(path: Path, data: bytes, mode: int | None, like: Path | None = None) -> None:
    """Atomically replace ``path`` by ``data`` (temp file + rename), setting ``mode``."""
    st = os.stat(like) if like is not None and os.path.lexists(like) else None
    fd, tmp = tempfile.mkstemp(prefix=".errand-patch-", dir=path.parent)
    try:
        _fill(fd, data, mode, owner=st)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _create(path: Path, data: bytes, mode: int | None, made_dirs: list[Path]) -> None:
    """Create ``path`` (and missing parent folders, noted in ``made_dirs``) exclusively."""
    missing: list[Path] = []
    parent = path.parent
    while not os.path.lexists(parent):
        missing.append(parent)
        parent = parent.parent
    for d in reversed(missing):
        os.mkdir(d)
        made_dirs.append(d)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    try:
        _fill(fd, data, mode)
    except BaseException:
        os.unlink(path)
        raise


def _fill(fd: int, data: bytes, mode: int | None, owner: os.stat_result | None = None) -> None:
    """Write ``data`` to the new file ``fd`` and close it, with ``mode`` and ``owner``'s ids."""
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        if mode is not None:
            os.fchmod(f.fileno(), mode)
        if owner is not None:
            with contextlib.suppress(OSError):
                os.fchown(f.fileno(), owner.st_uid, owner.st_gid)
