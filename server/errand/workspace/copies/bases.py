"""Bases: read-only checkouts of one commit that copies are made from.

A base is a checkout of the snapshot's HEAD, cached under
``<data>/bases/<repository>/<commit>`` together with a git index whose stat data
matches it. Bases are shared by every task of a repository and built once. The base
carries a small ``.git`` (objects borrowed from errand's mirror, the base's index), so a
copy only sets its HEAD to the snapshot. The user's uncommitted changes (the snapshot
tree against the base commit) are recorded in the copy's index with ``update-index``
and written with ``checkout-index``. errand's private index (outside the copy, for the
final diff) starts as the copy's: the base's stat data plus the snapshot's entries, so
that diff rehashes only what changed and every path of the snapshot is tracked in it.

Every function here is blocking.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from errand.config.paths import DataPaths
from errand.workspace import git
from errand.workspace.copies.base import (
    index_path,
    init_copy_git,
    link_or_copy,
    list_dir,
    mirror_env,
    touch,
    write_git_dir,
)
from errand.workspace.copies.mounts import rmtree
from errand.workspace.snapshot import Snapshot

log = logging.getLogger(__name__)


EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


NEAR_BASE_MAX_CHANGES = 1000
"""Use another cached base of the repository when the snapshot differs from it in at
most this many paths, rather than building a base for the new HEAD."""


RACY_WAIT_INDEX_BYTES = 200_000
"""An index this large (some 2,000 entries) is worth up to a second's wait when its base
is built; see :func:`_outlive_racy_timestamps`."""


@dataclass(frozen=True, slots=True)
class Base:
    path: Path
    index: Path
    commit: str
    """The commit (or :data:`EMPTY_TREE`) checked out in ``path``."""


def _base_at(folder: Path, commit: str) -> Base:
    return Base(folder / commit, folder / f"{commit}.index", commit)


def ensure_base(paths: DataPaths, snapshot: Snapshot) -> tuple[Base, list[TreeChange]]:
    """The base to build ``snapshot``'s copy on, and the changes from it to the snapshot.

    Prefers the base of the snapshot's HEAD; else the most recently used base of the same
    repository when few paths differ; else builds the HEAD's base (slow, once)."""
    folder = paths.bases_of(snapshot.mirror)
    commit = snapshot.head or EMPTY_TREE
    exact = _base_at(folder, commit)
    if not exact.index.exists():
        near = _nearest_base(folder, snapshot)
        if near is not None:
            return near
        _build_base(snapshot, exact)
    touch(exact.path)
    return exact, tree_changes(snapshot.mirror, commit, snapshot.tree)


def _nearest_base(folder: Path, snapshot: Snapshot) -> tuple[Base, list[TreeChange]] | None:
    candidates = sorted(
        (p for p in list_dir(folder) if p.suffix == ".index" and not p.name.startswith(".")),
        key=_mtime_of_stem,
        reverse=True,
    )
    for index in candidates[:1]:
        base = _base_at(folder, index.stem)
        try:
            changes = tree_changes(snapshot.mirror, base.commit, snapshot.tree)
        except git.GitError:
            continue  # its commit is gone from the repository
        if len(changes) <= NEAR_BASE_MAX_CHANGES:
            touch(base.path)
            return base, changes
    return None


def _mtime_of_stem(index: Path) -> float:
    try:
        return index.with_suffix("").stat().st_mtime
    except OSError:
        return 0.0


