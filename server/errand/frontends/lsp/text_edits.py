"""Pure text diffing into LSP ``TextEdit`` lists, and applying them back.

Everything here is side-effect free: the caller reads the files and hands over their text.

Positions follow LSP: lines end at ``\\n``, ``\\r\\n`` or ``\\r`` (and at nothing else, unlike
:meth:`str.splitlines`), and characters are counted in UTF-16 code units, so a character outside
the Basic Multilingual Plane counts 2. No range produced here ever starts or ends between the
``\\r`` and the ``\\n`` of a ``\\r\\n`` pair.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from itertools import accumulate

from lsprotocol import types

from errand.frontends.lsp.positions import (
    LineIndex,
    Positions,
    line_start_at_or_after,
    line_start_at_or_before,
    split_lines,
)

__all__ = ["apply_text_edits", "text_edits"]


# --------------------------------------------------------------------------------------------
# Lines and positions


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
                line_start_at_or_before(a, a0, a0 + n) - a0,
                line_start_at_or_before(b, b0, b0 + n) - b0,
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
    off = line_start_at_or_before(a, a0, a0 + lo - 1) - a0 if lo else 0
    la = split_lines(a[a0 + off : a0 + hi])
    lb = split_lines(b[b0 + off : b0 + hi])
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
        lines = split_lines(text[start:end])
        lines.append(_END)
        return lines
    lines = split_lines(text[start:stop])
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
            a1 - line_start_at_or_after(a, a1 - suffix, a1),
            b1 - line_start_at_or_after(b, b1 - suffix, b1),
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
    position = Positions(base)
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
    index = LineIndex(text)
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
