"""What ``apply_patch`` reports: the files it changed, and their one-line-each summary.

The change kinds are spelled like the wire's ``FileChangeKind`` but declared here, so the
patch package imports nothing from the rest of errand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

FileChange: TypeAlias = Literal["added", "deleted", "modified", "renamed"]

_LETTER: dict[FileChange, str] = {"added": "A", "deleted": "D", "modified": "M", "renamed": "R"}


@dataclass(frozen=True, slots=True)
class PatchedFile:
    path: str  # posix, relative to root (destination path for moves)
    change: FileChange
    old_path: str | None = None


@dataclass(frozen=True, slots=True)
class PatchResult:
    files: list[PatchedFile]

    def summary(self) -> str:
        if not self.files:
            return "No changes (the patch left every file as it was)."
        rows = []
        for f in self.files:
            if f.change == "renamed" and f.old_path is not None:
                rows.append(f"R {f.old_path} -> {f.path}")
            else:
                rows.append(f"{_LETTER[f.change]} {f.path}")
        return "\n".join(rows)
