"""The plan: every hunk applied to an in-memory overlay of the tree, before any write.

This is where all-or-nothing comes from: each path is resolved (``paths.Root``), each
file's current bytes and mode are read once, and each hunk's effect on them is computed
and checked here, so that a patch which fails anywhere fails before ``write`` touches the
disk. The plan also knows what the patch did, for ``PatchResult``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from errand.patch.errors import PatchError
from errand.patch.hunks import AddFile, DeleteFile, Hunk, UpdateFile
from errand.patch.match import locate
from errand.patch.paths import Found, Root
from errand.patch.result import PatchedFile, PatchResult
from errand.patch.text import Text


@dataclass(slots=True)
class Entry:
    """The planned state of one path on disk, starting from what is there now."""

    real: Path  # absolute path that gets written/removed
    rel: str  # posix path relative to the root, for reporting
    orig: bytes | None  # content of the regular file there now; None if absent or a symlink
    orig_mode: int | None
    orig_link: str | None  # link target when the path itself is a symlink (only Delete uses it)
    data: bytes | None  # planned content; None = absent
    mode: int | None  # permission bits for the planned content (None: default for new files)
    link_removed: bool = False
    renamed_from: str | None = None
    moved_away: bool = False

    @property
    def existed(self) -> bool:
        return self.orig is not None or self.orig_link is not None

    @property
    def present(self) -> bool:
        if self.orig_link is not None:
            return not self.link_removed
        return self.data is not None

    @property
    def changed(self) -> bool:
        if self.orig_link is not None:
            return self.link_removed
        return self.data != self.orig or (self.data is not None and self.mode != self.orig_mode)


class Plan:
    """Applies hunks to an in-memory overlay of the tree; nothing is written here."""

    def __init__(self, root: Path) -> None:
        self.root = Root(root)
        self.entries: dict[Path, Entry] = {}

    def apply(self, hunks: Iterable[Hunk]) -> None:
        for h in hunks:
            if isinstance(h, AddFile):
                self.add(h)
            elif isinstance(h, DeleteFile):
                self.delete(h)
            else:
                self.update(h)

    def add(self, h: AddFile) -> None:
        found = self.root.resolve(h.path, follow_final=False)
        if found.is_link:
            raise PatchError(
                f"{h.path} is a symlink; '*** Add File:' never writes through a symlink."
            )
        e = self._entry(found, h.path)
        if e.present:
            raise PatchError(
                f"{h.path} already exists; use '*** Update File: {h.path}' to change it "
                "(or '*** Delete File:' it first to replace it)."
            )
        e.data = h.content.encode("utf-8")
        e.mode = e.orig_mode  # replacing a file deleted earlier in this patch keeps its mode
        e.renamed_from = None
        self._check_no_clash(e, h.path)

    def delete(self, h: DeleteFile) -> None:
        e = self._entry(self.root.resolve(h.path, follow_final=False), h.path)
        if not e.present:
            raise PatchError(f"{h.path} does not exist, so it can't be deleted.")
        if e.orig_link is not None:
            e.link_removed = True
        e.data = None

    def update(self, h: UpdateFile) -> None:
        e = self._entry(self.root.resolve(h.path, follow_final=True), h.path)
        if e.data is None:
            raise PatchError(f"{h.path} does not exist; use '*** Add File: {h.path}' to create it.")
        data = _edited(e.data, h)
        if h.move_to is None:
            e.data = data
        else:
            self._move(e, data, h.move_to)

    def _move(self, e: Entry, data: bytes, move_to: str) -> None:
        """Give ``e``'s new ``data`` to path ``move_to``; ``e`` goes away."""
        found = self.root.resolve(move_to, follow_final=False)
        if found.is_link:
            raise PatchError(f"'*** Move to: {move_to}' is a symlink; refusing to overwrite it.")
        dest = self._entry(found, move_to)
        if dest is e:  # e.g. the same file through a symlinked directory
            e.data = data
            return
        if dest.present:
            raise PatchError(
                f"'*** Move to: {move_to}' already exists; refusing to overwrite it. "
                "Delete it first or pick another name."
            )
        dest.data = data
        dest.mode = e.mode
        dest.renamed_from = e.rel if e.orig is not None else e.renamed_from
        e.data = None
        e.moved_away = True
        self._check_no_clash(dest, move_to)

    def _entry(self, found: Found, path: str) -> Entry:
        """The plan's entry for ``found``, made from what is on disk the first time."""
        self.root.check_not_git(found.real, path)
        e = self.entries.get(found.real)
        if e is None:
            orig, mode, link = _on_disk(found, path)
            e = Entry(found.real, self.root.rel(found.real), orig, mode, link, orig, mode)
            self.entries[found.real] = e
        return e

    def _check_no_clash(self, e: Entry, path: str) -> None:
        """A planned file can't also be a directory of another planned file."""
        for other in self.entries.values():
            if other is e or not other.present:
                continue
            if other.real.is_relative_to(e.real) or e.real.is_relative_to(other.real):
                raise PatchError(
                    f"{path}: clashes with {other.rel} in the same patch (one would have to be "
                    "both a file and a directory)."
                )

    def changes(self) -> list[Entry]:
        return [e for e in self.entries.values() if e.changed]

    def result(self) -> PatchResult:
        changed = self.changes()
        sources = {e.renamed_from for e in changed if e.present and not e.existed}
        files: list[PatchedFile] = []
        for e in changed:
            if not e.existed:
                if e.renamed_from is not None:
                    files.append(PatchedFile(e.rel, "renamed", e.renamed_from))
                else:
                    files.append(PatchedFile(e.rel, "added"))
            elif not e.present:
                if not (e.moved_away and e.rel in sources):
                    files.append(PatchedFile(e.rel, "deleted"))
            else:
                files.append(PatchedFile(e.rel, "modified"))
        return PatchResult(files)


def _on_disk(found: Found, path: str) -> tuple[bytes | None, int | None, str | None]:
    """(content, permission bits, link target) of what ``found`` names now, if anything."""
    st = found.st
    if st is None:
        return None, None, None
    if stat.S_ISLNK(st.st_mode):
        return None, None, os.readlink(found.real)
    if stat.S_ISDIR(st.st_mode):
        raise PatchError(f"{path} is a directory, not a file.")
    if not stat.S_ISREG(st.st_mode):
        raise PatchError(f"{path} is not a regular file.")
    try:
        orig = found.real.read_bytes()
    except OSError as ex:
        raise PatchError(f"{path}: can't read it: {ex.strerror}.") from ex
    return orig, stat.S_IMODE(st.st_mode), None


def _edited(data: bytes, h: UpdateFile) -> bytes:
    """The file's bytes with the hunk's chunks applied (unchanged when it has none)."""
    if not h.chunks:
        return data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as ex:
        raise PatchError(
            f"{h.path} is not UTF-8 text (byte 0x{data[ex.start]:02x} at offset "
            f"{ex.start}); apply_patch only edits UTF-8 text files. Use a shell "
            "command for this file."
        ) from ex
    doc = Text.parse(text)
    return doc.splice(locate(h.chunks, doc.bodies, h.path)).render().encode("utf-8")
