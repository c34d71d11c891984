"""Lines and UTF-16 positions of a text, the way LSP counts them.

Lines end at ``\\n``, ``\\r\\n`` or ``\\r`` (and at nothing else, unlike
:meth:`str.splitlines`), and characters are counted in UTF-16 code units, so a character
outside the Basic Multilingual Plane counts 2. Pure.
"""

from __future__ import annotations

import re
from itertools import accumulate

from lsprotocol import types

# One LSP line: content followed by its terminator, or a final unterminated remainder.
LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def split_lines(text: str) -> list[str]:
    """Split ``text`` into LSP lines, each keeping its terminator."""
    if (
        "\v" in text
        or "\f" in text
        or "\x1c" in text
        or "\x1d" in text
        or "\x1e" in text
        or "\x85" in text
        or "\u2028" in text
        or "\u2029" in text
    ):
        return LINE.findall(text)
    return text.splitlines(keepends=True)  # same result when no other break is present


def utf16_len(s: str) -> int:
    if s.isascii():
        return len(s)
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def content_len(line: str) -> int:
    """Length of ``line`` without its terminator, in code points."""
    if line.endswith("\r\n"):
        return len(line) - 2
    if line.endswith(("\n", "\r")):
        return len(line) - 1
    return len(line)


def is_line_start(text: str, pos: int) -> bool:
    """Whether ``pos`` starts a line (the end of the text counts as one)."""
    if pos in (0, len(text)):
        return True
    before = text[pos - 1]
    return before == "\n" or (before == "\r" and text[pos] != "\n")


def line_start_at_or_before(text: str, lo: int, pos: int) -> int:
    """The last line start in ``[lo, pos]``; ``lo`` must be one."""
    while pos > lo:
        if is_line_start(text, pos):
            return pos
        brk = max(text.rfind("\n", lo, pos), text.rfind("\r", lo, pos))
        if brk < 0:
            return lo
        pos = brk + 1  # a line start unless it falls inside "\r\n"; then look further back
        if is_line_start(text, pos):
            return pos
        pos = brk
    return lo


def line_start_at_or_after(text: str, pos: int, hi: int) -> int:
    """The first line start in ``[pos, hi]``; ``hi`` must be one."""
    if pos >= hi or is_line_start(text, pos):
        return min(pos, hi)
    nl = text.find("\n", pos, hi)
    cr = text.find("\r", pos, hi)
    brk = min(nl, cr) if nl >= 0 and cr >= 0 else max(nl, cr)
    if brk < 0:
        return hi
    if text[brk] == "\r" and brk + 1 < len(text) and text[brk + 1] == "\n":
        return brk + 2
    return brk + 1


class LineIndex:
    """A text's lines, for converting LSP positions to offsets."""

    __slots__ = ("lines", "starts")

    def __init__(self, text: str) -> None:
        self.lines = split_lines(text)
        # starts[i] is the offset of line i; the final entry is len(text). When the text is empty
        # or ends with a terminator, that final entry also starts the (empty) last LSP line.
        self.starts = [0, *accumulate(map(len, self.lines))]

    @property
    def line_count(self) -> int:
        """Number of LSP lines (an empty text has one line; a trailing break opens another)."""
        if self.lines and content_len(self.lines[-1]) == len(self.lines[-1]):
            return len(self.lines)
        return len(self.lines) + 1

    def offset(self, pos: types.Position) -> int:
        if not 0 <= pos.line < self.line_count:
            raise ValueError(f"line {pos.line} out of range (text has {self.line_count} lines)")
        raw = self.lines[pos.line] if pos.line < len(self.lines) else ""
        content = raw[: content_len(raw)]
        start = self.starts[pos.line]
        if content.isascii():
            if not 0 <= pos.character <= len(content):
                raise ValueError(f"character {pos.character} out of range on line {pos.line}")
            return start + pos.character
        index = units = 0
        while units < pos.character and index < len(content):
            units += 2 if ord(content[index]) > 0xFFFF else 1
            index += 1
        if units != pos.character:
            problem = "splits a surrogate pair" if units > pos.character else "is out of range"
            raise ValueError(f"character {pos.character} on line {pos.line} {problem}")
        return start + index


class Positions:
    """Offsets to LSP positions in one text, for offsets visited in ascending order."""

    __slots__ = ("has_cr", "line", "line_start", "offset", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.has_cr = "\r" in text
        self.offset = 0  # last offset converted; never inside "\r\n"
        self.line = 0  # its line
        self.line_start = 0  # and the start of that line

    def __call__(self, offset: int) -> types.Position:
        text, lo = self.text, self.offset
        if offset < lo:
            raise ValueError("offsets must ascend")
        breaks = text.count("\n", lo, offset)
        brk = text.rfind("\n", self.line_start, offset)
        if self.has_cr:
            breaks += text.count("\r", lo, offset) - text.count("\r\n", lo, offset)
            brk = max(brk, text.rfind("\r", self.line_start, offset))
        self.offset = offset
        self.line += breaks
        self.line_start = brk + 1 if brk >= 0 else self.line_start
        return types.Position(line=self.line, character=utf16_len(text[self.line_start : offset]))
