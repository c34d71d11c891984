"""Snapshots of the user's workspace, task copies made from them, and final diffs.

A snapshot is a commit object holding HEAD plus staged, unstaged and untracked (not
ignored) files. It is built with a temporary index and written into errand's own
*mirror* repository, a bare repository in errand's data folder that borrows the user's
objects through ``objects/info/alternates``. Nothing is ever written to the user's
repository: not its index, working tree, refs, stash or objects, and no hook runs.

A task copy is a plain folder made from a snapshot by a :class:`CopyProvider`. It has
its own small ``.git`` (so ``git diff`` works inside the sandbox) whose objects borrow
from the mirror. errand itself never runs git with the copy's ``.git``: the final diff
is computed through the mirror with a private index, so nothing the agent writes into
the copy's git configuration can run on the host.

Every function here is blocking.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from errand import gitops
from errand.protocol import DiffStat, FileStat

SNAPSHOT_REF_PREFIX = "refs/errand/snapshots/"
RESULT_REF_PREFIX = "refs/errand/results/"

# Build and tool caches a command can leave behind (gitignore syntax). Where nothing
# tracks them they are outside errand's view in both directions: a snapshot leaves the
# user's out and a result leaves the agent's out, even where the repository's own
# .gitignore forgets them. So Apply can never delete, rewrite or add one. Tracked files
# are unaffected.
CACHE_PATTERNS = (
    "__pycache__/",
    "*.py[cod]",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    ".hypothesis/",
    ".tox/",
    ".nox/",
)


def _exclude_pathspec(pattern: str) -> str:
    """A :data:`CACHE_PATTERNS` entry as a pathspec that leaves it out at any depth."""
    if pattern.endswith("/"):
        return f":(exclude,glob)**/{pattern}**"
    return f":(exclude,glob)**/{pattern}"


CACHE_PATHSPECS = tuple(_exclude_pathspec(p) for p in CACHE_PATTERNS)
SNAPSHOT_ADD = ("add", "--all", "--", ".", *CACHE_PATHSPECS)
"""What a snapshot records: every change the user sees, caches left out."""


class WorkspaceError(RuntimeError):
    """The folder can't be snapshotted (not a git repository, git failed, ...)."""


@dataclass(frozen=True, slots=True)
class Repository:
    root: Path
    """The working tree's top level."""
    git_dir: Path
    common_dir: Path
    subdir: str
    """Where the requested folder sits inside ``root`` ("" for the top level)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    repo_root: Path
    mirror: Path
    commit: str
    tree: str
    head: str | None
    subdir: str


@dataclass(frozen=True, slots=True)
class TaskCopy:
    path: Path
    index: Path
    """errand's private index for diffing the copy; never inside the copy."""
    kind: str
    reason: str = ""
    """Why this kind of copy was made (see :func:`errand.copies.choose_provider`)."""


@dataclass(frozen=True, slots=True)
class DiffResult:
    tree: str
    diff: str
    files: list[FileStat]
    stat: DiffStat


def find_repository(folder: Path) -> Repository:
    return locate(folder)[0]