def _build_base(snapshot: Snapshot, base: Base) -> None:
    base.path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = base.path.with_name(base.path.name + ".lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if base.index.exists():
            return  # built by another task while we waited
        started = time.monotonic()
        tmp = base.path.with_name(f".tmp-{base.commit}-{secrets.token_hex(4)}")
        tmp_index = tmp.with_name(tmp.name + ".index")
        tmp.mkdir()
        try:
            env = mirror_env(snapshot.mirror, tmp, tmp_index)
            tree = snapshot.head or EMPTY_TREE
            git.run(["read-tree", tree], cwd=tmp, env=env)
            git.run(["checkout-index", "--all", "--force", "--index"], cwd=tmp, env=env)
            _outlive_racy_timestamps(tmp, tmp_index, env)
            # The base carries a ``.git`` for its copies (objects from the mirror, the
            # base's index): a copy then only writes its HEAD.
            write_git_dir(
                tmp / ".git", snapshot.mirror, "ref: refs/heads/base\n", tmp_index, link=True
            )
            if base.path.exists():  # a half-made base from a crash
                rmtree(base.path)
            tmp.rename(base.path)
            tmp_index.rename(base.index)
        except BaseException:
            rmtree(tmp)
            tmp_index.unlink(missing_ok=True)
            raise
        log.info("built base %s in %.0f ms", base.path, (time.monotonic() - started) * 1000)


def _outlive_racy_timestamps(work_tree: Path, index: Path, env: dict[str, str]) -> None:
    """Rewrite the base's index in a later second than any file it lists.

    git (built without nanosecond timestamps, as Debian's is) treats an entry whose
    mtime is not older than the index file's, to the second, as "racily clean" and
    re-checks the file each time it writes that index. A base checked out within the
    same second as its index would make every copy's first ``update-index`` lstat
    thousands of files. Waiting out the second once, when the base is built, spares that.
    Small bases (few racy entries, cheap to re-check) skip the wait.
    """
    info = index.stat()
    if info.st_size < RACY_WAIT_INDEX_BYTES:
        return
    written = info.st_mtime
    time.sleep(max(0.0, math.floor(written) + 1.01 - time.time()))
    git.run(["update-index", "-q", "--refresh", "--force-write-index"], cwd=work_tree, env=env)


@dataclass(frozen=True, slots=True)
class TreeChange:
    path: bytes
    mode: str
    """The new mode; ``000000`` when the path is deleted."""
    sha: str

    @property
    def deleted(self) -> bool:
        return self.mode == "000000"


def tree_changes(mirror: Path, base: str, tree: str) -> list[TreeChange]:
    """Every path that differs between ``base`` and ``tree`` (no rename detection)."""
    out = git.run_bytes(
        ["diff-tree", "-r", "-z", "--no-renames", base, tree],
        env={"GIT_DIR": str(mirror), **git.ISOLATED},
    )
    fields = out.split(b"\0")
    changes: list[TreeChange] = []
    for i in range(0, len(fields) - 1, 2):
        meta = fields[i].decode("ascii").split(" ")
        if len(meta) < 5:
            break
        changes.append(TreeChange(fields[i + 1], meta[1], meta[3]))
    return changes


def apply_changes(mirror: Path, work_tree: Path, index: Path, changes: list[TreeChange]) -> None:
    """Bring ``work_tree`` and its ``index`` (both at the base) to the snapshot.

    Deleted paths are unlinked and folders left empty removed; ``update-index
    --index-info`` records the new entries (without stat data: git hashes those few files
    once); ``checkout-index`` writes them as git would, with modes, symlinks, submodule
    folders and the repository's attributes (end of line, filters), and without following
    a symlink in the way. ``index`` is read, not rewritten, by the checkout."""
    for change in changes:
        if change.deleted:
            _remove_path(work_tree, change.path)
    env = mirror_env(mirror, work_tree, index)
    removed = [b"0 " + b"0" * 40 + b"\t" + c.path + b"\0" for c in changes if c.deleted]
    added = [
        c.mode.encode() + b" " + c.sha.encode() + b"\t" + c.path + b"\0"
        for c in changes
        if not c.deleted
    ]
    git.run_bytes(
        ["update-index", "-z", "--index-info"],
        cwd=work_tree,
        env=env,
        input_bytes=b"".join(removed + added),
    )
    written = b"".join(c.path + b"\0" for c in changes if not c.deleted)
    if written:
        git.run_bytes(
            ["checkout-index", "--force", "-z", "--stdin"],
            cwd=work_tree,
            env=env,
            input_bytes=written,
        )


def _remove_path(root: Path, rel: bytes) -> None:
    stop = os.fsencode(root)
    target = os.path.join(stop, rel)
    try:
        if os.path.isdir(target) and not os.path.islink(target):
            os.rmdir(target)  # a submodule's empty folder
        else:
            os.unlink(target)
    except (FileNotFoundError, NotADirectoryError):
        pass
    except OSError as exc:
        log.debug("could not remove %r: %s", target, exc)
    parent = os.path.dirname(target)
    while parent != stop and parent.startswith(stop):
        try:
            os.rmdir(parent)
        except OSError:
            break
        parent = os.path.dirname(parent)


def finish_copy(
    snapshot: Snapshot, dest: Path, base: Base, changes: list[TreeChange], *, refresh: bool
) -> Path:
    """Put the user's changes into a copy of the base and give it its indexes.

    errand's private index starts as the base's (a hard link: git replaces an index by
    renaming, never writes into it): stat data of untouched files still matches (overlay
    keeps inode numbers and times), and ``git add`` at the end rehashes whatever differs.
    The copy's own ``.git`` comes with the base; its HEAD is set to the snapshot and its
    index updated to the snapshot, so ``git status`` inside the sandbox shows only what
    the agent did."""
    index = index_path(dest)
    link_or_copy(base.index, index)
    if refresh:  # the files' inode numbers and ctimes differ from the base's
        env = mirror_env(snapshot.mirror, dest, index)
        git.run(["update-index", "-q", "--refresh"], cwd=dest, env=env)
    git_dir = dest / ".git"
    if (git_dir / "index").is_file() and (git_dir / "objects" / "info" / "alternates").is_file():
        (git_dir / "HEAD").write_text(f"{snapshot.commit}\n", encoding="ascii")
        if refresh:
            (git_dir / "index").unlink()
            shutil.copy2(index, git_dir / "index")
    else:  # a base made before bases carried their .git
        init_copy_git(snapshot, dest, index)
    if changes:
        apply_changes(snapshot.mirror, dest, git_dir / "index", changes)
        # errand's private index must list the snapshot, not the base: a path the user
        # added (an untracked file, an ignored one they force-added) is then tracked
        # when the result is recorded, so no ignore rule can drop it from the result and
        # turn it into a deletion the user never asked for. The copy's index holds just
        # that, written before the agent could touch it.
        index.unlink()
        shutil.copy2(git_dir / "index", index)
    return index
