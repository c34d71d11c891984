"""``checkout`` copies: a full checkout of the snapshot into a fresh folder. Works
everywhere; the fallback of the faster kinds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from errand.workspace import git
from errand.workspace.copies.base import (
    TaskCopy,
    Unmounted,
    init_copy_git,
    make_removable,
    mirror_env,
    tree_bytes,
)
from errand.workspace.snapshot import Snapshot


class CheckoutCopies(Unmounted):
    """A full checkout of the snapshot into a fresh folder."""

    kind = "checkout"

    def create(self, snapshot: Snapshot, dest: Path) -> TaskCopy:
        index = dest.with_name(dest.name + ".index")
        dest.mkdir(parents=True, exist_ok=False)
        env = mirror_env(snapshot.mirror, dest, index)
        git.run(["read-tree", snapshot.tree], cwd=dest, env=env)
        # --index records stat data, so the first diff only rehashes what changed.
        git.run(["checkout-index", "--all", "--force", "--index"], cwd=dest, env=env)
        init_copy_git(snapshot, dest, index)
        return TaskCopy(dest, index, self.kind)

    def remove(self, copy: TaskCopy) -> None:
        make_removable(copy.path)
        shutil.rmtree(copy.path, ignore_errors=True)
        copy.index.unlink(missing_ok=True)

    def disk_usage(self, copy: TaskCopy) -> int:
        return tree_bytes(copy.path)
