"""What every kind of task copy shares: the copy itself, the provider contract, and the
files beside it.

A task copy is a plain folder made from a snapshot by a :class:`CopyProvider`. It has
its own small ``.git`` (so ``git diff`` works inside the sandbox) whose objects borrow
from the mirror. Beside it live errand's private index (``<copy>.index``), the overlay
layers of an overlay copy (``<copy>.layers``) and the lock that marks it in use
(``<copy>.lock``).

Every function here is blocking.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from errand.workspace import git
from errand.workspace.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class TaskCopy:
    path: Path
    index: Path
    """errand's private index for diffing the copy; never inside the copy."""
    kind: str
    reason: str = ""
    """Why this kind of copy was made (see :func:`errand.copies.choose_provider`)."""


class CopyProvider(Protocol):
    """Makes and removes task copies (see :mod:`errand.copies` for the kinds)."""

    @property
    def kind(self) -> str: ...

    def create(self, snapshot: Snapshot, dest: Path) -> TaskCopy:
        """Make a copy of ``snapshot`` at ``dest`` (which must not exist)."""
        ...

    def reopen(self, copy: TaskCopy) -> None:
        """Make a released copy usable again (mount it); a no-op when it is."""
        ...

    def release(self, copy: TaskCopy) -> None:
        """Let go of what a copy holds while no attempt runs in it (its mount); its
        files stay and :meth:`reopen` brings it back."""
        ...

    def remove(self, copy: TaskCopy) -> None: ...

    def disk_usage(self, copy: TaskCopy) -> int:
        """Bytes the copy uses on its own (not counting a shared base)."""
        ...


class Unmounted:
    """For kinds of copy that hold nothing between attempts (no mount): reopening and
    releasing have nothing to do."""

    def reopen(self, copy: TaskCopy) -> None:
        return None

    def release(self, copy: TaskCopy) -> None:
        return None


class CopyUnavailable(RuntimeError):
    """This kind of copy cannot be made here; the message says why."""


def mirror_env(mirror: Path, work_tree: Path, index: Path) -> dict[str, str]:
    return {
        "GIT_DIR": str(mirror),
        "GIT_WORK_TREE": str(work_tree),
        "GIT_INDEX_FILE": str(index),
        **git.ISOLATED,
    }


_COPY_GIT_CONFIG = """[core]
\trepositoryformatversion = 0
\tfilemode = true
\tbare = false
\tlogallrefupdates = true
"""


def init_copy_git(snapshot: Snapshot, dest: Path, index: Path) -> None:
    """Give the copy a small ``.git`` of its own: HEAD at the snapshot commit, objects
    borrowed from the mirror, and an index that matches the checked-out files."""
    write_git_dir(dest / ".git", snapshot.mirror, f"{snapshot.commit}\n", index)


def write_git_dir(
    git_dir: Path, mirror: Path, head: str, index: Path, *, link: bool = False
) -> None:
    """Write what ``git init --template=`` makes (sparing a process), with objects
    borrowed from ``mirror``, ``head`` as HEAD's content and a copy of ``index`` (a hard
    link when ``link``: git replaces an index by renaming, never writes into it)."""
    (git_dir / "objects" / "info").mkdir(parents=True)
    (git_dir / "objects" / "pack").mkdir()
    (git_dir / "refs" / "heads").mkdir(parents=True)
    (git_dir / "refs" / "tags").mkdir()
    (git_dir / "config").write_text(_COPY_GIT_CONFIG, encoding="utf-8")
    (git_dir / "objects" / "info" / "alternates").write_text(
        f"{mirror / 'objects'}\n", encoding="utf-8"
    )
    (git_dir / "HEAD").write_text(head, encoding="utf-8")
    if link:
        link_or_copy(index, git_dir / "index")
    else:
        shutil.copy2(index, git_dir / "index")


def link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def tree_bytes(root: Path) -> int:
    """Bytes allocated to the files and folders under ``root`` (hard links once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    continue
                seen.add(key)
            total += st.st_blocks * 512
    return total


def make_removable(path: Path) -> None:
    """The agent may have left read-only folders behind; make them writable again."""
    if not path.exists():
        return
    for entry in _walk_dirs(path):
        with contextlib.suppress(OSError):
            entry.chmod(entry.stat().st_mode | 0o700)


def _walk_dirs(path: Path) -> Iterator[Path]:
    yield path
    for child in path.rglob("*"):
        if child.is_dir() and not child.is_symlink():
            yield child


def index_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".index")


def layers_path(copy_path: Path) -> Path:
    return copy_path.with_name(copy_path.name + ".layers")


def lock_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".lock")


def refuse_existing(dest: Path) -> None:
    """A copy is only ever made in a fresh place; cleaning up after a failure must never
    take what was there before."""
    for path in (dest, layers_path(dest), index_path(dest)):
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, f"{path} already exists")


def touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


def list_dir(folder: Path) -> Iterator[Path]:
    try:
        yield from folder.iterdir()
    except OSError:
        return


def object_alternates(root: Path, *, max_depth: int = 5) -> list[Path]:
    """Object folders that the git repository in ``root`` borrows from, transitively.

    A task copy's ``.git`` borrows objects from errand's mirror, which borrows from the
    user's repository. Sandboxes bind these read-only so ``git`` works inside even when
    they would otherwise be hidden (under ``/tmp``) or absent (in a container).
    """
    found: list[Path] = []
    queue = [root / ".git" / "objects"]
    for _ in range(max_depth):
        next_queue: list[Path] = []
        for objects in queue:
            try:
                lines = (objects / "info" / "alternates").read_text("utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                continue
            for line in lines:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                alt = Path(line) if os.path.isabs(line) else objects / line
                try:
                    alt = alt.resolve(strict=True)
                except OSError:
                    continue
                if alt.is_dir() and alt not in found:
                    found.append(alt)
                    next_queue.append(alt)
        queue = next_queue
    return found
