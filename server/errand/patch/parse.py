"""The grammar: patch text in, hunks out (``parse_patch``). Pure.

Reads Codex's ``*** Begin Patch`` format with the tolerances the package docstring lists,
checks every path as written (``paths.check_path``) and names the offending patch line in
every error. Looks at no file: whether the hunks fit the tree is ``match`` and ``plan``'s
business.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from errand.patch.errors import PatchError, quote
from errand.patch.hunks import (
    END_OF_FILE,
    AddFile,
    Chunk,
    DeleteFile,
    Hunk,
    LineKind,
    PatchLine,
    UpdateFile,
)
from errand.patch.paths import check_path

BEGIN = "*** Begin Patch"
END = "*** End Patch"

_HEADER = re.compile(r"\*\*\* (Add|Delete|Update) File:(.*)")
_MOVE = re.compile(r"\*\*\* Move to:(.*)")
_UNIFIED_AT = re.compile(r"-\d+(?:,\d+)? \+\d+(?:,\d+)? @@(.*)")
_HEREDOC = re.compile(
    r"(?:.*&&\s*)?(?:apply_patch|applypatch)\s*<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1"
)
_KINDS: dict[str, LineKind] = {" ": " ", "-": "-", "+": "+"}


def parse_patch(text: str) -> list[Hunk]:
    """Parse patch text into hunks. Pure; raises PatchError naming the offending line."""
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
    lo, hi = _envelope(lines)
    hunks = _Parser(lines, lo + 1, hi - 1).hunks()
    if not hunks:
        raise PatchError(
            "The patch has no hunks; add '*** Add File:', '*** Delete File:' or "
            "'*** Update File:' sections."
        )
    return hunks


def _envelope(lines: list[str]) -> tuple[int, int]:
    """The [lo, hi) range from ``*** Begin Patch`` to ``*** End Patch``, both included."""
    lo, hi = _unwrap(lines)
    if lo >= hi:
        raise PatchError(f"The patch is empty. It must start with '{BEGIN}' and end with '{END}'.")
    if lines[lo].strip() != BEGIN:
        raise PatchError(
            f"line {lo + 1}: the patch must start with '{BEGIN}', found {quote(lines[lo])}."
        )
    if hi - lo < 2 or lines[hi - 1].strip() != END:
        for k in range(lo + 1, hi):
            if lines[k].rstrip() == END:
                raise PatchError(
                    f"line {k + 2}: unexpected text after '{END}' (line {k + 1}); "
                    "send one patch per call."
                )
        raise PatchError(
            f"line {hi}: the patch must end with '{END}' (was it cut off?), "
            f"found {quote(lines[hi - 1])}."
        )
    return lo, hi


def _unwrap(lines: list[str]) -> tuple[int, int]:
    """The [lo, hi) range of the patch proper: without blank lines, fences or a heredoc."""
    lo, hi = 0, len(lines)
    while True:
        while lo < hi and not lines[lo].strip():
            lo += 1
        while hi > lo and not lines[hi - 1].strip():
            hi -= 1
        if hi - lo < 2:
            return lo, hi
        first, last = lines[lo].strip(), lines[hi - 1].strip()
        heredoc = _HEREDOC.fullmatch(first)
        if (first.startswith("```") and last == "```") or (heredoc and last == heredoc[2]):
            lo, hi = lo + 1, hi - 1
        else:
            return lo, hi


def _is_header(line: str) -> bool:
    return _HEADER.fullmatch(line.rstrip()) is not None


def _is_move(line: str) -> bool:
    return _MOVE.fullmatch(line.rstrip()) is not None


def _anchor(line: str) -> str | None:
    """The anchor text of an ``@@`` line, or None for a bare ``@@``."""
    rest = line[2:]
    unified = _UNIFIED_AT.fullmatch(rest.strip())
    if unified:
        rest = unified[1]
    text = rest.removeprefix(" ").rstrip()  # keep indentation: it's part of the line
    return text if text.strip() else None


class _Parser:
    """Reads the hunks between ``*** Begin Patch`` and ``*** End Patch``."""

    def __init__(self, lines: list[str], lo: int, hi: int) -> None:
        self.lines = lines
        self.i = lo
        self.end = hi

    def hunks(self) -> list[Hunk]:
        out: list[Hunk] = []
        while self.i < self.end:
            raw = self.lines[self.i]
            lineno = self.i + 1
            if not raw.strip():
                self.i += 1
                continue
            m = _HEADER.fullmatch(raw.strip())
            if m is None:
                raise PatchError(
                    f"line {lineno}: expected '*** Add File: <path>', '*** Delete File: <path>' "
                    f"or '*** Update File: <path>', found {quote(raw)}."
                )
            path = check_path(m[2], lineno)
            self.i += 1
            if m[1] == "Add":
                out.append(self._add(path, lineno))
            elif m[1] == "Delete":
                self._delete_body(lineno)
                out.append(DeleteFile(path, lineno))
            else:
                out.append(self._update(path, lineno))
        return out

    def _body(self) -> Iterator[tuple[str, int]]:
        """The current hunk's lines up to the next header, each with its patch line number."""
        while self.i < self.end and not _is_header(self.lines[self.i]):
            yield self.lines[self.i], self.i + 1
            self.i += 1

    def _add(self, path: str, lineno: int) -> AddFile:
        content: list[str] = []
        blanks = 0
        for raw, n in self._body():
            if raw.startswith("+"):
                content.extend([""] * blanks)
                blanks = 0
                content.append(raw[1:])
            elif not raw.strip():
                blanks += 1  # a blank line: empty content if more '+' lines follow
            elif _is_move(raw):
                raise PatchError(
                    f"line {n}: '*** Move to:' only belongs to an '*** Update File:' hunk."
                )
            else:
                raise PatchError(
                    f"line {n}: in '*** Add File: {path}' (line {lineno}) every line "
                    f"must start with '+', found {quote(raw)}."
                )
        text = "\n".join(content) + "\n" if content else ""
        return AddFile(path, text, lineno)

    def _delete_body(self, lineno: int) -> None:
        for raw, n in self._body():
            if raw.strip():
                raise PatchError(
                    f"line {n}: '*** Delete File:' (line {lineno}) takes no lines "
                    f"after it, found {quote(raw)}."
                )

    def _update(self, path: str, lineno: int) -> UpdateFile:
        move_to = self._move_to(path)
        chunks = _Chunks(path)
        for raw, n in self._body():
            chunks.feed(raw, n)
        found = chunks.finish()
        if not found and move_to is None:
            raise PatchError(
                f"line {lineno}: '*** Update File: {path}' has no changes; give chunks of "
                "' ', '-' and '+' lines (or a '*** Move to:' line)."
            )
        return UpdateFile(path, move_to, found, lineno)

    def _move_to(self, path: str) -> str | None:
        """The ``*** Move to:`` path right after an Update File line; None if none or same."""
        if self.i >= self.end or (mv := _MOVE.fullmatch(self.lines[self.i].rstrip())) is None:
            return None
        move_to = check_path(mv[1], self.i + 1)
        self.i += 1
        return None if move_to == path else move_to


