"""errand.frontends.lsp (positions, text_edits, workspace_edit): file changes <-> LSP
WorkspaceEdit."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types
from lsprotocol.converters import get_converter

from errand.frontends.lsp import text_edits as edits
from errand.frontends.lsp.positions import LineIndex
from errand.frontends.lsp.text_edits import apply_text_edits, text_edits
from errand.frontends.lsp.workspace_edit import (
    build_workspace_edit,
    path_to_uri,
    workspace_edit_to_json,
)
from errand.wire.changes import FileChange

ROOT = Path("/work space/répo")


def spans(base: str, new: str) -> list[tuple[int, int, int, int, str]]:
    """text_edits as plain tuples (start line, start char, end line, end char, new text)."""
    result = []
    for e in text_edits(base, new):
        r = e.range
        result.append((r.start.line, r.start.character, r.end.line, r.end.character, e.new_text))
    assert apply_text_edits(base, text_edits(base, new)) == new
    return result


def edit(sl: int, sc: int, el: int, ec: int, text: str) -> types.TextEdit:
    start = types.Position(line=sl, character=sc)
    return types.TextEdit(
        range=types.Range(start=start, end=types.Position(line=el, character=ec)), new_text=text
    )


# --------------------------------------------------------------------------------------------
# text_edits: hand-checked ranges


def test_equal_texts_need_no_edit() -> None:
    assert text_edits("a\nb\n", "a\nb\n") == []
    assert text_edits("", "") == []


def test_change_is_trimmed_to_the_characters_that_differ() -> None:
    assert spans("def f(x):\n    return x + 1\n", "def f(x):\n    return x + 2\n") == [
        (1, 15, 1, 16, "2")
    ]


def test_astral_character_before_the_change_counts_two_units() -> None:
    # "x = '" is 5 units, the emoji 2, "' + " 4: the change starts at character 11, not 10.
    assert spans("x = '😀' + a\n", "x = '😀' + b\n") == [(0, 11, 0, 12, "b")]
    # A BMP non-ASCII character counts one unit.
    assert spans("x = 'é' + a\n", "x = 'é' + b\n") == [(0, 10, 0, 11, "b")]
    # Astral characters on other lines do not shift the column.
    assert spans("😀😀\nab\n", "😀😀\naB\n") == [(1, 1, 1, 2, "B")]
    # Replacing an astral character spans both of its units.
    assert spans("a😀b", "a🎉b") == [(0, 1, 0, 3, "🎉")]


def test_crlf_lines() -> None:
    assert spans("a\r\nb\r\nc\r\n", "a\r\nB\r\nc\r\n") == [(1, 0, 1, 1, "B")]
    assert spans("a\r\nb\r\n", "a\r\nb\r\nc\r\n") == [(2, 0, 2, 0, "c\r\n")]
    assert spans("a\r\nb\r\nc\r\n", "a\r\nc\r\n") == [(1, 0, 2, 0, "")]


def test_range_never_splits_crlf() -> None:
    # CRLF -> LF: the "\r" alone differs, but a range may not end between "\r" and "\n".
    assert spans("a\r\nb\r\n", "a\nb\r\n") == [(0, 1, 1, 0, "\n")]
    # LF -> CRLF: inserting "\r" before "\n" is fine, the position is on the line.
    assert spans("a\nb\n", "a\r\nb\n") == [(0, 1, 0, 1, "\r")]
    # CRLF -> CR: again the edit covers the whole terminator.
    assert spans("a\r\nb", "a\rb") == [(0, 1, 1, 0, "\r")]


def test_lone_cr_is_a_line_break() -> None:
    assert spans("a\rb\rc", "a\rB\rc") == [(1, 0, 1, 1, "B")]
    # "\r" at the very end opens an empty last line; appending "\n" inserts there.
    assert spans("a\r", "a\r\n") == [(1, 0, 1, 0, "\n")]


def test_undecodable_bytes_count_one_unit() -> None:
    base = b"\xff = 1\n".decode("utf-8", "surrogateescape")
    new = b"\xff = 2\n".decode("utf-8", "surrogateescape")
    assert spans(base, new) == [(0, 4, 0, 5, "2")]


def test_other_unicode_separators_are_not_line_breaks() -> None:
    # str.splitlines() splits on these, LSP does not: the change is on line 1, not line 2.
    for sep in ("\u2028", "\u2029", "\x0c", "\x0b", "\x85", "\x1c"):
        assert spans(f"a{sep}b\nc\n", f"a{sep}b\nC\n") == [(1, 0, 1, 1, "C")]


def test_missing_final_newline() -> None:
    assert spans("a\nb", "a\nc") == [(1, 0, 1, 1, "c")]
    assert spans("a\nb", "a\nb\n") == [(1, 1, 1, 1, "\n")]
    assert spans("a\nb\n", "a\nb") == [(1, 1, 2, 0, "")]
    assert spans("a\nb", "a\nb\nc") == [(1, 1, 1, 1, "\nc")]


def test_empty_files() -> None:
    assert spans("", "x\n") == [(0, 0, 0, 0, "x\n")]
    assert spans("x\n", "") == [(0, 0, 1, 0, "")]
    assert spans("x", "") == [(0, 0, 0, 1, "")]


def test_separate_hunks_give_separate_sorted_edits() -> None:
    assert spans("a\nb\nc\n", "A\nb\nC\n") == [(0, 0, 0, 1, "A"), (2, 0, 2, 1, "C")]
    # A shared line in the middle of a hunk (a blank line) is kept out of the edits.
    assert spans("x\ny\n\nz\n", "x\nY\n\nZ\n") == [(1, 0, 1, 1, "Y"), (3, 0, 3, 1, "Z")]


def test_inserted_and_deleted_lines() -> None:
    assert spans("a\nc\n", "a\nb\nc\n") == [(1, 0, 1, 0, "b\n")]
    assert spans("a\nb\nc\n", "a\nc\n") == [(1, 0, 2, 0, "")]


def test_large_file_with_scattered_changes_gives_one_small_edit_per_change() -> None:
    rng = random.Random(7)
    lines = [f"line {i} {rng.random()}\n" if i % 7 else "\n" for i in range(3000)]
    new = list(lines)
    changed = [10, 500, 501, 1999, 2998]
    for i in changed:
        new[i] = f"changed {i}\n"
    new.insert(1500, "inserted\n")
    result = spans("".join(lines), "".join(new))
    assert [(s[0], s[2]) for s in result] == [
        (10, 10),
        (500, 501),
        (1500, 1500),
        (1999, 1999),
        (2998, 2998),
    ]
    assert result[2] == (1500, 0, 1500, 0, "inserted\n")


def test_block_inserted_before_a_copy_of_itself() -> None:
    body = "".join(f"    step({i})\n" for i in range(40))
    base = "def f():\n" + body + "def g():\n    pass\n"
    new = "def f():\n" + body + "def f2():\n" + body + "def g():\n    pass\n"
    result = spans(base, new)
    assert len(result) == 1
    assert result[0][4].count("\n") == 41  # the new function, inserted whole


# --------------------------------------------------------------------------------------------
# apply_text_edits


def test_apply_keeps_order_of_inserts_at_one_position() -> None:
    assert apply_text_edits("ab", [edit(0, 1, 0, 1, "1"), edit(0, 1, 0, 1, "2")]) == "a12b"
    # An insert at the start of a replaced range goes before the replacement.
    assert apply_text_edits("abc", [edit(0, 1, 0, 2, "X"), edit(0, 1, 0, 1, "i")]) == "aiXc"


def test_apply_accepts_edits_in_any_order() -> None:
    assert apply_text_edits("a\nb\n", [edit(1, 0, 1, 1, "B"), edit(0, 0, 0, 1, "A")]) == "A\nB\n"


def test_apply_positions_in_utf16_units() -> None:
    assert apply_text_edits("😀x", [edit(0, 2, 0, 3, "y")]) == "😀y"


@pytest.mark.parametrize(
    ("text", "bad", "message"),
    [
        ("abc", [edit(0, 0, 0, 2, "x"), edit(0, 1, 0, 3, "y")], "overlapping"),
        ("abc", [edit(0, 2, 0, 1, "x")], "ends before"),
        ("abc", [edit(1, 0, 1, 0, "x")], "line 1 out of range"),
        ("abc\n", [edit(2, 0, 2, 0, "x")], "line 2 out of range"),
        ("abc", [edit(0, 4, 0, 4, "x")], "out of range"),
        ("ab\r\n", [edit(0, 3, 0, 3, "x")], "out of range"),  # between "\r" and "\n"
        ("😀é", [edit(0, 5, 0, 5, "x")], "out of range"),
        ("😀", [edit(0, 1, 0, 1, "x")], "surrogate pair"),
    ],
)
def test_apply_rejects_bad_edits(text: str, bad: list[types.TextEdit], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        apply_text_edits(text, bad)


def test_apply_accepts_the_empty_last_line() -> None:
    assert apply_text_edits("abc\n", [edit(1, 0, 1, 0, "x")]) == "abc\nx"
    assert apply_text_edits("", [edit(0, 0, 0, 0, "x")]) == "x"


# --------------------------------------------------------------------------------------------
# text_edits: properties

TERMINATORS = ["\n", "\r\n", "\r", ""]
# Any Unicode (st.text() includes astral characters and stray "\r"/"\n"/"\u2028"), plus a few
# short lines that repeat, as blank lines and braces do in code.
# "\udcff" is how a byte that is not UTF-8 reads with errors="surrogateescape".
line_content = st.one_of(
    st.text(max_size=6), st.sampled_from(["", "}", "  x", "😀", "é", "\udcff"])
)
lines_st = st.lists(st.tuples(line_content, st.sampled_from(TERMINATORS)), max_size=25)


def join(lines: list[tuple[str, str]]) -> str:
    return "".join(content + end for content, end in lines)


@st.composite
def text_pairs(
    draw: st.DrawFn, lines_st: st.SearchStrategy[list[tuple[str, str]]] = lines_st
) -> tuple[str, str]:
    """A base text and a new text: either unrelated, or the base with random line edits."""
    base = draw(lines_st)
    if draw(st.booleans()):
        return join(base), join(draw(lines_st))
    new = list(base)
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(new)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "terminator", "move"]))
        if op == "insert":
            new[at:at] = draw(lines_st)
        elif op == "delete":
            del new[at : at + draw(st.integers(1, 4))]
        elif op == "replace" and at < len(new):
            new[at] = (draw(line_content), new[at][1])
        elif op == "terminator" and at < len(new):
            new[at] = (new[at][0], draw(st.sampled_from(TERMINATORS)))
        elif op == "move":
            block = new[at : at + draw(st.integers(1, 5))]
            del new[at : at + len(block)]
            to = draw(st.integers(0, len(new)))
            new[to:to] = block
    return join(base), join(new)


def assert_sorted_and_disjoint(result: list[types.TextEdit]) -> None:
    previous_end = (0, 0)
    for e in result:
        start = (e.range.start.line, e.range.start.character)
        end = (e.range.end.line, e.range.end.character)
        assert previous_end <= start <= end
        previous_end = end


@contextmanager
def tuning(**values: int) -> Iterator[None]:
    """Shrink the diff's sizes so that small inputs take every path."""
    saved = {name: getattr(edits, name) for name in values}
    for name, value in values.items():
        setattr(edits, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(edits, name, value)


TUNINGS = {
    "defaults": {},
    "tiny": {"_WINDOW": 1, "_GALLOP": 1, "_LINE_SCAN": 1},
    "small-no-refine": {"_WINDOW": 8, "_GALLOP": 2, "_LINE_SCAN": 5, "_REFINE_LIMIT": 0},
}


@pytest.mark.parametrize("tune", TUNINGS.values(), ids=TUNINGS.keys())
@settings(max_examples=400, deadline=None)
@given(pair=text_pairs())
def test_edits_round_trip(tune: dict[str, int], pair: tuple[str, str]) -> None:
    base, new = pair
    with tuning(**tune):
        result = text_edits(base, new)
    assert apply_text_edits(base, result) == new
    assert_sorted_and_disjoint(result)
    assert all(e.range.start != e.range.end or e.new_text for e in result)  # no empty edits


@settings(max_examples=300, deadline=None)
@given(pair=text_pairs())
def test_edits_are_trimmed_to_what_differs(pair: tuple[str, str]) -> None:
    """No edit starts or ends with text it leaves unchanged, except the "\r" or "\n" of a
    "\r\n" that a range may not split."""
    base, new = pair
    index = LineIndex(base)
    for e in text_edits(base, new):
        start, end = index.offset(e.range.start), index.offset(e.range.end)
        old, rep = base[start:end], e.new_text
        if old and rep and old[0] == rep[0]:
            assert base[start : start + 2] == "\r\n"
        if old and rep and old[-1] == rep[-1]:
            assert base[end - 2 : end] == "\r\n"


# --------------------------------------------------------------------------------------------
# build_workspace_edit


def uri(rel: str) -> str:
    return path_to_uri(ROOT, rel)


def test_path_to_uri_uses_path_as_uri() -> None:
    assert uri("dir/ä b.py") == (ROOT / "dir" / "ä b.py").as_uri()
    assert uri("a.py").startswith("file:///work%20space/r%C3%A9po/")
    for bad in ("", "/etc/passwd", "../outside", "a/../../b", "a\\b"):
        with pytest.raises(ValueError):
            path_to_uri(ROOT, bad)


def test_modified_file_carries_the_open_document_version() -> None:
    changes = [
        FileChange("open.py", "modified", base_text="a\n", new_text="b\n"),
        FileChange("closed.py", "modified", base_text="a\n", new_text="c\n"),
    ]
    result = build_workspace_edit(ROOT, changes, {"open.py": 7})
    assert result.document_changes is not None
    ops = list(result.document_changes)
    assert [type(op) for op in ops] == [types.TextDocumentEdit, types.TextDocumentEdit]
    by_uri = {op.text_document.uri: op for op in ops if isinstance(op, types.TextDocumentEdit)}
    assert by_uri[uri("open.py")].text_document.version == 7
    assert by_uri[uri("closed.py")].text_document.version is None
    assert list(by_uri[uri("open.py")].edits) == [edit(0, 0, 0, 1, "b")]


def test_unchanged_content_gives_no_edit() -> None:
    result = build_workspace_edit(ROOT, [FileChange("m.sh", "modified", None, "x", "x")])
    assert result.document_changes == []


def test_operation_kinds() -> None:
    changes = [
        FileChange("new.py", "added", new_text="print(1)\n"),
        FileChange("empty.py", "added", new_text=""),
        FileChange("gone.py", "deleted", base_text="x\n"),
        FileChange("moved.py", "renamed", old_path="orig.py", base_text="a\n", new_text="a\n"),
        FileChange("edited.py", "renamed", old_path="src.py", base_text="a\n", new_text="b\n"),
    ]
    versions = {"src.py": 3, "edited.py": 4}
    ops = list(build_workspace_edit(ROOT, changes, versions).document_changes or [])
    assert ops == [
        types.DeleteFile(
            uri=uri("gone.py"),
            options=types.DeleteFileOptions(recursive=False, ignore_if_not_exists=False),
        ),
        types.RenameFile(
            old_uri=uri("src.py"),
            new_uri=uri("edited.py"),
            options=types.RenameFileOptions(overwrite=False, ignore_if_exists=False),
        ),
        types.TextDocumentEdit(
            text_document=types.OptionalVersionedTextDocumentIdentifier(
                uri=uri("edited.py"), version=None
            ),
            edits=[edit(0, 0, 0, 1, "b")],
        ),
        types.RenameFile(
            old_uri=uri("orig.py"),
            new_uri=uri("moved.py"),
            options=types.RenameFileOptions(overwrite=False, ignore_if_exists=False),
        ),
        types.CreateFile(
            uri=uri("empty.py"),
            options=types.CreateFileOptions(overwrite=False, ignore_if_exists=False),
        ),
        types.CreateFile(
            uri=uri("new.py"),
            options=types.CreateFileOptions(overwrite=False, ignore_if_exists=False),
        ),
        types.TextDocumentEdit(
            text_document=types.OptionalVersionedTextDocumentIdentifier(
                uri=uri("new.py"), version=None
            ),
            edits=[edit(0, 0, 0, 0, "print(1)\n")],
        ),
    ]


def test_order_does_not_depend_on_input_order() -> None:
    changes = [
        FileChange(f"f{i}.py", kind, None, None if kind == "added" else "a\n", new)
        for i, (kind, new) in enumerate(
            [("added", "x\n"), ("deleted", None), ("modified", "b\n")] * 4
        )
    ]
    expected = build_workspace_edit(ROOT, changes)
    shuffled = list(changes)
    random.Random(3).shuffle(shuffled)
    assert build_workspace_edit(ROOT, shuffled) == expected


def test_rename_chain_frees_each_destination_first() -> None:
    changes = [
        FileChange("b", "renamed", old_path="a", base_text="A", new_text="A"),
        FileChange("c", "renamed", old_path="b", base_text="B", new_text="B"),
    ]
    ops = list(build_workspace_edit(ROOT, changes).document_changes or [])
    assert [(op.old_uri, op.new_uri) for op in ops if isinstance(op, types.RenameFile)] == [
        (uri("b"), uri("c")),
        (uri("a"), uri("b")),
    ]


def test_new_file_where_a_renamed_one_was() -> None:
    changes = [
        FileChange("a", "added", new_text="new a\n"),
        FileChange("b", "renamed", old_path="a", base_text="old a\n", new_text="old a!\n"),
    ]
    ops = list(build_workspace_edit(ROOT, changes).document_changes or [])
    files = apply_workspace_edit({uri("a"): "old a\n"}, ops)
    assert files == {uri("a"): "new a\n", uri("b"): "old a!\n"}


def test_rename_cycle_becomes_edits_in_place() -> None:
    changes = [
        FileChange("b", "renamed", old_path="a", base_text="alpha\n", new_text="alpha\n"),
        FileChange("a", "renamed", old_path="b", base_text="beta\n", new_text="beta!\n"),
    ]
    ops = list(build_workspace_edit(ROOT, changes, {"a": 2}).document_changes or [])
    assert all(isinstance(op, types.TextDocumentEdit) for op in ops)
    files = apply_workspace_edit({uri("a"): "alpha\n", uri("b"): "beta\n"}, ops)
    assert files == {uri("a"): "beta!\n", uri("b"): "alpha\n"}
    assert ops[0].text_document == types.OptionalVersionedTextDocumentIdentifier(
        uri=uri("a"), version=2
    )


@pytest.mark.parametrize(
    "bad",
    [
        [FileChange("a", "modified", None, "x", "y"), FileChange("a", "deleted", None, "x")],
        [FileChange("a", "renamed", None, "x", "x")],
        [FileChange("a", "renamed", "a", "x", "x")],
        [FileChange("a", "modified", "b", "x", "y")],
        [FileChange("a", "added", None, None, None)],
        [FileChange("a", "deleted", None, None, None)],
        [FileChange("a", "modified", None, None, "y")],
        [
            FileChange("b", "renamed", "a", "x", "x"),
            FileChange("c", "renamed", "a", "x", "x"),
        ],
        [FileChange("../a", "added", None, None, "y")],
    ],
)
def test_invalid_changes_are_rejected(bad: list[FileChange]) -> None:
    with pytest.raises(ValueError):
        build_workspace_edit(ROOT, bad)


def test_json_form() -> None:
    changes = [
        FileChange("n.py", "added", new_text="x\n"),
        FileChange("m.py", "modified", base_text="😀a\n", new_text="😀b\n"),
    ]
    result = build_workspace_edit(ROOT, changes, {"m.py": 5})
    data = workspace_edit_to_json(result)
    assert data == {
        "documentChanges": [
            {
                "kind": "create",
                "uri": uri("n.py"),
                "options": {"overwrite": False, "ignoreIfExists": False},
            },
            {
                "textDocument": {"uri": uri("n.py"), "version": None},
                "edits": [
                    {
                        "range": {
                            "start": {"line": 0, "character": 0},
                            "end": {"line": 0, "character": 0},
                        },
                        "newText": "x\n",
                    }
                ],
            },
            {
                "textDocument": {"uri": uri("m.py"), "version": 5},
                "edits": [
                    {
                        "range": {
                            "start": {"line": 0, "character": 2},
                            "end": {"line": 0, "character": 3},
                        },
                        "newText": "b",
                    }
                ],
            },
        ]
    }
    back = get_converter().structure(data, types.WorkspaceEdit)
    assert workspace_edit_to_json(back) == data


# --------------------------------------------------------------------------------------------
# build_workspace_edit: property


def apply_workspace_edit(
    files: dict[str, str],
    ops: list[types.TextDocumentEdit | types.CreateFile | types.RenameFile | types.DeleteFile],
) -> dict[str, str]:
    """Apply document changes to ``{uri: text}`` in order, strictly, as a client would."""
    files = dict(files)
    for op in ops:
        if isinstance(op, types.CreateFile):
            assert op.uri not in files, f"create over existing {op.uri}"
            files[op.uri] = ""
        elif isinstance(op, types.DeleteFile):
            assert op.uri in files, f"delete of missing {op.uri}"
            del files[op.uri]
        elif isinstance(op, types.RenameFile):
            assert op.old_uri in files, f"rename of missing {op.old_uri}"
            assert op.new_uri not in files, f"rename over existing {op.new_uri}"
            files[op.new_uri] = files.pop(op.old_uri)
        else:
            doc = op.text_document.uri
            assert doc in files, f"edit of missing {doc}"
            files[doc] = apply_text_edits(files[doc], op.edits)  # type: ignore[arg-type]
    return files


PATHS = ["a.py", "b.py", "pkg/c.py", "pkg/d.txt", "ü/e 1.md", "f"]


@st.composite
def workspaces(draw: st.DrawFn) -> tuple[dict[str, str], dict[str, str], list[FileChange]]:
    """Base files, new files and the changes between them (with renames, chains and cycles)."""
    texts = text_pairs(st.lists(st.tuples(line_content, st.sampled_from(TERMINATORS)), max_size=5))
    base: dict[str, str] = {}
    new: dict[str, str] = {}
    changes: list[FileChange] = []
    paths = draw(st.permutations(PATHS))
    # Renames along a random permutation cycle or chain of some paths.
    n_moved = draw(st.integers(0, 3))
    moved = paths[:n_moved]
    cyclic = n_moved >= 2 and draw(st.booleans())
    targets = moved[1:] + moved[:1] if cyclic else paths[1 : n_moved + 1]
    for src, dst in zip(moved, targets, strict=True):
        old_text, new_text = draw(texts)
        if draw(st.booleans()):
            new_text = old_text
        base[src] = old_text
        new[dst] = new_text
        changes.append(FileChange(dst, "renamed", src, old_text, new_text))
    for path in paths[n_moved:]:
        if path in new or path in base:
            continue
        old_text, new_text = draw(texts)
        kind = draw(st.sampled_from(["added", "deleted", "modified", "same", "absent"]))
        if kind in ("deleted", "modified", "same"):
            base[path] = old_text
        if kind in ("added", "modified"):
            new[path] = new_text
        if kind == "same":
            new[path] = old_text
        elif kind != "absent":
            changes.append(
                FileChange(
                    path,
                    kind,  # type: ignore[arg-type]
                    None,
                    old_text if kind != "added" else None,
                    new_text if kind != "deleted" else None,
                )
            )
    return base, new, changes


@settings(max_examples=100, deadline=None)
@given(ws=workspaces(), version=st.integers(0, 50))
def test_workspace_edit_turns_base_files_into_new_files(
    ws: tuple[dict[str, str], dict[str, str], list[FileChange]], version: int
) -> None:
    base, new, changes = ws
    versions = {path: version for path in base}
    result = build_workspace_edit(ROOT, changes, versions)
    ops = list(result.document_changes or [])
    as_uris = {uri(path): text for path, text in base.items()}
    assert apply_workspace_edit(as_uris, ops) == {uri(p): text for p, text in new.items()}
    modified = {c.path for c in changes if c.change == "modified"}
    for op in ops:
        if isinstance(op, types.TextDocumentEdit) and op.text_document.uri in map(uri, modified):
            assert op.text_document.version == version
    # The JSON form round-trips through lsprotocol's converter.
    data = workspace_edit_to_json(result)
    assert workspace_edit_to_json(get_converter().structure(data, types.WorkspaceEdit)) == data
