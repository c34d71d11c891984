"""Where chunks go: locating them in a file's lines by context, anchors and tiers. Pure.

It works on lists of line bodies (``text.Text`` has taken the endings off) and returns
``Edit`` values; it reads and writes nothing. The placement rules it enforces, and the
messages that tell the model how to fix a chunk that does not fit, live together here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from errand.patch.errors import PatchError, indent, quote
from errand.patch.hunks import END_OF_FILE, Chunk
from errand.patch.text import BOM, Edit

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


# Tried in turn; the first tier that finds anything decides.
_TIERS: tuple[Callable[[str], str], ...] = (_exact, _rstrip, _strip, _loose)


class Matcher:
    """Searches one file's line bodies, normalizing them once per tier."""

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
                if j >= start and lines[j : j + len(want)] == want:
                    return [j]
                continue
            found: list[int] = []
            first = want[0]
            for j in range(start, n - len(old) + 1):
                if lines[j] == first and lines[j : j + len(want)] == want:
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


def locate(chunks: Sequence[Chunk], bodies: list[str], display: str) -> list[Edit]:
    """Where each chunk of one Update File hunk goes, each after the previous one.

    ``display`` names the file in messages. Raises PatchError when a chunk fits nowhere,
    fits several places, or is a pure addition with nothing to say where it goes.
    """
    m = Matcher(bodies)
    edits: list[Edit] = []
    cursor = 0
    for c, chunk in enumerate(chunks, 1):
        edit = _place(m, chunk, f"{display}: chunk {c} (patch line {chunk.lineno})", cursor)
        edits.append(edit)
        cursor = edit.start + edit.count
    return edits


def _place(m: Matcher, chunk: Chunk, label: str, cursor: int) -> Edit:
    """Locate one chunk at or after line ``cursor`` (0-based)."""
    after = f" after line {cursor}" if cursor else ""
    anchor_at = _find_anchors(m, chunk, label, cursor, after)
    old = chunk.old
    if not old:
        return Edit(_insertion_point(chunk, anchor_at, len(m.bodies), label), 0, chunk.lines)
    start = anchor_at if anchor_at is not None else cursor
    found = m.find_block(old, start, chunk.at_eof, unique=anchor_at is None)
    if len(found) > 1:
        where = ", ".join(str(j + 1) for j in found)
        raise PatchError(
            f"{label} is ambiguous: its context matches several places{after} "
            f"(lines {where}{', …' if len(found) == 3 else ''}). Add more context lines or "
            "an '@@ <line>' anchor naming the enclosing class or function. The chunk "
            f"expects:\n{indent(old)}"
        )
    if not found:
        raise PatchError(_no_match(label, m, old, start, chunk, anchor_at, after))
    return Edit(found[0], len(old), chunk.lines)


def _find_anchors(m: Matcher, chunk: Chunk, label: str, cursor: int, after: str) -> int | None:
    """The line of the chunk's last ``@@`` anchor, each found after the previous one."""
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
    return anchor_at


def _insertion_point(chunk: Chunk, anchor_at: int | None, n: int, label: str) -> int:
    """Where a chunk of only ``+`` lines goes in a file of ``n`` lines; never a guess."""
    if chunk.at_eof:
        return n
    if anchor_at is not None:
        return anchor_at + 1
    if n == 0:
        return 0
    raise PatchError(
        f"{label} only adds lines and has no context, so there's no telling where "
        "they go. Add the surrounding lines as ' ' context, an '@@ <line>' anchor "
        f"to insert after, or end the chunk with '{END_OF_FILE}' to append."
    )


def _no_match(
    label: str,
    m: Matcher,
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
    msg = [f"{label}: these context/removed lines were not found{where}{eof}:", indent(old)]
    k, j = m.longest_prefix(old, start)
    if k > 0 and k < len(old):
        got = quote(m.bodies[j + k]) if j + k < len(m.bodies) else "the end of the file"
        msg.append(
            f"The first {k} line(s) match at line {j + 1}, but then the patch expects "
            f"{quote(old[k])} where the file has {got}."
        )
    elif k == len(old) and chunk.at_eof:
        msg.append(
            f"They match at line {j + 1}, which is not the end of the file; drop "
            f"'{END_OF_FILE}' or extend the chunk to the last line."
        )
    else:
        msg.append(f"Not even the first line, {quote(old[0])}, appears{where or ' in the file'}.")
    msg.append("Re-read the file and make the ' ' and '-' lines match it exactly.")
    return "\n".join(msg)