def locate(folder: Path) -> tuple[Repository, str | None]:
    """The repository holding ``folder`` and its HEAD commit (None while unborn), with
    one ``git rev-parse`` in the usual case."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise WorkspaceError(f"{folder} is not a folder")
    where = ["rev-parse", "--show-toplevel", "--absolute-git-dir", "--git-common-dir"]
    head: str | None = None
    try:
        lines = gitops.run([*where, "--verify", "-q", "HEAD^{commit}"], cwd=folder).splitlines()
        if len(lines) == 4:
            head = lines.pop()
    except gitops.GitError:
        lines = []  # no HEAD yet, or not a repository: ask again, without HEAD
    if not lines:
        try:
            lines = gitops.run(where, cwd=folder).splitlines()
        except gitops.GitError as exc:
            raise WorkspaceError(
                f"{folder} is not inside a git repository; errand works on git repositories "
                "(run `git init` there first)"
            ) from exc
    if len(lines) != 3:
        raise WorkspaceError(f"{folder}: a bare repository has no working tree to delegate on")
    root = Path(lines[0]).resolve()
    git_dir = Path(lines[1]).resolve()
    common = Path(lines[2])
    common_dir = (common if common.is_absolute() else folder / common).resolve()
    subdir = folder.relative_to(root).as_posix()
    return Repository(root, git_dir, common_dir, "" if subdir == "." else subdir), head


def mirror_path(data_dir: Path, repo_root: Path) -> Path:
    key = hashlib.sha256(str(repo_root).encode()).hexdigest()[:16]
    return data_dir / "repos" / f"{repo_root.name}-{key}.git"


def ensure_mirror(data_dir: Path, repo: Repository) -> Path:
    """errand's mirror of ``repo``, made on first use. Safe when several tasks (or
    servers) ask at once: the making is done under a file lock."""
    mirror = mirror_path(data_dir, repo.root)
    alternates = mirror / "objects" / "info" / "alternates"
    exclude = mirror / "info" / "exclude"
    if alternates.exists() and exclude.exists():
        return mirror
    mirror.parent.mkdir(parents=True, exist_ok=True)
    with open(mirror.with_name(mirror.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not alternates.exists():
            gitops.run(
                ["init", "--bare", "--quiet", "--template=", str(mirror)], env=gitops.ISOLATED
            )
            alternates.parent.mkdir(parents=True, exist_ok=True)
            tmp = alternates.with_name("alternates.tmp")
            tmp.write_text(f"{repo.common_dir / 'objects'}\n", encoding="utf-8")
            (mirror / "errand-origin").write_text(f"{repo.root}\n", encoding="utf-8")
            tmp.replace(alternates)
        if not exclude.exists():
            exclude.parent.mkdir(parents=True, exist_ok=True)
            exclude.write_text("\n".join(CACHE_PATTERNS) + "\n", encoding="utf-8")
    return mirror


class _Snapshots:
    """Snapshots of one repository, one at a time, shared by those who waited.

    A caller needs a snapshot that *started* after it asked. While one runs, later
    callers wait for it to end; the next snapshot then serves all of them. So 32 tasks
    delegated at once cost two walks of the working tree, not 32.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.busy = False
        self.started = 0
        self.done = 0
        self.result: Snapshot | BaseException | None = None


_snapshots_lock = threading.Lock()
_snapshots: dict[Path, _Snapshots] = {}


def take_snapshot(folder: Path, data_dir: Path) -> Snapshot:
    """Capture what the user sees in ``folder``'s repository as a commit in the mirror."""
    repo, head = locate(folder)
    mirror = ensure_mirror(data_dir, repo)
    with _snapshots_lock:
        slot = _snapshots.setdefault(mirror, _Snapshots())
    with slot.cond:
        asked = slot.started
        while True:
            if slot.done > asked and slot.result is not None:
                result = slot.result
                if isinstance(result, BaseException):
                    raise WorkspaceError(f"could not snapshot {repo.root}: {result}")
                return dataclasses.replace(result, subdir=repo.subdir)
            if not slot.busy:
                slot.busy = True
                slot.started += 1
                mine = slot.started
                break
            slot.cond.wait()
    outcome: Snapshot | BaseException = RuntimeError("the snapshot was interrupted")
    try:
        outcome = _take_snapshot(repo, head, mirror)
        return outcome
    except BaseException as exc:
        outcome = exc
        raise
    finally:
        with slot.cond:
            slot.busy = False
            slot.done = mine
            slot.result = outcome
            slot.cond.notify_all()


