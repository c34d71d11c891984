"""Pure conversion between a task's file changes and an LSP ``WorkspaceEdit``.

Everything here is side-effect free: the caller reads the files and hands over their text.

Positions follow LSP: lines end at ``\\n``, ``\\r\\n`` or ``\\r`` (and at nothing else, unlike
:meth:`str.splitlines`), and characters are counted in UTF-16 code units, so a character outside
the Basic Multilingual Plane counts 2. No range produced here ever starts or ends between the
``\\r`` and the ``\\n`` of a ``\\r\\n`` pair.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from itertools import accumulate
from pathlib import Path, PurePosixPath
from typing import Any

from lsprotocol import types
from lsprotocol.converters import get_converter

from errand.workspace.results import FileChange

__all__ = [
    "apply_text_edits",
    "build_workspace_edit",
    "path_to_uri",
    "text_edits",
    "workspace_edit_to_json",
]

DocumentChange = types.TextDocumentEdit | types.CreateFile | types.RenameFile | types.DeleteFile


# --------------------------------------------------------------------------------------------
# Lines and positions

# One LSP line: content followed by its terminator, or a final unterminated remainder.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def _split_lines(text: str) -> list[str]:
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
        return _LINE.findall(text)
    return text.splitlines(keepends=True)  # same result when no other break is present


def _utf16_len(s: str) -> int:
    if s.isascii():
        return len(s)
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def _content_len(line: str) -> int:
    """Length of ``line`` without its terminator, in code points."""
    if line.endswith("\r\n"):
        return len(line) - 2
    if line.endswith(("\n", "\r")):
        return len(line) - 1
    return len(line)


def _is_line_start(text: str, pos: int) -> bool:
    """Whether ``pos`` starts a line (the end of the text counts as one)."""
    if pos in (0, len(text)):
        return True
    before = text[pos - 1]
    return before == "\n" or (before == "\r" and text[pos] != "\n")


def _line_start_at_or_before(text: str, lo: int, pos: int) -> int:
    """The last line start in ``[lo, pos]``; ``lo`` must be one."""
    while pos > lo:
        if _is_line_start(text, pos):
            return pos
        brk = max(text.rfind("\n", lo, pos), text.rfind("\r", lo, pos))
        if brk < 0:
            return lo
        pos = brk + 1  # a line start unless it falls inside "\r\n"; then look further back
        if _is_line_start(text, pos):
            return pos
        pos = brk
    return lo


def _line_start_at_or_after(text: str, pos: int, hi: int) -> int:
    """The first line start in ``[pos, hi]``; ``hi`` must be one."""
    if pos >= hi or _is_line_start(text, pos):
        return min(pos, hi)
    nl = text.find("\n", pos, hi)
    cr = text.find("\r", pos, hi)
    brk = min(nl, cr) if nl >= 0 and cr >= 0 else max(nl, cr)
    if brk < 0:
        return hi
    if text[brk] == "\r" and brk + 1 < len(text) and text[brk + 1] == "\n":
        return brk + 2
    return brk + 1


class _LineIndex:
    """A text's lines, for converting LSP positions to offsets."""

    __slots__ = ("lines", "starts")

    def __init__(self, text: str) -> None:
        self.lines = _split_lines(text)
        # starts[i] is the offset of line i; the final entry is len(text). When the text is empty
        # or ends with a terminator, that final entry also starts the (empty) last LSP line.
        self.starts = [0, *accumulate(map(len, self.lines))]

    @property
    def line_count(self) -> int:
        """Number of LSP lines (an empty text has one line; a trailing break opens another)."""
        if self.lines and _content_len(self.lines[-1]) == len(self.lines[-1]):
            return len(self.lines)
        return len(self.lines) + 1

    def offset(self, pos: types.Position) -> int:
        if not 0 <= pos.line < self.line_count:
            raise ValueError(f"line {pos.line} out of range (text has {self.line_count} lines)")
        raw = self.lines[pos.line] if pos.line < len(self.lines) else ""
        content = raw[: _content_len(raw)]
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


class _Positions:
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
        return types.Position(line=self.line, character=_utf16_len(text[self.line_start : offset]))


