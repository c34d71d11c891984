"""Benchmark: task file changes -> LSP WorkspaceEdit.

Generates 500 source-like files (sizes 50 to 1,500 lines; one in ten with CRLF line ends, another
one in ten with non-ASCII and astral characters on a tenth of its lines) with 10,000 changed
lines in total, spread over
each file as line edits, insertions and deletions in small hunks, and times
``build_workspace_edit`` (which diffs every file). Prints the median of several runs next to
the target and exits 0.

Run: .venv/bin/python bench/bench_edits.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lsprotocol import types

from errand.frontends.lsp.text_edits import apply_text_edits
from errand.frontends.lsp.workspace_edit import (
    build_workspace_edit,
    path_to_uri,
    workspace_edit_to_json,
)
from errand.wire.changes import FileChange

FILES = 500
CHANGED_LINES = 10_000
TARGET_MS = 200.0

_WORDS = ("self", "value", "result", "items", "index", "count", "name", "path", "data")


def _line(rng: random.Random, unicode: bool) -> str:
    roll = rng.random()
    if roll < 0.12:
        return ""
    if roll < 0.18:
        return "    }"
    indent = "    " * rng.randint(0, 3)
    words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 9)))
    if unicode and roll > 0.9:  # non-ASCII text, astral characters included
        words += " # café 😀"
    return f"{indent}{words} = {rng.randint(0, 9999)}"


def _make_file(
    rng: random.Random, n_lines: int, n_changes: int, newline: str, unicode: bool
) -> tuple[str, str]:
    base = [_line(rng, unicode) for _ in range(n_lines)]
    new = list(base)
    changed = 0
    while changed < n_changes:
        size = min(rng.randint(1, 4), n_changes - changed)
        at = rng.randrange(len(new))
        kind = rng.random()
        if kind < 0.6:  # modify lines in place
            for k in range(at, min(at + size, len(new))):
                new[k] = new[k] + " + 1" if rng.random() < 0.5 else _line(rng, unicode)
        elif kind < 0.85:  # insert lines
            new[at:at] = [_line(rng, unicode) for _ in range(size)]
        else:  # delete lines
            del new[at : at + size]
        changed += size
    return newline.join(base) + newline, newline.join(new) + newline


def make_changes(seed: int = 1) -> list[FileChange]:
    rng = random.Random(seed)
    per_file = CHANGED_LINES // FILES
    changes = []
    for i in range(FILES):
        newline = "\r\n" if i % 10 == 0 else "\n"
        unicode = i % 10 == 5
        base, new = _make_file(rng, rng.randint(50, 1500), per_file, newline, unicode)
        changes.append(FileChange(f"pkg{i % 20}/mod_{i}.py", "modified", None, base, new))
    return changes


def _time(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median wall-clock and median CPU milliseconds of ``runs`` calls."""
    wall, cpu = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    root = Path("/tmp/errand-bench-root")
    changes = make_changes()
    total_lines = sum(c.base_text.count("\n") for c in changes if c.base_text)
    total_chars = sum(len(c.base_text or "") + len(c.new_text or "") for c in changes)

    edit = build_workspace_edit(root, changes)
    # Sanity: the edit really reproduces every new file.
    by_uri = {path_to_uri(root, ch.path): ch for ch in changes}
    n_edits = 0
    for op in edit.document_changes or []:
        assert isinstance(op, types.TextDocumentEdit)
        ch = by_uri.pop(op.text_document.uri)
        assert ch.base_text is not None
        assert apply_text_edits(ch.base_text, op.edits) == ch.new_text  # type: ignore[arg-type]
        n_edits += len(op.edits)
    assert not by_uri

    build_wall, build_cpu = _time(lambda: build_workspace_edit(root, changes), args.runs)
    json_wall, json_cpu = _time(lambda: workspace_edit_to_json(edit), args.runs)

    load = os.getloadavg()[0]
    print(
        f"input: {FILES} files, {total_lines:,} lines ({total_chars / 1e6:.1f} MB), "
        f"{CHANGED_LINES:,} changed lines -> {n_edits:,} TextEdits"
    )
    print(f"median of {args.runs} runs; load average {load:.2f} on {os.cpu_count()} CPUs")
    print(f"{'step':<40}{'wall ms':>9}{'cpu ms':>9}{'target ms':>11}")
    verdict = "ok" if build_wall <= TARGET_MS else "OVER"
    print(
        f"{'build_workspace_edit':<40}{build_wall:>9.1f}{build_cpu:>9.1f}{TARGET_MS:>11.0f}"
        f"  {verdict}"
    )
    print(
        f"{'workspace_edit_to_json (for reference)':<40}{json_wall:>9.1f}{json_cpu:>9.1f}{'-':>11}"
    )
    if verdict != "ok" and load > 1:
        print("note: the machine is busy; the cpu column is less affected by other processes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
