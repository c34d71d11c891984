"""The ``apply_patch`` tool: parse Codex's patch format and apply it to a task copy.

The format (see FIELD-NOTES "The apply_patch format")::

    *** Begin Patch
    *** Add File: path          then lines starting with "+"
    *** Delete File: path
    *** Update File: path
    *** Move to: new/path       (optional, right after Update File)
    @@ class Foo                (optional anchors, may be stacked)
     context / -removed / +added lines
    *** End of File             (optional: the chunk must match at the end of the file)
    *** End Patch

Application is all or nothing: every hunk is parsed, every path is checked and every new
file content is computed in memory before anything is written; an OS error while writing
rolls back what was already written.

Rules this module adds to the grammar:

* Paths are relative, use ``/``, contain no ``..`` component, never enter ``.git``, and never
  pass through a symlink that resolves outside the root. ``Add File`` never writes through a
  symlink and never overwrites an existing file; ``Move to`` never overwrites either.
* Chunks are located by their context and removed lines (no line numbers), trying in turn an
  exact match, then ignoring trailing whitespace, then ignoring surrounding whitespace, then
  also treating typographic quotes/dashes/spaces as their ASCII forms. The first of those
  that finds anything decides. ``@@ anchor`` lines are found the same way, each after the
  previous one; the chunk is then the first match from the last anchor on. Without an anchor
  the chunk must match exactly one place after the previous chunk, else it is ambiguous.
* A chunk with only ``+`` lines goes right after its last anchor, at the end of the file with
  ``*** End of File``, or into an empty file; anywhere else it is refused (never appended).
* Context lines keep the file's own text (so whitespace-tolerant matches don't rewrite
  them); added lines take the file's dominant line ending (CRLF if most lines end in CRLF,
  LF when the file has no line break to go by).
* Final newline rule: a file keeps its final-newline status. A file that ended without a
  newline still ends without one, so lines appended after its last line leave the new last
  line unterminated, and adding an empty last line is how a patch gives it a final newline.
  New files, and files that were empty, end with a newline.
* Files must be UTF-8. A leading BOM belongs to the file: patch lines may quote it or not,
  it is kept (never doubled) and only goes when the file becomes empty. Renames and
  deletions work on any file, text or not.
* Updated and moved files keep their permission bits (executable bit included). Existing
  files are replaced by rename, so a hard link shared with another tree is never written
  through. A symlink inside the root is followed, and its target is edited and reported.
* Inside hunk bodies, ``***`` markers must start at column 0: a line starting with a space
  is always context, whatever it contains.
* Tolerated sloppiness: whitespace around ``*** Begin Patch``/``*** End Patch`` and blank lines
  around the patch, a Markdown code fence or an ``apply_patch <<'EOF'`` heredoc around it,
  CRLF patch text, trailing whitespace on marker lines, blank lines between hunks, a
  zero-length line inside a chunk (read as an empty context line), and unified-diff
  ``@@ -1,3 +1,4 @@ heading`` lines (read as ``@@ heading``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeAlias

from errand.wire.protocol import FileChangeKind

log = logging.getLogger(__name__)

__all__ = [
    "AddFile",
    "Chunk",
    "DeleteFile",
    "Hunk",
    "PatchError",
    "PatchLine",
    "PatchResult",
    "PatchedFile",
    "UpdateFile",
    "apply_patch",
    "parse_patch",
]

BEGIN = "*** Begin Patch"
END = "*** End Patch"
END_OF_FILE = "*** End of File"
BOM = "\ufeff"
NOTHING_CHANGED = "No files were changed."


class PatchError(Exception):
    """A patch that can't be applied. ``str(exc)`` is a message meant for the model.

    Nothing was changed, except when ``partial`` is True: a write failed and rolling it back
    failed too, so the files the message names may be half-changed.
    """

    def __init__(self, message: str, *, partial: bool = False) -> None:
        super().__init__(message)
        self.partial = partial


# --- parsed form ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatchLine:
    kind: Literal[" ", "-", "+"]
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


# --- result -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatchedFile:
    path: str  # posix, relative to root (destination path for moves)
    change: FileChangeKind
    old_path: str | None = None


_LETTER: dict[str, str] = {"added": "A", "deleted": "D", "modified": "M", "renamed": "R"}


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


# --- parsing --------------------------------------------------------------------------------

_HEADER = re.compile(r"\*\*\* (Add|Delete|Update) File:(.*)")
_MOVE = re.compile(r"\*\*\* Move to:(.*)")
_UNIFIED_AT = re.compile(r"-\d+(?:,\d+)? \+\d+(?:,\d+)? @@(.*)")
_HEREDOC = re.compile(
    r"(?:.*&&\s*)?(?:apply_patch|applypatch)\s*<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1"
)


def _q(line: str, limit: int = 120) -> str:
    """Quote a line of text for an error message."""
    if len(line) > limit:
        line = line[:limit] + "…"
    return repr(line)


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


def _check_path(raw: str, lineno: int) -> str:
    """Validate a path as written in the patch; return it normalized (posix, no ``.``)."""
    path = raw.strip()
    where = f"line {lineno}"
    if not path:
        raise PatchError(f"{where}: the file path is missing.")
    if "\0" in path:
        raise PatchError(f"{where}: the file path contains a NUL character.")
    if "\\" in path:
        raise PatchError(
            f"{where}: {_q(path)} contains a backslash; write paths with '/' relative to the "
            "workspace root."
        )
    if path.startswith(("/", "~/")) or path == "~" or re.match(r"[A-Za-z]:(/|$)", path):
        raise PatchError(
            f"{where}: {_q(path)} is an absolute path; paths must be relative to the workspace "
            "root (e.g. 'src/app.py')."
        )
    if path.endswith("/"):
        raise PatchError(f"{where}: {_q(path)} names a directory; give a file path.")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PatchError(
            f"{where}: {_q(path)} contains '..'; paths must stay inside the workspace, "
            "relative to its root."
        )
    if any(p.lower() == ".git" for p in parts):
        raise PatchError(f"{where}: {_q(path)} is inside .git; apply_patch never edits .git.")
    if not parts:
        raise PatchError(f"{where}: {_q(path)} is not a file path.")
    return "/".join(parts)


def _anchor(line: str) -> str | None:
    """The anchor text of an ``@@`` line, or None for a bare ``@@``."""
    rest = line[2:]
    unified = _UNIFIED_AT.fullmatch(rest.strip())
    if unified:
        rest = unified[1]
    text = rest.removeprefix(" ").rstrip()  # keep indentation: it's part of the line
    return text if text.strip() else None


_KINDS: dict[str, Literal[" ", "-", "+"]] = {" ": " ", "-": "-", "+": "+"}


def _is_header(line: str) -> bool:
    return _HEADER.fullmatch(line.rstrip()) is not None


class _Parser:
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
                    f"or '*** Update File: <path>', found {_q(raw)}."
                )
            path = _check_path(m[2], lineno)
            self.i += 1
            if m[1] == "Add":
                out.append(self._add(path, lineno))
            elif m[1] == "Delete":
                self._delete_body(lineno)
                out.append(DeleteFile(path, lineno))
            else:
                out.append(self._update(path, lineno))
        return out

    def _add(self, path: str, lineno: int) -> AddFile:
        content: list[str] = []
        blanks = 0
        while self.i < self.end and not _is_header(self.lines[self.i]):
            raw = self.lines[self.i]
            if raw.startswith("+"):
                content.extend([""] * blanks)
                blanks = 0
                content.append(raw[1:])
            elif not raw.strip():
                blanks += 1  # a blank line: empty content if more '+' lines follow
            elif _MOVE.fullmatch(raw.rstrip()):
                raise PatchError(
                    f"line {self.i + 1}: '*** Move to:' only belongs to an '*** Update File:' hunk."
                )
            else:
                raise PatchError(
                    f"line {self.i + 1}: in '*** Add File: {path}' (line {lineno}) every line "
                    f"must start with '+', found {_q(raw)}."
                )
            self.i += 1
        text = "\n".join(content) + "\n" if content else ""
        return AddFile(path, text, lineno)

    def _delete_body(self, lineno: int) -> None:
        while self.i < self.end and not _is_header(self.lines[self.i]):
            raw = self.lines[self.i]
            if raw.strip():
                raise PatchError(
                    f"line {self.i + 1}: '*** Delete File:' (line {lineno}) takes no lines "
                    f"after it, found {_q(raw)}."
                )
            self.i += 1

    def _update(self, path: str, lineno: int) -> UpdateFile:
        move_to: str | None = None
        if self.i < self.end and (mv := _MOVE.fullmatch(self.lines[self.i].rstrip())):
            move_to = _check_path(mv[1], self.i + 1)
            self.i += 1
            if move_to == path:
                move_to = None
        chunks: list[Chunk] = []
        anchors: list[str] = []
        body: list[PatchLine] = []
        start: int | None = None  # patch line where the current chunk began; None: not begun
        after_eof = False

        def trim() -> None:
            while body and body[-1].bare:  # blank lines before the next @@ or hunk
                body.pop()

        def close(at_eof: bool) -> None:
            nonlocal anchors, body, start
            trim()
            if body and start is not None:
                chunks.append(Chunk(tuple(anchors), tuple(body), at_eof, start))
            elif anchors:
                raise PatchError(
                    f"line {start}: '@@ {anchors[-1]}' in '*** Update File: {path}' is not "
                    "followed by any ' ', '-' or '+' lines."
                )
            anchors, body, start = [], [], None

        while self.i < self.end and not _is_header(self.lines[self.i]):
            raw = self.lines[self.i]
            n = self.i + 1
            self.i += 1
            kind = _KINDS.get(raw[:1])
            if raw.startswith("@@"):
                trim()
                if body:
                    close(False)
                start = n if start is None else start
                after_eof = False
                if (a := _anchor(raw)) is not None:
                    anchors.append(a)
            elif raw.rstrip() == END_OF_FILE:
                trim()
                if not body:
                    raise PatchError(
                        f"line {n}: '{END_OF_FILE}' must end a chunk of ' ', '-' or '+' lines."
                    )
                close(True)
                after_eof = True
            elif _MOVE.fullmatch(raw.rstrip()):
                raise PatchError(
                    f"line {n}: '*** Move to:' must come right after the '*** Update File:' line."
                )
            elif after_eof:
                if raw.strip():
                    raise PatchError(
                        f"line {n}: after '{END_OF_FILE}' a new chunk must start with '@@', "
                        f"found {_q(raw)}."
                    )
            elif raw == "":
                if start is not None:  # an empty context line whose leading space was lost
                    body.append(PatchLine(" ", "", bare=True))
            elif kind is not None:
                start = n if start is None else start
                body.append(PatchLine(kind, raw[1:]))
            else:
                raise PatchError(
                    f"line {n}: in '*** Update File: {path}' every line must start with ' ' "
                    "(context), '-' (remove), '+' (add) or '@@', found "
                    f"{_q(raw)}. Context lines need a leading space."
                )
        close(False)
        if not chunks and move_to is None:
            raise PatchError(
                f"line {lineno}: '*** Update File: {path}' has no changes; give chunks of "
                "' ', '-' and '+' lines (or a '*** Move to:' line)."
            )
        return UpdateFile(path, move_to, tuple(chunks), lineno)


def parse_patch(text: str) -> list[Hunk]:
    """Parse patch text into hunks. Pure; raises PatchError naming the offending line."""
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
    lo, hi = _unwrap(lines)
    if lo >= hi:
        raise PatchError(f"The patch is empty. It must start with '{BEGIN}' and end with '{END}'.")
    if lines[lo].strip() != BEGIN:
        raise PatchError(
            f"line {lo + 1}: the patch must start with '{BEGIN}', found {_q(lines[lo])}."
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
            f"found {_q(lines[hi - 1])}."
        )
    hunks = _Parser(lines, lo + 1, hi - 1).hunks()
    if not hunks:
        raise PatchError(
            "The patch has no hunks; add '*** Add File:', '*** Delete File:' or "
            "'*** Update File:' sections."
        )
    return hunks


# --- locating and applying chunks (pure) ----------------------------------------------------

_PUNCT = str.maketrans(
    {
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
        "\u2015": "-", "\u2212": "-",
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
        "\u00a0": " ", "\u2002": " ", "\u2003": " ", "\u2009": " ", "\u202f": " ",
        "\u3000": " ",
    }
)  # fmt: skip


def _exact(s: str) -> str:
    return s


def _rstrip(s: str) -> str:
    return s.removeprefix(BOM).rstrip()


def _strip(s: str) -> str:
    return s.removeprefix(BOM).strip()


def _loose(s: str) -> str:
    return s.removeprefix(BOM).translate(_PUNCT).strip()


_TIERS: tuple[Callable[[str], str], ...] = (_exact, _rstrip, _strip, _loose)


@dataclass(slots=True)
class _Text:
    """A text file split into line bodies and their endings ("\\r\\n", "\\n" or "")."""

    bodies: list[str]
    ends: list[str]
    final_newline: bool
    eol: str
    bom: bool

    @classmethod
    def parse(cls, text: str) -> _Text:
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


class _Matcher:
    def __init__(self, bodies: list[str]) -> None:
        self.bodies = bodies
        self._cache: dict[Callable[[str], str], list[str]] = {}

    def norm(self, tier: Callable[[str], str]) -> list[str]:
        got = self._cache.get(tier)
        if got is None:
            got = self._cache[tier] = [tier(b) for b in self.bodies]
        return got

    def find_line(self, text: str, start: int) -> int | None:
        for tier in _TIERS:
            want = tier(text)
            lines = self.norm(tier)
            for k in range(start, len(lines)):
                if lines[k] == want:
                    return k
        return None

    def _matches_at(self, lines: list[str], want: list[str], j: int) -> bool:
        return lines[j : j + len(want)] == want

    def find_block(self, old: list[str], start: int, at_eof: bool, unique: bool) -> list[int]:
        """Match positions of ``old`` (non-empty) from ``start``, by the first tier with any.

        Returns at most one position unless ``unique`` asks to detect ambiguity (then up to 3).
        """
        n = len(self.bodies)
        for tier in _TIERS:
            want = [tier(x) for x in old]
            lines = self.norm(tier)
            if at_eof:
                j = n - len(old)
                if j >= start and self._matches_at(lines, want, j):
                    return [j]
                continue
            found: list[int] = []
            first = want[0]
            for j in range(start, n - len(old) + 1):
                if lines[j] == first and self._matches_at(lines, want, j):
                    found.append(j)
                    if not unique or len(found) == 3:
                        break
            if found:
                return found
        return []

    def longest_prefix(self, old: list[str], start: int) -> tuple[int, int]:
        """(k, j): the longest prefix old[:k] (k >= 1) matching loosely at j, else (0, -1)."""
        lines = self.norm(_loose)
        want = [_loose(x) for x in old]
        best = (0, -1)
        for j in range(start, len(lines)):
            k = 0
            while k < len(want) and j + k < len(lines) and lines[j + k] == want[k]:
                k += 1
            if k > best[0]:
                best = (k, j)
        return best


def _indent(lines: Sequence[str], limit: int = 5) -> str:
    shown = [f"    {_q(x)}" for x in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"    … ({len(lines) - limit} more)")
    return "\n".join(shown)


def _apply_chunks(text: str, chunks: Sequence[Chunk], display: str) -> str:
    """Apply the chunks of one Update File hunk to ``text``; pure."""
    doc = _Text.parse(text)
    m = _Matcher(doc.bodies)
    edits: list[tuple[int, int, Chunk]] = []
    cursor = 0
    for c, chunk in enumerate(chunks, 1):
        label = f"{display}: chunk {c} (patch line {chunk.lineno})"
        after = f" after line {cursor}" if cursor else ""
        anchor_at: int | None = None
        for a in chunk.anchors:
            hit = m.find_line(a, cursor if anchor_at is None else anchor_at + 1)
            if hit is None:
                where = f" after line {anchor_at + 1}" if anchor_at is not None else after
                raise PatchError(
                    f"{label}: the line '@@ {a}' was not found{where}. An @@ line must repeat a "
                    "line of the file, such as '@@ def name(args):' or '@@ class Name:'. "
                    "Re-read the file and fix the patch."
                )
            anchor_at = hit
        old = chunk.old
        if not old:
            if chunk.at_eof:
                pos = len(doc.bodies)
            elif anchor_at is not None:
                pos = anchor_at + 1
            elif not doc.bodies:
                pos = 0
            else:
                raise PatchError(
                    f"{label} only adds lines and has no context, so there's no telling where "
                    "they go. Add the surrounding lines as ' ' context, an '@@ <line>' anchor "
                    f"to insert after, or end the chunk with '{END_OF_FILE}' to append."
                )
            edits.append((pos, 0, chunk))
            cursor = pos
            continue
        start = anchor_at if anchor_at is not None else cursor
        found = m.find_block(old, start, chunk.at_eof, unique=anchor_at is None)
        if len(found) > 1:
            where = ", ".join(str(j + 1) for j in found)
            raise PatchError(
                f"{label} is ambiguous: its context matches several places{after} "
                f"(lines {where}{', …' if len(found) == 3 else ''}). Add more context lines or "
                "an '@@ <line>' anchor naming the enclosing class or function. The chunk "
                f"expects:\n{_indent(old)}"
            )
        if not found:
            raise PatchError(_no_match(label, m, old, start, chunk, anchor_at, after))
        edits.append((found[0], len(old), chunk))
        cursor = found[0] + len(old)

    out_bodies: list[str] = []
    out_ends: list[str] = []
    pos = 0
    for start, count, chunk in edits:
        out_bodies.extend(doc.bodies[pos:start])
        out_ends.extend(doc.ends[pos:start])
        k = start
        for ln in chunk.lines:
            if ln.kind == " ":
                out_bodies.append(doc.bodies[k])
                out_ends.append(doc.ends[k])
                k += 1
            elif ln.kind == "-":
                k += 1
            else:
                out_bodies.append(ln.text)
                out_ends.append("")
        pos = start + count
    out_bodies.extend(doc.bodies[pos:])
    out_ends.extend(doc.ends[pos:])

    # The BOM belongs to the file: kept whether or not the patch quoted it, never doubled.
    if doc.bom and out_bodies:
        out_bodies[0] = out_bodies[0].removeprefix(BOM)
    pieces = [BOM] if doc.bom and out_bodies else []
    last = len(out_bodies) - 1
    for k, body in enumerate(out_bodies):
        pieces.append(body)
        if k < last or doc.final_newline:
            pieces.append(out_ends[k] or doc.eol)
    return "".join(pieces)


def _no_match(
    label: str,
    m: _Matcher,
    old: list[str],
    start: int,
    chunk: Chunk,
    anchor_at: int | None,
    after: str,
) -> str:
    if anchor_at is not None:
        where = f" from line {anchor_at + 1} ('@@ {chunk.anchors[-1]}') on"
    else:
        where = after
    eof = f" at the end of the file ('{END_OF_FILE}')" if chunk.at_eof else ""
    msg = [f"{label}: these context/removed lines were not found{where}{eof}:", _indent(old)]
    k, j = m.longest_prefix(old, start)
    if k > 0 and k < len(old):
        got = _q(m.bodies[j + k]) if j + k < len(m.bodies) else "the end of the file"
        msg.append(
            f"The first {k} line(s) match at line {j + 1}, but then the patch expects "
            f"{_q(old[k])} where the file has {got}."
        )
    elif k == len(old) and chunk.at_eof:
        msg.append(
            f"They match at line {j + 1}, which is not the end of the file; drop "
            f"'{END_OF_FILE}' or extend the chunk to the last line."
        )
    else:
        msg.append(f"Not even the first line, {_q(old[0])}, appears{where or ' in the file'}.")
    msg.append("Re-read the file and make the ' ' and '-' lines match it exactly.")
    return "\n".join(msg)


# --- file system -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
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


@dataclass(frozen=True, slots=True)
class _Found:
    real: Path
    st: os.stat_result | None  # lstat of ``real``; None when it doesn't exist

    @property
    def is_link(self) -> bool:
        return self.st is not None and stat.S_ISLNK(self.st.st_mode)


class _Plan:
    """Applies hunks to an in-memory overlay of the tree; nothing is written here."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise PatchError(f"The workspace root {root} is not a directory.")
        self.root = Path(os.path.realpath(root))
        self.entries: dict[Path, _Entry] = {}

    def _check_not_git(self, real: Path, path: str) -> None:
        if any(p.lower() == ".git" for p in real.relative_to(self.root).parts):
            raise PatchError(f"{path}: resolves into .git; apply_patch never edits .git.")

    def resolve(self, path: str, *, follow_final: bool) -> _Found:
        """Resolve ``path`` under the root, refusing symlinks that lead outside it."""
        parts = path.split("/")
        cur = self.root
        for k, name in enumerate(parts):
            cand = cur / name
            shown = "/".join(parts[: k + 1])
            final = k == len(parts) - 1
            try:
                st = os.lstat(cand)
            except FileNotFoundError:
                return _Found(cur.joinpath(*parts[k:]), None)
            except OSError as e:
                raise PatchError(f"{path}: can't inspect {shown}: {e.strerror}.") from e
            if stat.S_ISLNK(st.st_mode):
                target = Path(os.path.realpath(cand))
                if not target.is_relative_to(self.root):
                    raise PatchError(
                        f"{path}: {shown} is a symlink to {os.readlink(cand)!r}, outside the "
                        "workspace; apply_patch only edits files inside the workspace."
                    )
                self._check_not_git(target, path)
                if final and not follow_final:
                    return _Found(cand, st)
                try:
                    st = os.lstat(target)
                except FileNotFoundError:
                    return _Found(target.joinpath(*parts[k + 1 :]), None)
                except OSError as e:
                    raise PatchError(f"{path}: can't inspect {shown}: {e.strerror}.") from e
                cand = target
            if final:
                return _Found(cand, st)
            if not stat.S_ISDIR(st.st_mode):
                raise PatchError(f"{path}: {shown} is a file, not a directory.")
            cur = cand
        raise AssertionError("unreachable: a checked path has at least one part")

    def _entry(self, found: _Found, path: str) -> _Entry:
        self._check_not_git(found.real, path)
        e = self.entries.get(found.real)
        if e is not None:
            return e
        orig: bytes | None = None
        mode: int | None = None
        link: str | None = None
        st = found.st
        if st is not None:
            if stat.S_ISLNK(st.st_mode):
                link = os.readlink(found.real)
            elif stat.S_ISDIR(st.st_mode):
                raise PatchError(f"{path} is a directory, not a file.")
            elif not stat.S_ISREG(st.st_mode):
                raise PatchError(f"{path} is not a regular file.")
            else:
                try:
                    orig = found.real.read_bytes()
                except OSError as ex:
                    raise PatchError(f"{path}: can't read it: {ex.strerror}.") from ex
                mode = stat.S_IMODE(st.st_mode)
        rel = found.real.relative_to(self.root).as_posix()
        e = _Entry(found.real, rel, orig, mode, link, orig, mode)
        self.entries[found.real] = e
        return e

    def _check_no_clash(self, e: _Entry, path: str) -> None:
        """A planned file can't also be a directory of another planned file."""
        for other in self.entries.values():
            if other is e or not other.present:
                continue
            if other.real.is_relative_to(e.real) or e.real.is_relative_to(other.real):
                raise PatchError(
                    f"{path}: clashes with {other.rel} in the same patch (one would have to be "
                    "both a file and a directory)."
                )

    def add(self, h: AddFile) -> None:
        found = self.resolve(h.path, follow_final=False)
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
        e = self._entry(self.resolve(h.path, follow_final=False), h.path)
        if not e.present:
            raise PatchError(f"{h.path} does not exist, so it can't be deleted.")
        if e.orig_link is not None:
            e.link_removed = True
        e.data = None

    def update(self, h: UpdateFile) -> None:
        e = self._entry(self.resolve(h.path, follow_final=True), h.path)
        if e.data is None:
            raise PatchError(f"{h.path} does not exist; use '*** Add File: {h.path}' to create it.")
        data = e.data
        if h.chunks:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as ex:
                raise PatchError(
                    f"{h.path} is not UTF-8 text (byte 0x{data[ex.start]:02x} at offset "
                    f"{ex.start}); apply_patch only edits UTF-8 text files. Use a shell "
                    "command for this file."
                ) from ex
            data = _apply_chunks(text, h.chunks, h.path).encode("utf-8")
        if h.move_to is None:
            e.data = data
            return
        found = self.resolve(h.move_to, follow_final=False)
        if found.is_link:
            raise PatchError(f"'*** Move to: {h.move_to}' is a symlink; refusing to overwrite it.")
        dest = self._entry(found, h.move_to)
        if dest is e:  # e.g. the same file through a symlinked directory
            e.data = data
            return
        if dest.present:
            raise PatchError(
                f"'*** Move to: {h.move_to}' already exists; refusing to overwrite it. "
                "Delete it first or pick another name."
            )
        dest.data = data
        dest.mode = e.mode
        dest.renamed_from = e.rel if e.orig is not None else e.renamed_from
        e.data = None
        e.moved_away = True
        self._check_no_clash(dest, h.move_to)

    def changes(self) -> list[_Entry]:
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