# --------------------------------------------------------------------------------------------
# Diff
#
# The diff works on the texts, not on lists of lines: splitting large files into lines and
# hashing them costs more than the whole budget for a big change set. Equal stretches are skipped
# by galloping slice comparisons (C speed); after each mismatch the two sides resynchronise on the
# nearest pair of consecutive equal lines, looked up in a small window that grows only when
# needed. Each resulting hunk that still shares lines between its sides is refined by difflib.

# Initial size, in characters, of the window searched for a resync point.
_WINDOW = 256
# First slice, in characters, when galloping over an equal stretch (it doubles from there).
_GALLOP = 256
# Size below which the slice holding the first difference is compared line by line.
_LINE_SCAN = 128
# Largest hunk (old lines x new lines) that difflib refines.
_REFINE_LIMIT = 250_000
# Most occurrences of one line that a resync tries (bounds the work on repetitive text).
_CANDIDATES = 32
# Sentinel line for the end of a region ("" is never a line).
_END = ""

Region = tuple[int, int, int, int]
"""Character ranges ``(a0, a1, b0, b1)``: ``a[a0:a1]`` becomes ``b[b0:b1]``."""


def _common_prefix(x: str, y: str) -> int:
    """Length of the common prefix of ``x`` and ``y`` (bisection: O(n) copying in all)."""
    lo, hi = 0, min(len(x), len(y))
    if x[:hi] == y[:hi]:
        return hi
    while hi - lo > 1:  # the first lo chars agree, the first hi do not
        mid = (lo + hi) // 2
        if x[lo:mid] == y[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def _common_suffix(x: str, y: str) -> int:
    """Length of the common suffix of ``x`` and ``y``."""
    lo, hi = 0, min(len(x), len(y))
    if x[len(x) - hi :] == y[len(y) - hi :]:
        return hi
    while hi - lo > 1:  # the last lo chars agree, the last hi do not
        mid = (lo + hi) // 2
        if x[len(x) - mid : len(x) - lo] == y[len(y) - mid : len(y) - lo]:
            lo = mid
        else:
            hi = mid
    return lo


def _first_difference(a: str, a0: int, a1: int, b: str, b0: int, b1: int) -> int | None:
    """Distance from the line starts ``a0`` and ``b0`` to the start of the first line where
    ``a[a0:a1]`` and ``b[b0:b1]`` differ, or ``None`` if they are equal.

    Gallops over the equal stretch with growing slice comparisons (time near its length, not
    the region's), then finds the line within the last, short, unequal slice.
    """
    n = min(a1 - a0, b1 - b0)
    lo, step = 0, _GALLOP
    while True:  # lo chars agree; grow the probe until it disagrees
        hi = min(lo + step, n)
        if not a.startswith(b[b0 + lo : b0 + hi], a0 + lo):
            break
        if hi == n:
            if a1 - a0 == b1 - b0:
                return None
            # One side is a prefix of the other: step back to a line start valid in both.
            return min(
                _line_start_at_or_before(a, a0, a0 + n) - a0,
                _line_start_at_or_before(b, b0, b0 + n) - b0,
            )
        lo, step = hi, step * 2
    while hi - lo > _LINE_SCAN:  # narrow [lo, hi), which holds the first difference
        mid = (lo + hi) // 2
        if a.startswith(b[b0 + lo : b0 + mid], a0 + lo):
            lo = mid
        else:
            hi = mid
    # Start from a line start before lo (one in a is one in b: the text around it agrees) and
    # compare whole lines up to hi.
    off = _line_start_at_or_before(a, a0, a0 + lo - 1) - a0 if lo else 0
    la = _split_lines(a[a0 + off : a0 + hi])
    lb = _split_lines(b[b0 + off : b0 + hi])
    for x, y in zip(la, lb, strict=False):
        if x != y:
            break
        off += len(x)
    return off


def _suffix_len(a: str, a0: int, a1: int, b: str, b0: int, b1: int) -> int:
    """Length of the common suffix of ``a[a0:a1]`` and ``b[b0:b1]``, in time near its length."""
    n = min(a1 - a0, b1 - b0)
    lo, step = 0, _GALLOP
    while True:
        hi = min(lo + step, n)
        if a[a1 - hi : a1 - lo] != b[b1 - hi : b1 - lo]:
            break
        if hi == n:
            return n
        lo, step = hi, step * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[a1 - mid : a1 - lo] == b[b1 - mid : b1 - lo]:
            lo = mid
        else:
            hi = mid
    return lo


def _window(text: str, start: int, end: int, size: int) -> list[str]:
    """Whole lines of ``text[start:end]`` within ``size`` chars, then ``_END`` if all fit."""
    stop = start + size
    if stop >= end:
        lines = _split_lines(text[start:end])
        lines.append(_END)
        return lines
    lines = _split_lines(text[start:stop])
    lines.pop()  # maybe a partial line, or a "\r" whose "\n" was cut off
    return lines


def _nearest_sync(a: list[str], b: list[str]) -> tuple[int, int] | None:
    """``(i, j)`` with the least ``i + j`` where ``a[i:i+2] == b[j:j+2]`` (two equal lines in a
    row, or the ends of both regions), other than ``(0, 0)``; ``None`` if there is none.

    Only the first ``_CANDIDATES`` occurrences in ``b`` of each line of ``a`` are tried, so on
    very repetitive text the pair found may not be the nearest one.
    """
    first = dict(zip(reversed(b), range(len(b) - 1, -1, -1), strict=True))
    last = dict(zip(b, range(len(b)), strict=True))
    where: dict[str, list[int]] = {}  # every occurrence, built only if a repeated line needs it
    best: tuple[int, int] | None = None
    best_cost = len(a) + len(b)
    last_a, last_b = len(a) - 1, len(b) - 1
    for i, line in enumerate(a):
        if i >= best_cost:
            break
        j = first.get(line)
        if j is None:
            continue
        if j == last[line]:
            candidates: Sequence[int] = (j,)
        else:
            if not where:
                for k, other in enumerate(b):
                    where.setdefault(other, []).append(k)
            candidates = where[line][:_CANDIDATES]
        for j in candidates:
            if i + j >= best_cost:
                break
            if line == _END or (i < last_a and j < last_b and a[i + 1] == b[j + 1] and (i or j)):
                best, best_cost = (i, j), i + j
                break
    return best


def _resync(a: str, a0: int, a1: int, b: str, b0: int, b1: int) -> tuple[list[str], list[str]]:
    """The lines of ``a`` from ``a0`` and of ``b`` from ``b0`` (both line starts where the two
    differ) up to where they agree again."""
    size = _WINDOW
    while True:
        wa, wb = _window(a, a0, a1, size), _window(b, b0, b1, size)
        sync = _nearest_sync(wa, wb)
        if sync is not None:
            i, j = sync
            return wa[:i], wb[:j]
        size *= 2  # both windows end in _END once they cover their regions, which always syncs


def _add_hunk(a0: int, la: list[str], b0: int, lb: list[str], out: list[Region]) -> None:
    """Append the hunk of lines ``la`` at ``a0`` -> ``lb`` at ``b0``, split by difflib where
    both sides share lines."""
    if la and lb and len(la) * len(lb) <= _REFINE_LIMIT and not set(la).isdisjoint(lb):
        sa = list(accumulate(map(len, la), initial=a0))
        sb = list(accumulate(map(len, lb), initial=b0))
        matcher = difflib.SequenceMatcher(None, la, lb, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag != "equal":
                out.append((sa[i1], sa[i2], sb[j1], sb[j2]))
        return
    out.append((a0, a0 + sum(map(len, la)), b0, b0 + sum(map(len, lb))))


def _diff_regions(a: str, b: str) -> list[Region]:
    """Line-aligned character ranges where ``a`` and ``b`` differ: ascending, never touching."""
    a1, b1 = len(a), len(b)
    suffix = _suffix_len(a, 0, a1, b, 0, b1)
    if suffix:  # keep the common tail out of the scan, cut at a line start valid in both
        tail = min(
            a1 - _line_start_at_or_after(a, a1 - suffix, a1),
            b1 - _line_start_at_or_after(b, b1 - suffix, b1),
        )
        a1, b1 = a1 - tail, b1 - tail
    out: list[Region] = []
    a0 = b0 = 0  # line starts where the two sides are in step
    while True:
        back = _first_difference(a, a0, a1, b, b0, b1)
        if back is None:
            return out
        a0, b0 = a0 + back, b0 + back
        if a0 == a1 or b0 == b1:
            out.append((a0, a1, b0, b1))
            return out
        la, lb = _resync(a, a0, a1, b, b0, b1)
        _add_hunk(a0, la, b0, lb, out)
        a0, b0 = a0 + sum(map(len, la)), b0 + sum(map(len, lb))


def _is_crlf_split(text: str, offset: int) -> bool:
    return 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n"


def text_edits(base: str, new: str) -> list[types.TextEdit]:
    """LSP edits that turn ``base`` into ``new``: small, sorted and non-overlapping.

    Changed lines are found first (see the Diff section), then each changed block is trimmed of
    its common character prefix and suffix. Ranges are in ``base`` coordinates (LSP lines,
    UTF-16 characters) and never split a ``\\r\\n``.
    """
    if base == new:
        return []
    position = _Positions(base)
    edits: list[types.TextEdit] = []
    for a0, a1, b0, b1 in _diff_regions(base, new):
        old, rep = base[a0:a1], new[b0:b1]
        prefix = _common_prefix(old, rep)
        if _is_crlf_split(base, a0 + prefix):
            prefix -= 1
        suffix = _common_suffix(old[prefix:], rep[prefix:])
        if suffix and _is_crlf_split(base, a1 - suffix):
            suffix -= 1
        start = position(a0 + prefix)
        end = position(a1 - suffix)
        edits.append(
            types.TextEdit(
                range=types.Range(start=start, end=end),
                new_text=new[b0 + prefix : b1 - suffix],
            )
        )
    return edits


def apply_text_edits(text: str, edits: Sequence[types.TextEdit]) -> str:
    """Apply LSP edits to ``text`` the way a client does.

    All ranges refer to the original ``text``. Inserts at the same position keep their order in
    ``edits``. Raises :class:`ValueError` when two edits overlap, a range is reversed, or a
    position lies outside the text or inside a surrogate pair.
    """
    if not edits:
        return text
    index = _LineIndex(text)
    spans: list[tuple[int, int, str]] = []
    for edit in edits:
        start = index.offset(edit.range.start)
        end = index.offset(edit.range.end)
        if end < start:
            raise ValueError(f"edit range {edit.range} ends before it starts")
        spans.append((start, end, edit.new_text))
    spans.sort(key=lambda span: (span[0], span[1]))  # stable: same-position inserts keep order
    parts: list[str] = []
    cursor = 0
    for start, end, new_text in spans:
        if start < cursor:
            raise ValueError("overlapping edits")
        parts.append(text[cursor:start])
        parts.append(new_text)
        cursor = end
    parts.append(text[cursor:])
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# Workspace edits


def path_to_uri(root: Path, rel: str) -> str:
    """``file:`` URI of ``rel`` (a relative posix path) under the absolute directory ``root``."""
    pure = PurePosixPath(rel)
    if not rel or pure.is_absolute() or ".." in pure.parts or "\\" in rel:
        raise ValueError(f"not a relative path inside the workspace: {rel!r}")
    return (root / pure).as_uri()


def _validate(changes: Sequence[FileChange]) -> None:
    seen: set[str] = set()
    for ch in changes:
        if ch.path in seen:
            raise ValueError(f"more than one change for {ch.path!r}")
        seen.add(ch.path)
        if ch.change == "added" and ch.new_text is None:
            raise ValueError(f"added file {ch.path!r} has no new_text")
        if ch.change == "deleted" and ch.base_text is None:
            raise ValueError(f"deleted file {ch.path!r} has no base_text")
        if ch.change in ("modified", "renamed") and (ch.base_text is None or ch.new_text is None):
            raise ValueError(f"{ch.change} file {ch.path!r} needs base_text and new_text")
        if ch.change == "renamed":
            if ch.old_path is None or ch.old_path == ch.path:
                raise ValueError(f"renamed file {ch.path!r} needs a different old_path")
        elif ch.old_path is not None:
            raise ValueError(f"old_path is only for renames ({ch.path!r})")
    sources = [ch.old_path for ch in changes if ch.change == "renamed"]
    if len(set(sources)) != len(sources):
        raise ValueError("two renames share a source path")


def _order_renames(
    renames: list[FileChange],
) -> tuple[list[FileChange], list[FileChange]]:
    """Split renames into a safe sequence and those caught in cycles.

    A rename must run after any rename that moves its destination away. Renames caught in a
    cycle (``a -> b``, ``b -> a``) cannot run as plain renames; they are returned apart.
    """
    by_source = {ch.old_path: ch for ch in renames}
    pending = sorted(renames, key=lambda ch: ch.path)
    done: set[str] = set()  # sources already moved
    ordered: list[FileChange] = []
    progress = True
    while pending and progress:
        progress = False
        still: list[FileChange] = []
        for ch in pending:
            # A rename waits for the one that moves its destination away.
            blocker = by_source.get(ch.path)
            if blocker is None or blocker.old_path in done:
                ordered.append(ch)
                assert ch.old_path is not None
                done.add(ch.old_path)
                progress = True
            else:
                still.append(ch)
        pending = still
    return ordered, pending


def _text_document_edit(
    uri: str, version: int | None, edits: list[types.TextEdit]
) -> types.TextDocumentEdit:
    return types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
        edits=list(edits),
    )


def build_workspace_edit(
    root: Path,
    changes: Sequence[FileChange],
    versions: Mapping[str, int | None] | None = None,
) -> types.WorkspaceEdit:
    """The ``documentChanges`` WorkspaceEdit that turns the base files into the new ones.

    Operations come in an order that is safe to run one after another and is the same for the
    same input: deletions, then renames (each followed by the edit of its new content, if any;
    a rename waits for the rename that frees its destination), then creations (each followed by
    an edit inserting the content), then edits of modified files; paths sorted within each group.

    ``versions`` maps a file's path to the version of its open document, or ``None``; edits to a
    modified file carry that version so the client refuses them when the document moved on.
    Edits following a create or a rename carry no version. Renames that form a cycle
    (``a -> b``, ``b -> a``) are expressed as edits of the files in place.
    """
    _validate(changes)
    versions = versions or {}
    by_kind: dict[str, list[FileChange]] = {"added": [], "deleted": [], "modified": []}
    renames: list[FileChange] = []
    for ch in changes:
        (renames if ch.change == "renamed" else by_kind[ch.change]).append(ch)
    for group in by_kind.values():
        group.sort(key=lambda ch: ch.path)
    ordered_renames, cyclic = _order_renames(renames)

    ops: list[DocumentChange] = []
    for ch in by_kind["deleted"]:
        ops.append(
            types.DeleteFile(
                uri=path_to_uri(root, ch.path),
                options=types.DeleteFileOptions(recursive=False, ignore_if_not_exists=False),
            )
        )
    for ch in ordered_renames:
        assert ch.old_path is not None and ch.base_text is not None and ch.new_text is not None
        new_uri = path_to_uri(root, ch.path)
        ops.append(
            types.RenameFile(
                old_uri=path_to_uri(root, ch.old_path),
                new_uri=new_uri,
                options=types.RenameFileOptions(overwrite=False, ignore_if_exists=False),
            )
        )
        if ch.new_text != ch.base_text:
            ops.append(_text_document_edit(new_uri, None, text_edits(ch.base_text, ch.new_text)))
    for ch in by_kind["added"]:
        assert ch.new_text is not None
        uri = path_to_uri(root, ch.path)
        ops.append(
            types.CreateFile(
                uri=uri, options=types.CreateFileOptions(overwrite=False, ignore_if_exists=False)
            )
        )
        if ch.new_text:
            ops.append(_text_document_edit(uri, None, text_edits("", ch.new_text)))

    # Modified files, plus cyclic renames rewritten as in-place edits: the file now at X held the
    # base text of the rename *from* X and must end with the new text of the rename *to* X.
    in_place: list[tuple[str, str, str]] = []
    for ch in by_kind["modified"]:
        assert ch.base_text is not None and ch.new_text is not None
        in_place.append((ch.path, ch.base_text, ch.new_text))
    cyclic_by_source = {ch.old_path: ch for ch in cyclic}
    for ch in cyclic:
        assert ch.new_text is not None
        base_text = cyclic_by_source[ch.path].base_text
        assert base_text is not None
        in_place.append((ch.path, base_text, ch.new_text))
    in_place.sort(key=lambda item: item[0])
    for path, base_text, new_text in in_place:
        edits = text_edits(base_text, new_text)
        if edits:
            uri = path_to_uri(root, path)
            ops.append(_text_document_edit(uri, versions.get(path), edits))
    return types.WorkspaceEdit(document_changes=ops)


def workspace_edit_to_json(edit: types.WorkspaceEdit) -> dict[str, Any]:
    """The JSON (camelCase, as on the wire) form of ``edit``."""
    data = get_converter().unstructure(edit, unstructure_as=types.WorkspaceEdit)
    assert isinstance(data, dict)
    return data
