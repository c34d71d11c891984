"""Citations parsed from reports and resolved against real files and recorded output."""

from __future__ import annotations

from pathlib import Path

import pytest

from errand.agent.evidence.citations import cited_paths, resolve_citations
from errand.hosts.local import read_inside
from errand.wire.protocol import Citation


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    copy = tmp_path / "copy"
    (copy / "src").mkdir(parents=True)
    (copy / "src" / "math.py").write_text("def add(a, b):\n    return a + b\n\n\nX = 1\n")
    (copy / "src" / "no_newline.txt").write_text("one\ntwo")
    (copy / "docs dir").mkdir()
    (copy / "docs dir" / "read me.md").write_text("a\nb\nc\n")
    (copy / "empty.txt").write_text("")
    (copy / ".git").mkdir()
    (copy / ".git" / "config").write_text("[core]\n")
    (tmp_path / "outside.txt").write_text("1\n2\n3\n")
    (copy / "link.txt").symlink_to(tmp_path / "outside.txt")
    user = tmp_path / "user repo"
    user.mkdir()
    return copy, user


CHUNKS = {"c1-1": "collected 3 items\n\n3 passed in 0.01s\n", "c1-2": ""}


def _resolve(report: str, roots: tuple[Path, Path]) -> list[Citation]:
    """Resolved the way the engine does: the cited files read through the local host's
    confined reader, then judged."""
    copy, user = roots
    files = {path: read_inside(copy, path) for path in cited_paths(report)}
    return resolve_citations(report, files=files, repo_root=user, chunks=CHUNKS)


def test_file_and_chunk_citations_resolve(roots: tuple[Path, Path]) -> None:
    copy, user = roots
    report = (
        "Fixed `add` 【F:src/math.py†L1-L2】 and the constant 【F:src/math.py†L5】.\n"
        "Testing: `pytest` 【c1-1†L3】 and the summary 【c1-1†L1-L3】."
    )
    file_range, file_line, chunk_line, chunk_range = _resolve(report, roots)
    assert file_range == Citation(
        text="【F:src/math.py†L1-L2】",
        kind="file",
        resolved=True,
        start_line=1,
        end_line=2,
        path="src/math.py",
        uri=(user / "src" / "math.py").as_uri(),
    )
    assert file_range.uri is not None and file_range.uri.startswith("file:///")
    assert "user%20repo" in file_range.uri  # the user's repository, not the copy
    assert str(copy) not in file_range.uri
    assert (file_line.resolved, file_line.start_line, file_line.end_line) == (True, 5, 5)
    assert chunk_line == Citation(
        text="【c1-1†L3】", kind="chunk", resolved=True, start_line=3, end_line=3, chunk_id="c1-1"
    )
    assert (chunk_range.resolved, chunk_range.start_line, chunk_range.end_line) == (True, 1, 3)


def test_unresolved_citations_keep_what_was_cited(roots: tuple[Path, Path]) -> None:
    report = " ".join(
        [
            "【F:src/math.py†L5-L6】",  # past the end of the file
            "【F:src/missing.py†L1】",  # no such file
            "【F:src/math.py†L3-L2】",  # backwards range
            "【F:src/math.py†L0】",  # lines are 1-based
            "【c1-9†L1】",  # no such chunk
            "【c1-1†L2-L4】",  # past the end of the output
            "【c1-2†L1】",  # empty output has no lines
            "【F:src†L1】",  # a folder, not a file
            "【F:empty.txt†L1】",  # an empty file has no lines
        ]
    )
    citations = _resolve(report, roots)
    assert len(citations) == 9
    assert not any(c.resolved for c in citations)
    assert all(c.uri is None for c in citations)
    assert citations[1].path == "src/missing.py"
    assert (citations[2].start_line, citations[2].end_line) == (3, 2)
    assert citations[4].chunk_id == "c1-9"


def test_paths_that_escape_the_copy_do_not_resolve(roots: tuple[Path, Path]) -> None:
    report = (
        "【F:../outside.txt†L1】 【F:/etc/passwd†L1】 【F:link.txt†L1】 "
        "【F:.git/config†L1】 【F:src/../../outside.txt†L1】"
    )
    citations = _resolve(report, roots)
    assert [c.resolved for c in citations] == [False] * 5
    assert citations[2].path == "link.txt"


def test_paths_are_normalised_and_may_hold_spaces(roots: tuple[Path, Path]) -> None:
    _copy, user = roots
    report = "【F:./src//math.py†L2】 【F:docs dir/read me.md†L1-L3】 【F:src/no_newline.txt†L2】"
    first, spaced, last_line = _resolve(report, roots)
    assert (first.path, first.resolved) == ("src/math.py", True)
    assert spaced.resolved
    assert spaced.uri == (user / "docs dir" / "read me.md").as_uri()
    assert last_line.resolved  # a last line without a newline still counts


def test_degraded_markup_is_tolerated(roots: tuple[Path, Path]) -> None:
    report = "See [F:src/math.py†L1-L2], [F:src/math.py#L2], 【c1-1†L1-3】 and [c1-1#L2]."
    citations = _resolve(report, roots)
    assert [(c.kind, c.resolved, c.start_line, c.end_line) for c in citations] == [
        ("file", True, 1, 2),
        ("file", True, 2, 2),
        ("chunk", True, 1, 3),
        ("chunk", True, 2, 2),
    ]


def test_repeats_are_listed_once_and_plain_text_is_ignored(roots: tuple[Path, Path]) -> None:
    report = (
        "【F:src/math.py†L1】 twice 【F:src/math.py†L1】. "
        "Not citations: [link](src/math.py#L1), 【note】, [1], L10-L20, F:src/math.py."
    )
    citations = _resolve(report, roots)
    assert [c.text for c in citations] == ["【F:src/math.py†L1】"]
    assert _resolve("No citations here.", roots) == []
