"""``overlay`` copies: an overlayfs mount per attempt over a shared base checkout.

The base is the lower layer, each attempt gets its own upper and work folders. Making
one costs a mount and the user's uncommitted changes; nothing is copied. Needs root: an
overlay mounted inside a user namespace is invisible to the server process, which
applies patches and records diffs on the copy itself.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from errand.config.paths import DataPaths
from errand.workspace.copies.base import (
    CopyUnavailable,
    TaskCopy,
    index_path,
    layers_path,
    refuse_existing,
    touch,
    tree_bytes,
)
from errand.workspace.copies.bases import ensure_base, finish_copy
from errand.workspace.copies.mounts import mount_overlay, rmtree, unmount
from errand.workspace.snapshot import Snapshot


class OverlayCopies:
    """An overlayfs mount per attempt over a shared base checkout."""

    kind = "overlay"

    def __init__(self, paths: DataPaths) -> None:
        self.paths = paths

    def create(self, snapshot: Snapshot, dest: Path) -> TaskCopy:
        refuse_existing(dest)
        base, changes = ensure_base(self.paths, snapshot)
        layers = layers_path(dest)
        dest.mkdir(parents=True, exist_ok=False)
        try:
            (layers / "upper").mkdir(parents=True)
            (layers / "work").mkdir()
            (layers / "lower").symlink_to(base.path)
            mount_overlay(base.path, layers / "upper", layers / "work", dest)
            index = finish_copy(snapshot, dest, base, changes, refresh=False)
        except BaseException:
            self.remove(TaskCopy(dest, index_path(dest), self.kind))
            raise
        return TaskCopy(dest, index, self.kind)

    def reopen(self, copy: TaskCopy) -> None:
        if os.path.ismount(copy.path):
            return
        layers = layers_path(copy.path)
        lower = layers / "lower"
        if not lower.exists():
            raise CopyUnavailable(f"the base of copy {copy.path} is gone")
        copy.path.mkdir(parents=True, exist_ok=True)
        touch(lower.resolve())
        mount_overlay(lower.resolve(), layers / "upper", layers / "work", copy.path)

    def release(self, copy: TaskCopy) -> None:
        if os.path.ismount(copy.path):
            unmount(copy.path)

    def remove(self, copy: TaskCopy) -> None:
        self.release(copy)
        if os.path.ismount(copy.path):
            raise OSError(errno.EBUSY, f"{copy.path} is still mounted")
        layers = layers_path(copy.path)
        rmtree(layers)
        with contextlib.suppress(OSError):
            copy.path.rmdir()
        if copy.path.exists():  # only if something wrote into the bare mount point
            rmtree(copy.path)
        copy.index.unlink(missing_ok=True)

    def disk_usage(self, copy: TaskCopy) -> int:
        return tree_bytes(layers_path(copy.path) / "upper")
