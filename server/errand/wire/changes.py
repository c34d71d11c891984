"""An attempt's changes as they travel between errand's processes: the file changes of
a result, and the plan of an Apply (what the daemon plans and a front end carries out).
"""

from __future__ import annotations

import msgspec

from errand.wire.protocol import Conflict, FileChangeKind, Wire


class FileChange(msgspec.Struct, rename="camel", frozen=True):
    """One file's change between the task's snapshot and the task's final tree."""

    path: str
    """Posix path relative to the workspace root (the destination for a rename)."""
    change: FileChangeKind
    old_path: str | None = None
    """Source path, for ``renamed`` only."""
    base_text: str | None = None
    """Snapshot text; ``None`` for ``added``."""
    new_text: str | None = None
    """Final text; ``None`` for ``deleted``. May equal ``base_text`` for a pure rename."""


class OpenFile(Wire):
    """An editor's open buffer of a file."""

    text: str
    version: int | None = None


class ApplyPlan(Wire):
    """What Apply writes now, decided against the user's current files."""

    changes: list[FileChange] = msgspec.field(default_factory=list)
    """The text files to write (merged with the user's edits where they changed)."""
    versions: dict[str, int | None] = msgspec.field(default_factory=dict)
    """The open buffers' versions by path: the edit is refused when they moved on."""
    conflicts: list[Conflict] = msgspec.field(default_factory=list)
    binary_writes: list[tuple[str, bytes | None]] = msgspec.field(default_factory=list)
    """(path, new bytes or None to delete) for binary files, written after the edit."""
    merged: list[str] = msgspec.field(default_factory=list)
    """Files the user changed meanwhile whose changes were merged with the attempt's."""
    already: list[str] = msgspec.field(default_factory=list)
    """Files that are already as the attempt leaves them (applied before, say); there
    is nothing to write for them."""