def _take_snapshot(repo: Repository, head: str | None, mirror: Path) -> Snapshot:
    with tempfile.TemporaryDirectory(prefix="errand-snap-") as tmp:
        index = Path(tmp) / "index"
        user_index = repo.git_dir / "index"
        if user_index.exists():
            # Seeding from the user's index lets git reuse its stat cache: only files
            # that changed get hashed again. The user's index itself is never opened
            # for writing. Its mtime is kept: git compares file times against it to
            # catch "racily clean" entries, files changed within the same clock tick
            # as the index was written, which a fresh mtime would hide.
            shutil.copy2(user_index, index)
        env = {
            "GIT_DIR": str(repo.git_dir),
            "GIT_WORK_TREE": str(repo.root),
            "GIT_INDEX_FILE": str(index),
            "GIT_OBJECT_DIRECTORY": str(mirror / "objects"),
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(repo.common_dir / "objects"),
        }
        try:
            if not user_index.exists() and head:
                gitops.run(["read-tree", head], cwd=repo.root, env=env)
            gitops.run(SNAPSHOT_ADD, cwd=repo.root, env=env)
            tree = gitops.run(["write-tree"], cwd=repo.root, env=env)
        except gitops.GitError:
            # A user index git can't reuse (split index, odd extensions): start over
            # from HEAD. Slower, same result.
            index.unlink(missing_ok=True)
            if head:
                gitops.run(["read-tree", head], cwd=repo.root, env=env)
            gitops.run(SNAPSHOT_ADD, cwd=repo.root, env=env)
            tree = gitops.run(["write-tree"], cwd=repo.root, env=env)
    parents = ["-p", head] if head else []
    commit = gitops.run(
        ["commit-tree", tree, *parents, "-m", "errand snapshot"],
        env={"GIT_DIR": str(mirror), **gitops.ISOLATED},
    )
    _keep(mirror, SNAPSHOT_REF_PREFIX + commit, commit)
    return Snapshot(repo.root, mirror, commit, tree, head, repo.subdir)


def _keep(mirror: Path, ref: str, commit: str) -> None:
    """Point ``ref`` at ``commit`` in errand's mirror. The mirror is errand's own
    repository with the files ref backend (made by ``git init`` here), so a new ref is a
    file holding the commit: written directly, that spares a process per snapshot."""
    path = mirror / ref
    if (mirror / "reftable").exists() or path.exists():
        gitops.run(["update-ref", ref, commit], env={"GIT_DIR": str(mirror), **gitops.ISOLATED})
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(f"{commit}\n", encoding="ascii")
    tmp.replace(path)


# --- task copies ---------------------------------------------------------------------


class CopyProvider(Protocol):
    """Makes and removes task copies (see :mod:`errand.copies` for the kinds)."""

    @property
    def kind(self) -> str: ...

    def create(self, snapshot: Snapshot, dest: Path) -> TaskCopy:
        """Make a copy of ``snapshot`` at ``dest`` (which must not exist)."""
        ...

    def reopen(self, copy: TaskCopy) -> None:
        """Make a released copy usable again (mount it); a no-op when it is."""
        ...

    def release(self, copy: TaskCopy) -> None:
        """Let go of what a copy holds while no attempt runs in it (its mount); its
        files stay and :meth:`reopen` brings it back."""
        ...

    def remove(self, copy: TaskCopy) -> None: ...

    def disk_usage(self, copy: TaskCopy) -> int:
        """Bytes the copy uses on its own (not counting a shared base)."""
        ...


def _mirror_env(mirror: Path, work_tree: Path, index: Path) -> dict[str, str]:
    return {
        "GIT_DIR": str(mirror),
        "GIT_WORK_TREE": str(work_tree),
        "GIT_INDEX_FILE": str(index),
        **gitops.ISOLATED,
    }


class CheckoutCopies:
    """A full checkout of the snapshot into a fresh folder."""

    kind = "checkout"

    def create(self, snapshot: Snapshot, dest: Path) -> TaskCopy:
        index = dest.with_name(dest.name + ".index")
        dest.mkdir(parents=True, exist_ok=False)
        env = _mirror_env(snapshot.mirror, dest, index)
        gitops.run(["read-tree", snapshot.tree], cwd=dest, env=env)
        # --index records stat data, so the first diff only rehashes what changed.
        gitops.run(["checkout-index", "--all", "--force", "--index"], cwd=dest, env=env)
        init_copy_git(snapshot, dest, index)
        return TaskCopy(dest, index, self.kind)

    def reopen(self, copy: TaskCopy) -> None:
        return None

    def release(self, copy: TaskCopy) -> None:
        return None

    def remove(self, copy: TaskCopy) -> None:
        make_removable(copy.path)
        shutil.rmtree(copy.path, ignore_errors=True)
        copy.index.unlink(missing_ok=True)

    def disk_usage(self, copy: TaskCopy) -> int:
        return tree_bytes(copy.path)


_COPY_GIT_CONFIG = """[core]
\trepositoryformatversion = 0
\tfilemode = true
\tbare = false
\tlogallrefupdates = true
"""