class _Chunks:
    """Collects the chunks of one Update File hunk from its body, line by line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.chunks: list[Chunk] = []
        self.anchors: list[str] = []
        self.body: list[PatchLine] = []
        self.start: int | None = None  # patch line where the current chunk began
        self.after_eof = False  # just after '*** End of File': only '@@' may follow

    def feed(self, raw: str, n: int) -> None:
        """Take patch line ``raw`` (line number ``n``)."""
        kind = _KINDS.get(raw[:1])
        if raw.startswith("@@"):
            self._at(raw, n)
        elif raw.rstrip() == END_OF_FILE:
            self._end_of_file(n)
        elif _is_move(raw):
            raise PatchError(
                f"line {n}: '*** Move to:' must come right after the '*** Update File:' line."
            )
        elif self.after_eof:
            if raw.strip():
                raise PatchError(
                    f"line {n}: after '{END_OF_FILE}' a new chunk must start with '@@', "
                    f"found {quote(raw)}."
                )
        elif raw == "":
            if self.start is not None:  # an empty context line whose leading space was lost
                self.body.append(PatchLine(" ", "", bare=True))
        elif kind is not None:
            self.start = n if self.start is None else self.start
            self.body.append(PatchLine(kind, raw[1:]))
        else:
            raise PatchError(
                f"line {n}: in '*** Update File: {self.path}' every line must start with ' ' "
                "(context), '-' (remove), '+' (add) or '@@', found "
                f"{quote(raw)}. Context lines need a leading space."
            )

    def finish(self) -> tuple[Chunk, ...]:
        self._close(False)
        return tuple(self.chunks)

    def _at(self, raw: str, n: int) -> None:
        """An ``@@`` line: it ends the chunk before it, and may add an anchor."""
        self._trim()
        if self.body:
            self._close(False)
        self.start = n if self.start is None else self.start
        self.after_eof = False
        if (a := _anchor(raw)) is not None:
            self.anchors.append(a)

    def _end_of_file(self, n: int) -> None:
        self._trim()
        if not self.body:
            raise PatchError(
                f"line {n}: '{END_OF_FILE}' must end a chunk of ' ', '-' or '+' lines."
            )
        self._close(True)
        self.after_eof = True

    def _trim(self) -> None:
        while self.body and self.body[-1].bare:  # blank lines before the next @@ or hunk
            self.body.pop()

    def _close(self, at_eof: bool) -> None:
        self._trim()
        if self.body and self.start is not None:
            self.chunks.append(Chunk(tuple(self.anchors), tuple(self.body), at_eof, self.start))
        elif self.anchors:
            raise PatchError(
                f"line {self.start}: '@@ {self.anchors[-1]}' in '*** Update File: {self.path}' "
                "is not followed by any ' ', '-' or '+' lines."
            )
        self.anchors, self.body, self.start = [], [], None
