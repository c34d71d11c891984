"""Mounting and unmounting overlays, and reading the mount table."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
from pathlib import Path

from errand.workspace.copies.base import CopyUnavailable, make_removable

log = logging.getLogger(__name__)


_MS_NOSUID = 2


_MS_NODEV = 4


_MNT_DETACH = 2


_libc = ctypes.CDLL(None, use_errno=True)


def mount_overlay(lower: Path, upper: Path, work: Path, target: Path) -> None:
    for path in (lower, upper, work):
        text = str(path)
        if any(c in text for c in ",:\\\n"):
            raise CopyUnavailable(f"overlay can't take a path with ',', ':' or '\\': {text}")
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    if _metacopy_supported():
        # chown/chmod of a base file (the Docker backend hands the copy to its user)
        # then copies up metadata only, not the file's data.
        options += ",metacopy=on"
    result = _libc.mount(
        b"errand",
        os.fsencode(target),
        b"overlay",
        ctypes.c_ulong(_MS_NOSUID | _MS_NODEV),
        options.encode(),
    )
    if result != 0:
        code = ctypes.get_errno()
        raise CopyUnavailable(f"overlay mount failed: {os.strerror(code)} (errno {code})")


def _metacopy_supported() -> bool:
    return Path("/sys/module/overlay/parameters/metacopy").exists()


def unmount(target: Path) -> None:
    if _libc.umount2(os.fsencode(target), 0) == 0:
        return
    code = ctypes.get_errno()
    if code == errno.EBUSY:
        # A straggler still has a file open inside: detach now, the kernel frees the
        # mount when it lets go.
        log.warning("copy %s is busy; detaching its mount", target)
        if _libc.umount2(os.fsencode(target), _MNT_DETACH) == 0:
            return
        code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOENT):
        return  # not mounted
    raise OSError(code, f"unmounting {target}: {os.strerror(code)}")


def mounts_under(folder: Path) -> list[Path]:
    """Mount points at or below ``folder``, from ``/proc/self/mountinfo``."""
    prefix = str(folder.resolve()).rstrip("/") + "/"
    found: list[Path] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text("utf-8", "surrogateescape").splitlines()
    except OSError:
        return found
    for line in lines:
        parts = line.split(" ")
        if len(parts) < 5:
            continue
        point = _unescape_mount(parts[4])
        if point == prefix.rstrip("/") or point.startswith(prefix):
            found.append(Path(point))
    return found


def _unescape_mount(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 3 < len(text) + 1 and text[i + 1 : i + 4].isdigit():
            out.append(chr(int(text[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def filesystem_type(path: Path) -> str:
    """The filesystem type of the mount holding ``path`` (``ext4``, ``btrfs``...)."""
    target = path
    while not target.exists() and target != target.parent:
        target = target.parent
    target = target.resolve()
    best, kind = "", "unknown"
    try:
        lines = Path("/proc/self/mountinfo").read_text("utf-8", "surrogateescape").splitlines()
    except OSError:
        return kind
    for line in lines:
        left, _, right = line.partition(" - ")
        point = _unescape_mount(left.split(" ")[4]) if len(left.split(" ")) > 4 else ""
        inside = str(target) == point or str(target).startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best) and right:
            best, kind = point, right.split(" ")[0]
    return kind


def rmtree(path: Path) -> None:
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
        return
    if mounts_under(path):
        raise OSError(errno.EBUSY, f"refusing to delete {path}: something is mounted inside")
    make_removable(path)
    shutil.rmtree(path, ignore_errors=True)
