"""A text file as lines: line endings, the BOM and the final newline, read and written back.

This is where the format rules about bytes at line ends live, so that matching can work on
bare line bodies and the written file still keeps the file's own conventions: each kept
line keeps its ending, added lines take the dominant one, the final-newline status and a
leading BOM are the file's, not the patch's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from errand.patch.hunks import PatchLine

BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace ``count`` lines from line ``start`` (0-based) as the chunk ``lines`` say."""

    start: int
    count: int
    lines: tuple[PatchLine, ...]


@dataclass(slots=True)
class Text:
    """A text file split into line bodies and their endings ("\\r\\n", "\\n" or "").

    An empty ending means the line has none of its own: the last line of a file without a
    final newline, or a line a patch added (it takes ``eol`` when something follows it).
    """

    bodies: list[str]
    ends: list[str]
    final_newline: bool
    eol: str
    bom: bool

    @classmethod
    def parse(cls, text: str) -> Text:
        bom = text.startswith(BOM)
        if bom:
            text = text[1:]
        if text == "":
            return cls([], [], True, "\n", bom)
        parts = text.split("\n")
        final_newline = parts[-1] == ""
        if final_newline:
            parts.pop()
        bodies: list[str] = []
        ends: list[str] = []
        for k, p in enumerate(parts):
            if k == len(parts) - 1 and not final_newline:
                bodies.append(p)
                ends.append("")
            elif p.endswith("\r"):
                bodies.append(p[:-1])
                ends.append("\r\n")
            else:
                bodies.append(p)
                ends.append("\n")
        crlf = ends.count("\r\n")
        eol = "\r\n" if crlf > len(ends) - crlf - ends.count("") else "\n"
        return cls(bodies, ends, final_newline, eol, bom)

    def splice(self, edits: Sequence[Edit]) -> Text:
        """The text with ``edits`` (in order, not overlapping) applied.

        Context lines keep the file's own text, so a whitespace-tolerant match never
        rewrites them; added lines come with no ending of their own.
        """
        bodies: list[str] = []
        ends: list[str] = []
        pos = 0
        for edit in edits:
            bodies.extend(self.bodies[pos : edit.start])
            ends.extend(self.ends[pos : edit.start])
            k = edit.start
            for ln in edit.lines:
                if ln.kind == " ":
                    bodies.append(self.bodies[k])
                    ends.append(self.ends[k])
                    k += 1
                elif ln.kind == "-":
                    k += 1
                else:
                    bodies.append(ln.text)
                    ends.append("")
            pos = edit.start + edit.count
        bodies.extend(self.bodies[pos:])
        ends.extend(self.ends[pos:])
        return dataclasses.replace(self, bodies=bodies, ends=ends)

    def render(self) -> str:
        """The file's text again: BOM, bodies, endings and the final-newline status."""
        bodies = list(self.bodies)
        # The BOM belongs to the file: kept whether or not the patch quoted it, never doubled.
        if self.bom and bodies:
            bodies[0] = bodies[0].removeprefix(BOM)
        pieces = [BOM] if self.bom and bodies else []
        last = len(bodies) - 1
        for k, body in enumerate(bodies):
            pieces.append(body)
            if k < last or self.final_newline:
                pieces.append(self.ends[k] or self.eol)
        return "".join(pieces)
