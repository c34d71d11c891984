"""Snapshots of the user's workspace.

A snapshot is a commit object holding HEAD plus staged, unstaged and untracked (not
ignored) files. It is built with a temporary index and written into errand's own
*mirror* repository, a bare repository in errand's data folder that borrows the user's
objects through ``objects/info/alternates``. Nothing is ever written to the user's
repository: not its index, working tree, refs, stash or objects, and no hook runs.

Every function here is blocking.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from errand.config.paths import DataPaths
from errand.workspace import git

SNAPSHOT_REF_PREFIX = "refs/errand/snapshots/"


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


def locate(folder: Path) -> tuple[Repository, str | None]:
    """The repository holding ``folder`` and its HEAD commit (None while unborn), with
    one ``git rev-parse`` in the usual case."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise WorkspaceError(f"{folder} is not a folder")
    where = ["rev-parse", "--show-toplevel", "--absolute-git-dir", "--git-common-dir"]
    head: str | None = None
    try:
        lines = git.run([*where, "--verify", "-q", "HEAD^{commit}"], cwd=folder).splitlines()
        if len(lines) == 4:
            head = lines.pop()
    except git.GitError:
        lines = []  # no HEAD yet, or not a repository: ask again, without HEAD
    if not lines:
        try:
            lines = git.run(where, cwd=folder).splitlines()
        except git.GitError as exc:
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


def ensure_mirror(paths: DataPaths, repo: Repository) -> Path:
    """errand's mirror of ``repo``, made on first use. Safe when several tasks (or
    servers) ask at once: the making is done under a file lock."""
    mirror = paths.mirror(repo.root)
    alternates = mirror / "objects" / "info" / "alternates"
    exclude = mirror / "info" / "exclude"
    if alternates.exists() and exclude.exists():
        return mirror
    mirror.parent.mkdir(parents=True, exist_ok=True)
    with open(mirror.with_name(mirror.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not alternates.exists():
            git.run(["init", "--bare", "--quiet", "--template=", str(mirror)], env=git.ISOLATED)
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


def take_snapshot(folder: Path, paths: DataPaths) -> Snapshot:
    """Capture what the user sees in ``folder``'s repository as a commit in the mirror."""
    repo, head = locate(folder)
    mirror = ensure_mirror(paths, repo)
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
                git.run(["read-tree", head], cwd=repo.root, env=env)
            git.run(SNAPSHOT_ADD, cwd=repo.root, env=env)
            tree = git.run(["write-tree"], cwd=repo.root, env=env)
        except git.GitError:
            # A user index git can't reuse (split index, odd extensions): start over
            # from HEAD. Slower, same result.
            index.unlink(missing_ok=True)
            if head:
                git.run(["read-tree", head], cwd=repo.root, env=env)
            git.run(SNAPSHOT_ADD, cwd=repo.root, env=env)
            tree = git.run(["write-tree"], cwd=repo.root, env=env)
    parents = ["-p", head] if head else []
    commit = git.run(
        ["commit-tree", tree, *parents, "-m", "errand snapshot"],
        env={"GIT_DIR": str(mirror), **git.ISOLATED},
    )
    _keep(mirror, SNAPSHOT_REF_PREFIX + commit, commit)
    return Snapshot(repo.root, mirror, commit, tree, head, repo.subdir)


def _keep(mirror: Path, ref: str, commit: str) -> None:
    """Point ``ref`` at ``commit`` in errand's mirror. The mirror is errand's own
    repository with the files ref backend (made by ``git init`` here), so a new ref is a
    file holding the commit: written directly, that spares a process per snapshot."""
    path = mirror / ref
    if (mirror / "reftable").exists() or path.exists():
        git.run(["update-ref", ref, commit], env={"GIT_DIR": str(mirror), **git.ISOLATED})
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(f"{commit}\n", encoding="ascii")
    tmp.replace(path)


def delete_refs(mirror: Path, refs: list[str]) -> None:
    env = {"GIT_DIR": str(mirror), **git.ISOLATED}
    for ref in refs:
        with contextlib.suppress(git.GitError):
            git.run(["update-ref", "-d", ref], env=env)
