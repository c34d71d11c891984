"""The parsed form of a patch: the hunks ``parse`` produces and the rest consumes.

Kept apart from the grammar so that the matcher and the plan depend only on these plain
values, never on how the text was read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

END_OF_FILE = "*** End of File"  # the marker that sets ``Chunk.at_eof``

LineKind: TypeAlias = Literal[" ", "-", "+"]


@dataclass(frozen=True, slots=True)
class PatchLine:
    kind: LineKind
    text: str
    bare: bool = False  # a zero-length patch line, read as an empty context line


@dataclass(frozen=True, slots=True)
class Chunk:
    anchors: tuple[str, ...]
    lines: tuple[PatchLine, ...]
    at_eof: bool
    lineno: int  # 1-based line of the patch text where the chunk starts

    @property
    def old(self) -> list[str]:
        return [ln.text for ln in self.lines if ln.kind != "+"]

    @property
    def new(self) -> list[str]:
        return [ln.text for ln in self.lines if ln.kind != "-"]


@dataclass(frozen=True, slots=True)
class AddFile:
    path: str
    content: str
    lineno: int


@dataclass(frozen=True, slots=True)
class DeleteFile:
    path: str
    lineno: int


@dataclass(frozen=True, slots=True)
class UpdateFile:
    path: str
    move_to: str | None
    chunks: tuple[Chunk, ...]
    lineno: int


Hunk: TypeAlias = AddFile | DeleteFile | UpdateFile
