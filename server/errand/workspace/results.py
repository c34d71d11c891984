"""What an attempt changed: its copy recorded as a tree in the mirror, the diff against
the snapshot, and the files' old and new contents.

errand never runs git with a copy's own ``.git``: the result is computed through the
mirror with errand's private index, so nothing the agent writes into the copy's git
configuration can run on the host. Every function here is blocking.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from errand.wire.changes import FileChange
from errand.wire.protocol import DiffStat, FileStat
from errand.workspace import git
from errand.workspace.copies.base import TaskCopy, mirror_env
from errand.workspace.snapshot import Snapshot

RESULT_REF_PREFIX = "refs/errand/results/"


@dataclass(frozen=True, slots=True)
class DiffResult:
    tree: str
    diff: str
    files: list[FileStat]
    stat: DiffStat


def record_result(snapshot: Snapshot, copy: TaskCopy) -> DiffResult:
    """Write the copy's current state as a tree in the mirror and diff it."""
    env = mirror_env(snapshot.mirror, copy.path, copy.index)
    git.run(["add", "--all", "--", "."], cwd=copy.path, env=env)
    tree = git.run(["write-tree"], cwd=copy.path, env=env)
    commit = git.run(
        ["commit-tree", tree, "-p", snapshot.commit, "-m", "errand result"],
        env={"GIT_DIR": str(snapshot.mirror), **git.ISOLATED},
    )
    git.run(
        ["update-ref", RESULT_REF_PREFIX + commit, commit],
        env={"GIT_DIR": str(snapshot.mirror), **git.ISOLATED},
    )
    return diff_trees(snapshot.mirror, snapshot.tree, tree)


def diff_trees(mirror: Path, base: str, tree: str) -> DiffResult:
    env = {"GIT_DIR": str(mirror), **git.ISOLATED}
    common = ["--no-color", "--no-ext-diff", "--no-textconv", "-M", base, tree]
    diff = git.run(["diff", "--src-prefix=a/", "--dst-prefix=b/", *common], env=env, strip=False)
    numstat = git.run_bytes(["diff", "--numstat", "-z", *common], env=env)
    status = git.run_bytes(["diff", "--name-status", "-z", *common], env=env)
    files = parse_changes(numstat, status)
    stat = DiffStat(
        files=len(files),
        added=sum(f.added for f in files),
        removed=sum(f.removed for f in files),
    )
    return DiffResult(tree, diff, files, stat)


def parse_changes(numstat: bytes, name_status: bytes) -> list[FileStat]:
    """Combine ``git diff --numstat -z`` and ``--name-status -z`` output."""
    kinds: dict[str, tuple[str, str | None]] = {}
    fields = name_status.decode("utf-8", "surrogateescape").split("\0")
    i = 0
    while i < len(fields) and fields[i]:
        code = fields[i]
        if code[0] in "RC":
            old, new = fields[i + 1], fields[i + 2]
            kinds[new] = ("renamed" if code[0] == "R" else "added", old)
            i += 3
        else:
            kinds[fields[i + 1]] = (
                {"A": "added", "D": "deleted"}.get(code[0], "modified"),
                None,
            )
            i += 2
    files: list[FileStat] = []
    parts = numstat.decode("utf-8", "surrogateescape").split("\0")
    i = 0
    while i < len(parts) and parts[i]:
        head = parts[i].split("\t")
        added, removed = head[0], head[1]
        if head[2]:
            path = head[2]
            i += 1
        else:  # a rename: the old and new paths follow as their own fields
            path = parts[i + 2]
            i += 3
        change, old_path = kinds.get(path, ("modified", None))
        binary = added == "-"
        files.append(
            FileStat(
                path=path,
                change=change,  # type: ignore[arg-type]
                added=0 if binary else int(added),
                removed=0 if binary else int(removed),
                old_path=old_path,
                binary=binary,
            )
        )
    return files


def read_blob(mirror: Path, tree: str, path: str) -> bytes | None:
    """The bytes of ``path`` in ``tree``, or None when the tree has no such file."""
    try:
        return git.run_bytes(
            ["cat-file", "blob", f"{tree}:{path}"], env={"GIT_DIR": str(mirror), **git.ISOLATED}
        )
    except git.GitError:
        return None


def read_blobs(mirror: Path, specs: list[tuple[str, str]]) -> list[bytes | None]:
    """Read many ``(tree, path)`` blobs with one ``git cat-file --batch`` process."""
    return read_objects(mirror, [f"{tree}:{path}" for tree, path in specs])


def read_objects(mirror: Path, names: list[str]) -> list[bytes | None]:
    """Read many blobs named by object id or ``tree:path`` with one ``git cat-file
    --batch`` process; None for a name that is missing or not a blob."""
    if not names:
        return []
    request = "".join(f"{name}\n" for name in names).encode("utf-8", "surrogateescape")
    out = git.run_bytes(
        ["cat-file", "--batch"],
        env={"GIT_DIR": str(mirror), **git.ISOLATED},
        input_bytes=request,
    )
    results: list[bytes | None] = []
    pos = 0
    for _ in names:
        end = out.index(b"\n", pos)
        header = out[pos:end].split(b" ")
        pos = end + 1
        if header[-1] == b"missing" or len(header) != 3:
            results.append(None)
            continue
        size = int(header[2])
        results.append(out[pos : pos + size] if header[1] == b"blob" else None)
        pos += size + 1
    return results


def load_changes(mirror: Path, base: str, tree: str, files: list[FileStat]) -> list[FileChange]:
    """The old and new text of every changed text file between trees ``base`` and
    ``tree``, with one ``git cat-file --batch``."""
    text_files = [f for f in files if not f.binary]
    specs: list[tuple[str, str]] = []
    for f in text_files:
        specs.append((base, f.old_path or f.path))
        specs.append((tree, f.path))
    blobs = read_blobs(mirror, specs)
    changes: list[FileChange] = []
    for i, f in enumerate(text_files):
        old, new = blobs[2 * i], blobs[2 * i + 1]
        changes.append(
            FileChange(
                path=f.path,
                change=f.change,
                old_path=f.old_path,
                base_text=_text(old) if f.change != "added" else None,
                new_text=_text(new) if f.change != "deleted" else None,
            )
        )
    return changes


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", "surrogateescape")