# writing and rollback


def _write_replace(path: Path, data: bytes, mode: int | None, like: Path | None = None) -> None:
    """Atomically replace ``path`` by ``data`` (temp file + rename), setting ``mode``."""
    st = os.stat(like) if like is not None and os.path.lexists(like) else None
    fd, tmp = tempfile.mkstemp(prefix=".errand-patch-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            if st is not None:
                with contextlib.suppress(OSError):
                    os.fchown(f.fileno(), st.st_uid, st.st_gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _create(path: Path, data: bytes, mode: int | None, made_dirs: list[Path]) -> None:
    missing: list[Path] = []
    parent = path.parent
    while not os.path.lexists(parent):
        missing.append(parent)
        parent = parent.parent
    for d in reversed(missing):
        os.mkdir(d)
        made_dirs.append(d)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if mode is not None:
                os.fchmod(f.fileno(), mode)
    except BaseException:
        os.unlink(path)
        raise


def _execute(entries: list[_Entry]) -> None:
    """Write the planned changes; on any OS error undo what was done and raise PatchError."""
    done: list[_Entry] = []
    made_dirs: list[Path] = []
    current: _Entry | None = None
    try:
        for e in entries:
            if not e.present:
                current = e
                os.unlink(e.real)
                done.append(e)
        for e in entries:
            if e.data is None:
                continue
            current = e
            if e.orig is not None:
                _write_replace(e.real, e.data, e.mode, like=e.real)
            else:
                _create(e.real, e.data, e.mode, made_dirs)
            done.append(e)
    except OSError as ex:
        failed = current.rel if current is not None else "?"
        log.warning("apply_patch: writing %s failed (%s); rolling back", failed, ex)
        broken = _rollback(done, made_dirs)
        msg = f"Writing {failed} failed: {ex.strerror or ex}."
        if broken:
            raise PatchError(
                f"{msg} Rolling back also failed for: {', '.join(broken)}; those files may be "
                "in a partial state. Check them before continuing.",
                partial=True,
            ) from ex
        raise PatchError(
            f"{msg} Everything already written was rolled back. {NOTHING_CHANGED}"
        ) from ex


def _rollback(done: list[_Entry], made_dirs: list[Path]) -> list[str]:
    broken: list[str] = []
    for e in reversed(done):
        try:
            if e.orig_link is not None:
                if not os.path.lexists(e.real):
                    os.symlink(e.orig_link, e.real)
            elif e.orig is None:
                os.unlink(e.real)
            elif os.path.lexists(e.real):
                _write_replace(e.real, e.orig, e.orig_mode, like=e.real)
            else:
                _create(e.real, e.orig, e.orig_mode, [])
        except OSError as ex:
            log.error("apply_patch: rollback of %s failed: %s", e.rel, ex)
            broken.append(e.rel)
    for d in reversed(made_dirs):
        try:
            os.rmdir(d)
        except OSError as ex:
            log.warning("apply_patch: could not remove %s during rollback: %s", d, ex)
    return broken


def apply_patch(text: str, root: Path) -> PatchResult:
    """Apply patch ``text`` to the tree at ``root``, all or nothing.

    Raises PatchError (with a message for the model) and leaves the tree untouched when the
    patch is malformed, names a forbidden path, or doesn't match the files.
    """
    try:
        hunks = parse_patch(text)
        plan = _Plan(root)
        for h in hunks:
            if isinstance(h, AddFile):
                plan.add(h)
            elif isinstance(h, DeleteFile):
                plan.delete(h)
            else:
                plan.update(h)
    except PatchError as ex:
        raise PatchError(f"{ex}\n{NOTHING_CHANGED}") from None
    _execute(plan.changes())
    result = plan.result()
    log.debug("apply_patch applied: %s", result.summary())
    return result