def init_copy_git(snapshot: Snapshot, dest: Path, index: Path) -> None:
    """Give the copy a small ``.git`` of its own: HEAD at the snapshot commit, objects
    borrowed from the mirror, and an index that matches the checked-out files."""
    write_git_dir(dest / ".git", snapshot.mirror, f"{snapshot.commit}\n", index)


def write_git_dir(
    git_dir: Path, mirror: Path, head: str, index: Path, *, link: bool = False
) -> None:
    """Write what ``git init --template=`` makes (sparing a process), with objects
    borrowed from ``mirror``, ``head`` as HEAD's content and a copy of ``index`` (a hard
    link when ``link``: git replaces an index by renaming, never writes into it)."""
    (git_dir / "objects" / "info").mkdir(parents=True)
    (git_dir / "objects" / "pack").mkdir()
    (git_dir / "refs" / "heads").mkdir(parents=True)
    (git_dir / "refs" / "tags").mkdir()
    (git_dir / "config").write_text(_COPY_GIT_CONFIG, encoding="utf-8")
    (git_dir / "objects" / "info" / "alternates").write_text(
        f"{mirror / 'objects'}\n", encoding="utf-8"
    )
    (git_dir / "HEAD").write_text(head, encoding="utf-8")
    if link:
        link_or_copy(index, git_dir / "index")
    else:
        shutil.copy2(index, git_dir / "index")


def link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def tree_bytes(root: Path) -> int:
    """Bytes allocated to the files and folders under ``root`` (hard links once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    continue
                seen.add(key)
            total += st.st_blocks * 512
    return total


def make_removable(path: Path) -> None:
    """The agent may have left read-only folders behind; make them writable again."""
    if not path.exists():
        return
    for entry in _walk_dirs(path):
        with contextlib.suppress(OSError):
            entry.chmod(entry.stat().st_mode | 0o700)


def _walk_dirs(path: Path) -> Iterator[Path]:
    yield path
    for child in path.rglob("*"):
        if child.is_dir() and not child.is_symlink():
            yield child


# --- diffs ---------------------------------------------------------------------------


def record_result(snapshot: Snapshot, copy: TaskCopy) -> DiffResult:
    """Write the copy's current state as a tree in the mirror and diff it."""
    env = _mirror_env(snapshot.mirror, copy.path, copy.index)
    gitops.run(["add", "--all", "--", "."], cwd=copy.path, env=env)
    tree = gitops.run(["write-tree"], cwd=copy.path, env=env)
    commit = gitops.run(
        ["commit-tree", tree, "-p", snapshot.commit, "-m", "errand result"],
        env={"GIT_DIR": str(snapshot.mirror), **gitops.ISOLATED},
    )
    gitops.run(
        ["update-ref", RESULT_REF_PREFIX + commit, commit],
        env={"GIT_DIR": str(snapshot.mirror), **gitops.ISOLATED},
    )
    return diff_trees(snapshot.mirror, snapshot.tree, tree)


def diff_trees(mirror: Path, base: str, tree: str) -> DiffResult:
    env = {"GIT_DIR": str(mirror), **gitops.ISOLATED}
    common = ["--no-color", "--no-ext-diff", "--no-textconv", "-M", base, tree]
    diff = gitops.run(["diff", "--src-prefix=a/", "--dst-prefix=b/", *common], env=env, strip=False)
    numstat = gitops.run_bytes(["diff", "--numstat", "-z", *common], env=env)
    status = gitops.run_bytes(["diff", "--name-status", "-z", *common], env=env)
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
        return gitops.run_bytes(
            ["cat-file", "blob", f"{tree}:{path}"], env={"GIT_DIR": str(mirror), **gitops.ISOLATED}
        )
    except gitops.GitError:
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
    out = gitops.run_bytes(
        ["cat-file", "--batch"],
        env={"GIT_DIR": str(mirror), **gitops.ISOLATED},
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


def delete_refs(mirror: Path, refs: list[str]) -> None:
    env = {"GIT_DIR": str(mirror), **gitops.ISOLATED}
    for ref in refs:
        with contextlib.suppress(gitops.GitError):
            gitops.run(["update-ref", "-d", ref], env=env)
