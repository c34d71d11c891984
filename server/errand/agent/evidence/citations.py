"""Find the citations in a report and check each against what the attempt produced.

Two forms (Codex cloud's), both with 1-based, inclusive line numbers:

* ``【F:path†L10-L20】`` or ``【F:path†L10】``: lines of a file, the path relative to
  the repository root, checked against the attempt's final files (its task copy,
  read through the attempt's host: see :func:`cited_paths`);
* ``【c1-3†L3-L5】``: lines of a recorded command output, by chunk id.

Also accepted, because models sometimes degrade the markup: ASCII brackets
(``[F:src/a.py†L3]``), ``#`` instead of ``†`` (``[F:src/a.py#L3-L5]``), and an end
line without its ``L`` (``†L3-5``). A citation resolves when its file or chunk
exists and its lines are within it. Each distinct citation text is returned once,
in order of first appearance.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath

from errand.wire.protocol import Citation

_PATTERN = re.compile(
    r"[【\[]"
    r"(?:F:(?P<path>[^†#【】\[\]\n]+?)|(?P<chunk>[\w.:-]+))"
    r"\s*[†#]\s*L(?P<start>\d+)(?:\s*-\s*L?(?P<end>\d+))?"
    r"\s*[】\]]"
)


def _matches(report: str) -> Iterator[re.Match[str]]:
    """Each distinct citation, in order of first appearance."""
    seen: set[str] = set()
    for match in _PATTERN.finditer(report):
        if match.group(0) not in seen:
            seen.add(match.group(0))
            yield match


def cited_paths(report: str) -> list[str]:
    """The files ``report`` cites, as clean relative paths (to read before resolving)."""
    paths: list[str] = []
    for match in _matches(report):
        rel = _normalise(match.group("path")) if match.group("path") else None
        if rel is not None and rel not in paths:
            paths.append(rel)
    return paths


def resolve_citations(
    report: str,
    *,
    files: Mapping[str, bytes | None],
    repo_root: Path,
    chunks: Mapping[str, str],
) -> list[Citation]:
    """Every citation in ``report``, resolved.

    File citations resolve against ``files`` (the final contents of
    :func:`cited_paths`; None for a path that is not a file of the copy); their ``uri``
    points at the same path in ``repo_root``, the user's repository, where the change
    will land. Chunk citations resolve against ``chunks`` (chunk id -> recorded output).
    """
    found: list[Citation] = []
    for match in _matches(report):
        text = match.group(0)
        start = int(match.group("start"))
        end = int(match.group("end") or start)
        path = match.group("path")
        if path is not None:
            found.append(_file_citation(text, path, start, end, files, repo_root))
            continue
        chunk_id = match.group("chunk")
        output = chunks.get(chunk_id)
        resolved = output is not None and _in_range(start, end, _line_count(output))
        found.append(
            Citation(
                text=text,
                kind="chunk",
                resolved=resolved,
                start_line=start,
                end_line=end,
                chunk_id=chunk_id,
            )
        )
    return found


def _file_citation(
    text: str,
    raw_path: str,
    start: int,
    end: int,
    files: Mapping[str, bytes | None],
    repo_root: Path,
) -> Citation:
    rel = _normalise(raw_path)
    content = files.get(rel) if rel is not None else None
    resolved = content is not None and _in_range(start, end, _line_count(content))
    uri = None
    if resolved and rel is not None:
        uri = repo_root.absolute().joinpath(*PurePosixPath(rel).parts).as_uri()
    return Citation(
        text=text,
        kind="file",
        resolved=resolved,
        start_line=start,
        end_line=end,
        path=rel if rel is not None else raw_path.strip(),
        uri=uri,
    )


def _normalise(raw: str) -> str | None:
    """A clean relative POSIX path, or None for one that is absolute or leaves the root."""
    path = raw.strip().replace("\\", "/")
    if not path or path.startswith("/") or re.match(r"^[A-Za-z]:/", path):
        return None
    clean = os.path.normpath(path).replace(os.sep, "/")
    first = clean.split("/", 1)[0]
    if clean == "." or first == ".." or first == ".git":
        return None
    return clean


def _line_count(data: str | bytes) -> int:
    text = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    if not text:
        return 0
    return text.count(b"\n") + (0 if text.endswith(b"\n") else 1)


def _in_range(start: int, end: int, count: int) -> bool:
    return 1 <= start <= end <= count
