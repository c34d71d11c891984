"""Pure conversion between a task's file changes and an LSP ``WorkspaceEdit``.

Everything here is side-effect free: the caller reads the files and hands over their text.

Positions follow LSP: lines end at ``\\n``, ``\\r\\n`` or ``\\r`` (and at nothing else, unlike
:meth:`str.splitlines`), and characters are counted in UTF-16 code units, so a character outside
the Basic Multilingual Plane counts 2. No range produced here ever starts or ends between the
``\\r`` and the ``\\n`` of a ``\\r\\n`` pair.
"""

from __future__ import annotations

import bisect
import difflib
import operator
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, islice
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from lsprotocol import types
from lsprotocol.converters import get_converter

__all__ = [
    "FileChange",
    "apply_text_edits",
    "build_workspace_edit",
    "path_to_uri",
    "text_edits",
    "workspace_edit_to_json",
]

ChangeKind = Literal["added", "deleted", "modified", "renamed"]
DocumentChange = types.TextDocumentEdit | types.CreateFile | types.RenameFile | types.DeleteFile


@dataclass(frozen=True, slots=True)
class FileChange:
    """One file's change between the task's snapshot and the task's final tree."""

    path: str
    """Posix path relative to the workspace root (the destination for a rename)."""
    change: ChangeKind
    old_path: str | None = None
    """Source path, for ``renamed`` only."""
    base_text: str | None = None
    """Snapshot text; ``None`` for ``added``."""
    new_text: str | None = None
    """Final text; ``None`` for ``deleted``. May equal ``base_text`` for a pure rename."""


# --------------------------------------------------------------------------------------------
# Lines and positions

