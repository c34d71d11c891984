"""``reflink`` copies: ``cp --reflink=always`` of the shared base, so data blocks are
shared until written. Needs a filesystem with reflinks (btrfs, XFS, bcachefs...) under
the data folder.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from errand.config.paths import DataPaths
from errand.workspace.copies.base import (
    CopyUnavailable,
    TaskCopy,
    Unmounted,
    index_path,
    refuse_existing,
    tree_bytes,
)
from errand.workspace.copies.bases import ensure_base, finish_copy
from errand.workspace.copies.mounts import rmtree
from errand.workspace.snapshot import Snapshot


class ReflinkCopies(Unmounted):
    """``cp --reflink=always`` of the shared base: blocks are shared until written."""

    kind = "reflink"

    def __init__(self, paths: DataPaths) -> None:
        self.paths = paths

    def create(self, snapshot: Snapshot, dest: Path) -> TaskCopy:
        refuse_existing(dest)
        base, changes = ensure_base(self.paths, snapshot)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            proc = subprocess.run(
                [
                    "cp",
                    "-a",
                    "--reflink=always",
                    "--no-target-directory",
                    str(base.path),
                    str(dest),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise CopyUnavailable(f"cp --reflink=always failed: {proc.stderr.strip()}")
            index = finish_copy(snapshot, dest, base, changes, refresh=True)
        except BaseException:
            self.remove(TaskCopy(dest, index_path(dest), self.kind))
            raise
        return TaskCopy(dest, index, self.kind)

    def remove(self, copy: TaskCopy) -> None:
        rmtree(copy.path)
        copy.index.unlink(missing_ok=True)

    def disk_usage(self, copy: TaskCopy) -> int:
        # Shared extents are counted in full: an upper bound of what removing frees.
        return tree_bytes(copy.path)
