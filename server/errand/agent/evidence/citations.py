"""Find the citations in a report and check each against what the attempt produced.

Two forms (Codex cloud's), both with 1-based, inclusive line numbers:

* ``【F:path†L10-L20】`` or ``【F:path†L10】``: lines of a file, the path relative to
  the repository root, checked against the attempt's final files (its task copy);
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
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from errand.wire.protocol import Citation

_PATTERN = re.compile(
    r"[【\[]"
    r"(?:F:(?P<path>[^†#【】\[\]\n]+?)|(?P<chunk>[\w.:-]+))"
    r"\s*[†#]\s*L(?P<start>\d+)(?:\s*-\s*L?(?P<end>\d+))?"
    r"\s*[】\]]"
)


def resolve_citations(
    report: str, *, copy_root: Path, repo_root: Path, chunks: Mapping[str, str]
) -> list[Citation]:
    """Every citation in ``report``, resolved.

    File citations resolve against ``copy_root``; their ``uri`` points at the same
    path in ``repo_root``, the user's repository, where the change will land.
    Chunk citations resolve against ``chunks`` (chunk id -> recorded output).
    """
    root = copy_root.resolve()
    seen: set[str] = set()
    found: list[Citation] = []
    for match in _PATTERN.finditer(report):
        text = match.group(0)
        if text in seen:
            continue
        seen.add(text)
        start = int(match.group("start"))
        end = int(match.group("end") or start)
        path = match.group("path")
        if path is not None:
            found.append(_file_citation(text, path, start, end, root, repo_root))
        else:
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
    text: str, raw_path: str, start: int, end: int, root: Path, repo_root: Path
) -> Citation:
    rel = _normalise(raw_path)
    resolved = False
    uri: str | None = None
    if rel is not None:
        target = root.joinpath(*PurePosixPath(rel).parts)
        if _inside(target, root) and target.is_file():
            try:
                count = _line_count(target.read_bytes())
            except OSError:
                count = 0
            resolved = _in_range(start, end, count)
        if resolved:
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


def _inside(path: Path, root: Path) -> bool:
    """True when ``path`` (symlinks followed) stays within ``root`` (already resolved)."""
    try:
        real = path.resolve()
    except (OSError, RuntimeError):
        return False
    return real == root or root in real.parents


def _line_count(data: str | bytes) -> int:
    text = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    if not text:
        return 0
    return text.count(b"\n") + (0 if text.endswith(b"\n") else 1)


def _in_range(start: int, end: int, count: int) -> bool:
    return 1 <= start <= end <= count