# One LSP line: content followed by its terminator, or a final unterminated remainder.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
# Characters that str.splitlines() treats as line breaks but LSP does not.
_NON_LSP_BREAKS = re.compile("[\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def _split_lines(text: str) -> list[str]:
    """Split ``text`` into LSP lines, each keeping its terminator."""
    if _NON_LSP_BREAKS.search(text) is None:
        return text.splitlines(keepends=True)  # same result, much faster
    return _LINE.findall(text)


def _utf16_len(s: str) -> int:
    if s.isascii():
        return len(s)
    return len(s.encode("utf-16-le")) // 2


def _content_len(line: str) -> int:
    """Length of ``line`` without its terminator, in code points."""
    if line.endswith("\r\n"):
        return len(line) - 2
    if line.endswith(("\n", "\r")):
        return len(line) - 1
    return len(line)


class _LineIndex:
    """Offsets of a text's lines, for converting between offsets and LSP positions."""

    __slots__ = ("lines", "starts", "text")

    def __init__(self, text: str, lines: list[str] | None = None) -> None:
        self.text = text
        self.lines = _split_lines(text) if lines is None else lines
        # starts[i] is the offset of line i; the final entry is len(text). When the text is empty
        # or ends with a terminator, that final entry also starts the (empty) last LSP line.
        self.starts = [0, *accumulate(map(len, self.lines))]

    @property
    def line_count(self) -> int:
        """Number of LSP lines (an empty text has one line; a trailing break opens another)."""
        if self.lines and _content_len(self.lines[-1]) == len(self.lines[-1]):
            return len(self.lines)
        return len(self.lines) + 1

    def line_content(self, line: int) -> str:
        if line == len(self.lines):
            return ""
        raw = self.lines[line]
        return raw[: _content_len(raw)]

    def position(self, offset: int) -> types.Position:
        line = bisect.bisect_right(self.starts, offset) - 1
        if line >= self.line_count:  # end of a text whose last line has no terminator
            line = self.line_count - 1
        start = self.starts[line]
        return types.Position(line=line, character=_utf16_len(self.text[start:offset]))

    def offset(self, pos: types.Position) -> int:
        if not 0 <= pos.line < self.line_count:
            raise ValueError(f"line {pos.line} out of range (text has {self.line_count} lines)")
        content = self.line_content(pos.line)
        start = self.starts[pos.line]
        if content.isascii():
            if not 0 <= pos.character <= len(content):
                raise ValueError(f"character {pos.character} out of range on line {pos.line}")
            return start + pos.character
        units = content.encode("utf-16-le")
        if not 0 <= 2 * pos.character <= len(units):
            raise ValueError(f"character {pos.character} out of range on line {pos.line}")
        try:
            prefix = units[: 2 * pos.character].decode("utf-16-le")
        except UnicodeDecodeError:
            raise ValueError(
                f"character {pos.character} on line {pos.line} splits a surrogate pair"
            ) from None
        return start + len(prefix)


# --------------------------------------------------------------------------------------------
# Text edits


def _common_prefix_len(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Length of the longest common prefix, by bisection over C-speed slice comparisons."""
    hi = min(len(a), len(b))
    if a[:hi] == b[:hi]:
        return hi
    lo = 0  # invariant: a[:lo] == b[:lo] and a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def _common_suffix_len(a: Sequence[Any], b: Sequence[Any], limit: int) -> int:
    """Length of the longest common suffix, at most ``limit``."""
    hi = min(len(a), len(b), limit)
    if hi == 0 or a[len(a) - hi :] == b[len(b) - hi :]:
        return hi
    lo = 0  # invariant: the last lo items agree and the last hi do not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[len(a) - mid : len(a) - lo] == b[len(b) - mid : len(b) - lo]:
            lo = mid
        else:
            hi = mid
    return lo


# Below this many line pairs (len(a) * len(b)) a region goes straight to difflib.
_SMALL_REGION = 4096

Region = tuple[int, int, int, int]


def _increasing_subsequence(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Longest run of ``pairs`` (sorted by first item) whose second items also increase."""
    js = [j for _, j in pairs]
    if all(map(operator.lt, js, islice(js, 1, None))):
        return pairs  # the usual case: no line moved
    # Patience sorting: tails[k] is the index (into pairs) ending the best run of length k + 1.
    tails: list[int] = []
    tail_js: list[int] = []
    back = [-1] * len(pairs)
    for idx, j in enumerate(js):
        k = bisect.bisect_left(tail_js, j)
        if k:
            back[idx] = tails[k - 1]
        if k == len(tails):
            tails.append(idx)
            tail_js.append(j)
        else:
            tails[k] = idx
            tail_js[k] = j
    run: list[tuple[int, int]] = []
    idx = tails[-1]
    while idx >= 0:
        run.append(pairs[idx])
        idx = back[idx]
    run.reverse()
    return run


def _changed_regions(
    a: list[str], b: list[str], alo: int, ahi: int, blo: int, bhi: int, out: list[Region]
) -> None:
    """Append to ``out`` the line ranges ``(i1, i2, j1, j2)``, ascending, where ``a[i1:i2]`` must
    become ``b[j1:j2]`` to turn ``a[alo:ahi]`` into ``b[blo:bhi]``. Ranges never touch.

    This is patience diff: equal leading and trailing lines are stripped, lines occurring exactly
    once on each side anchor the alignment (their longest in-order run), and the gaps between
    anchors are diffed the same way. Small or anchorless regions go to difflib. Most of the work
    runs in C (slice comparisons, Counter), which keeps a large file with a few scattered edits
    cheap, where difflib alone rescans the whole file once per matching block.
    """
    prefix = _common_prefix_len(a[alo:ahi], b[blo:bhi])
    alo += prefix
    blo += prefix
    suffix = _common_suffix_len(a[alo:ahi], b[blo:bhi], min(ahi - alo, bhi - blo))
    ahi -= suffix
    bhi -= suffix
    if alo == ahi or blo == bhi:
        if alo != ahi or blo != bhi:
            out.append((alo, ahi, blo, bhi))
        return
    if (ahi - alo) * (bhi - blo) > _SMALL_REGION:
        sub_a, sub_b = a[alo:ahi], b[blo:bhi]
        count_a, count_b = Counter(sub_a), Counter(sub_b)
        unique = {line for line, n in count_a.items() if n == 1 and count_b.get(line) == 1}
        if unique:
            where_b = {line: j for j, line in enumerate(sub_b, blo) if line in unique}
            pairs = [(i, where_b[line]) for i, line in enumerate(sub_a, alo) if line in unique]
            i0, j0 = alo, blo
            for i, j in _increasing_subsequence(pairs):
                if i > i0 or j > j0:
                    _changed_regions(a, b, i0, i, j0, j, out)
                i0, j0 = i + 1, j + 1
            if i0 < ahi or j0 < bhi:
                _changed_regions(a, b, i0, ahi, j0, bhi, out)
            return
    # autojunk=False: with it, frequent lines (blank lines, closing braces) would be ignored as
    # anchors in regions over 200 lines, turning small edits into large replaced blocks.
    matcher = difflib.SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            out.append((alo + i1, alo + i2, blo + j1, blo + j2))


def _is_crlf_split(text: str, offset: int) -> bool:
    return 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n"


def text_edits(base: str, new: str) -> list[types.TextEdit]:
    """LSP edits that turn ``base`` into ``new``: small, sorted and non-overlapping.

    Lines are diffed with difflib, then each changed block is trimmed of its common character
    prefix and suffix. Ranges are in ``base`` coordinates (LSP lines, UTF-16 characters).
    """
    if base == new:
        return []
    index = _LineIndex(base)
    new_lines = _split_lines(new)
    new_starts = [0, *accumulate(map(len, new_lines))]
    starts = index.starts
    edits: list[types.TextEdit] = []
    regions: list[Region] = []
    _changed_regions(index.lines, new_lines, 0, len(index.lines), 0, len(new_lines), regions)
    for i1, i2, j1, j2 in regions:
        a_start, a_end = starts[i1], starts[i2]
        old = base[a_start:a_end]
        rep = new[new_starts[j1] : new_starts[j2]]
        prefix = _common_prefix_len(old, rep)
        if _is_crlf_split(base, a_start + prefix):
            prefix -= 1
        suffix = _common_suffix_len(old, rep, min(len(old), len(rep)) - prefix)
        if suffix and _is_crlf_split(base, a_end - suffix):
            suffix -= 1
        start, end = a_start + prefix, a_end - suffix
        edits.append(
            types.TextEdit(
                range=types.Range(start=index.position(start), end=index.position(end)),
                new_text=rep[prefix : len(rep) - suffix],
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

    ``versions`` maps a file URI to the version of the open document, or ``None``; edits to a
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
            ops.append(_text_document_edit(uri, versions.get(uri), edits))
    return types.WorkspaceEdit(document_changes=ops)


def workspace_edit_to_json(edit: types.WorkspaceEdit) -> dict[str, Any]:
    """The JSON (camelCase, as on the wire) form of ``edit``."""
    data = get_converter().unstructure(edit, unstructure_as=types.WorkspaceEdit)
    assert isinstance(data, dict)
    return data
