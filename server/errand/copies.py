"""Copy-on-write task copies, their fallbacks, and the choice between them.

Every kind of copy starts from a *base*: a read-only checkout of one commit (the
snapshot's HEAD), cached under ``<data>/bases/<repository>/<commit>`` together with a
git index whose stat data matches it. Bases are shared by every task of a repository
and are built once. A task copy is then made from the base in one of three ways:

``overlay``
    An overlayfs mount: the base is the lower layer, each attempt gets its own upper
    and work folders. Making one costs a mount and the user's uncommitted changes;
    nothing is copied. Needs root: an overlay mounted inside a user namespace is
    invisible to the server process, which applies patches and records diffs on the
    copy itself.
``reflink``
    ``cp --reflink=always`` of the base: data blocks are shared until written. Needs
    a filesystem with reflinks (btrfs, XFS, bcachefs...) under the data folder.
``checkout``
    :class:`errand.workspace.CheckoutCopies`, a full checkout. Works everywhere.

The base carries a small ``.git`` (objects borrowed from errand's mirror, the base's
index), so a copy only sets its HEAD to the snapshot. The user's uncommitted changes
(the snapshot tree against the base commit) are recorded in the copy's index with
``update-index`` and written with ``checkout-index``. errand's private index (outside
the copy, for the final diff) starts as the copy's: the base's stat data plus the
snapshot's entries, so that diff rehashes only what changed and every path of the
snapshot is tracked in it.

:func:`choose_provider` probes the data folder once and returns a :class:`CopyManager`
that creates copies with the best kind that works, falls back to the next kind when a
creation fails, and reopens (mounts), releases (unmounts) and removes copies of any
kind. Its reason is recorded on each copy. A copy in use is held with an flock, and
:func:`collect_garbage` removes what no process holds and no task knows: orphaned
copies, stale mounts, and bases no copy uses.

Every function here is blocking.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import logging
import math
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from errand import gitops, workspace
from errand.workspace import CopyProvider, Snapshot, TaskCopy

log = logging.getLogger(__name__)

KINDS = ("overlay", "reflink", "checkout")
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
NEAR_BASE_MAX_CHANGES = 1000
"""Use another cached base of the repository when the snapshot differs from it in at
most this many paths, rather than building a base for the new HEAD."""
GRACE_SECONDS = 600.0
"""Garbage collection leaves alone anything touched more recently than this, so that a
copy or base being made at the same moment is never taken."""

RACY_WAIT_INDEX_BYTES = 200_000
"""An index this large (some 2,000 entries) is worth up to a second's wait when its base
is built; see :func:`_outlive_racy_timestamps`."""

_MS_NOSUID = 2
_MS_NODEV = 4
_MNT_DETACH = 2
_FICLONE = 0x40049409


class CopyUnavailable(RuntimeError):
    """This kind of copy cannot be made here; the message says why."""


# --- bases ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Base:
    path: Path
    index: Path
    commit: str
    """The commit (or :data:`EMPTY_TREE`) checked out in ``path``."""


def bases_root(data_dir: Path) -> Path:
    return data_dir / "bases"


def _base_dir(snapshot: Snapshot) -> Path:
    data_dir = snapshot.mirror.parent.parent
    return bases_root(data_dir) / snapshot.mirror.name.removesuffix(".git")


def _base_at(folder: Path, commit: str) -> Base:
    return Base(folder / commit, folder / f"{commit}.index", commit)


def ensure_base(snapshot: Snapshot) -> tuple[Base, list[TreeChange]]:
    """The base to build ``snapshot``'s copy on, and the changes from it to the snapshot.

    Prefers the base of the snapshot's HEAD; else the most recently used base of the same
    repository when few paths differ; else builds the HEAD's base (slow, once)."""
    folder = _base_dir(snapshot)
    commit = snapshot.head or EMPTY_TREE
    exact = _base_at(folder, commit)
    if not exact.index.exists():
        near = _nearest_base(folder, snapshot)
        if near is not None:
            return near
        _build_base(snapshot, exact)
    _touch(exact.path)
    return exact, tree_changes(snapshot.mirror, commit, snapshot.tree)


def _nearest_base(folder: Path, snapshot: Snapshot) -> tuple[Base, list[TreeChange]] | None:
    candidates = sorted(
        (p for p in _list_dir(folder) if p.suffix == ".index" and not p.name.startswith(".")),
        key=_mtime_of_stem,
        reverse=True,
    )
    for index in candidates[:1]:
        base = _base_at(folder, index.stem)
        try:
            changes = tree_changes(snapshot.mirror, base.commit, snapshot.tree)
        except gitops.GitError:
            continue  # its commit is gone from the repository
        if len(changes) <= NEAR_BASE_MAX_CHANGES:
            _touch(base.path)
            return base, changes
    return None


def _mtime_of_stem(index: Path) -> float:
    try:
        return index.with_suffix("").stat().st_mtime
    except OSError:
        return 0.0


def _build_base(snapshot: Snapshot, base: Base) -> None:
    base.path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = base.path.with_name(base.path.name + ".lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if base.index.exists():
            return  # built by another task while we waited
        started = time.monotonic()
        tmp = base.path.with_name(f".tmp-{base.commit}-{secrets.token_hex(4)}")
        tmp_index = tmp.with_name(tmp.name + ".index")
        tmp.mkdir()
        try:
            env = _mirror_env(snapshot.mirror, tmp, tmp_index)
            tree = snapshot.head or EMPTY_TREE
            gitops.run(["read-tree", tree], cwd=tmp, env=env)
            gitops.run(["checkout-index", "--all", "--force", "--index"], cwd=tmp, env=env)
            _outlive_racy_timestamps(tmp, tmp_index, env)
            # The base carries a ``.git`` for its copies (objects from the mirror, the
            # base's index): a copy then only writes its HEAD.
            workspace.write_git_dir(
                tmp / ".git", snapshot.mirror, "ref: refs/heads/base\n", tmp_index, link=True
            )
            if base.path.exists():  # a half-made base from a crash
                _rmtree(base.path)
            tmp.rename(base.path)
            tmp_index.rename(base.index)
        except BaseException:
            _rmtree(tmp)
            tmp_index.unlink(missing_ok=True)
            raise
        log.info("built base %s in %.0f ms", base.path, (time.monotonic() - started) * 1000)


def _outlive_racy_timestamps(work_tree: Path, index: Path, env: dict[str, str]) -> None:
    """Rewrite the base's index in a later second than any file it lists.

    git (built without nanosecond timestamps, as Debian's is) treats an entry whose
    mtime is not older than the index file's, to the second, as "racily clean" and
    re-checks the file each time it writes that index. A base checked out within the
    same second as its index would make every copy's first ``update-index`` lstat
    thousands of files. Waiting out the second once, when the base is built, spares that.
    Small bases (few racy entries, cheap to re-check) skip the wait.
    """
    info = index.stat()
    if info.st_size < RACY_WAIT_INDEX_BYTES:
        return
    written = info.st_mtime
    time.sleep(max(0.0, math.floor(written) + 1.01 - time.time()))
    gitops.run(["update-index", "-q", "--refresh", "--force-write-index"], cwd=work_tree, env=env)


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


# --- the user's changes on top of a base ----------------------------------------------


@dataclass(frozen=True, slots=True)
class TreeChange:
    path: bytes
    mode: str
    """The new mode; ``000000`` when the path is deleted."""
    sha: str

    @property
    def deleted(self) -> bool:
        return self.mode == "000000"


def tree_changes(mirror: Path, base: str, tree: str) -> list[TreeChange]:
    """Every path that differs between ``base`` and ``tree`` (no rename detection)."""
    out = gitops.run_bytes(
        ["diff-tree", "-r", "-z", "--no-renames", base, tree],
        env={"GIT_DIR": str(mirror), **gitops.ISOLATED},
    )
    fields = out.split(b"\0")
    changes: list[TreeChange] = []
    for i in range(0, len(fields) - 1, 2):
        meta = fields[i].decode("ascii").split(" ")
        if len(meta) < 5:
            break
        changes.append(TreeChange(fields[i + 1], meta[1], meta[3]))
    return changes


def apply_changes(mirror: Path, work_tree: Path, index: Path, changes: list[TreeChange]) -> None:
    """Bring ``work_tree`` and its ``index`` (both at the base) to the snapshot.

    Deleted paths are unlinked and folders left empty removed; ``update-index
    --index-info`` records the new entries (without stat data: git hashes those few files
    once); ``checkout-index`` writes them as git would, with modes, symlinks, submodule
    folders and the repository's attributes (end of line, filters), and without following
    a symlink in the way. ``index`` is read, not rewritten, by the checkout."""
    for change in changes:
        if change.deleted:
            _remove_path(work_tree, change.path)
    env = _mirror_env(mirror, work_tree, index)
    removed = [b"0 " + b"0" * 40 + b"\t" + c.path + b"\0" for c in changes if c.deleted]
    added = [
        c.mode.encode() + b" " + c.sha.encode() + b"\t" + c.path + b"\0"
        for c in changes
        if not c.deleted
    ]
    gitops.run_bytes(
        ["update-index", "-z", "--index-info"],
        cwd=work_tree,
        env=env,
        input_bytes=b"".join(removed + added),
    )
    written = b"".join(c.path + b"\0" for c in changes if not c.deleted)
    if written:
        gitops.run_bytes(
            ["checkout-index", "--force", "-z", "--stdin"],
            cwd=work_tree,
            env=env,
            input_bytes=written,
        )


def _remove_path(root: Path, rel: bytes) -> None:
    stop = os.fsencode(root)
    target = os.path.join(stop, rel)
    try:
        if os.path.isdir(target) and not os.path.islink(target):
            os.rmdir(target)  # a submodule's empty folder
        else:
            os.unlink(target)
    except (FileNotFoundError, NotADirectoryError):
        pass
    except OSError as exc:
        log.debug("could not remove %r: %s", target, exc)
    parent = os.path.dirname(target)
    while parent != stop and parent.startswith(stop):
        try:
            os.rmdir(parent)
        except OSError:
            break
        parent = os.path.dirname(parent)


def _mirror_env(mirror: Path, work_tree: Path, index: Path) -> dict[str, str]:
    return {
        "GIT_DIR": str(mirror),
        "GIT_WORK_TREE": str(work_tree),
        "GIT_INDEX_FILE": str(index),
        **gitops.ISOLATED,
    }


def _index_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".index")


def _finish_copy(
    snapshot: Snapshot, dest: Path, base: Base, changes: list[TreeChange], *, refresh: bool
) -> Path:
    """Put the user's changes into a copy of the base and give it its indexes.

    errand's private index starts as the base's (a hard link: git replaces an index by
    renaming, never writes into it): stat data of untouched files still matches (overlay
    keeps inode numbers and times), and ``git add`` at the end rehashes whatever differs.
    The copy's own ``.git`` comes with the base; its HEAD is set to the snapshot and its
    index updated to the snapshot, so ``git status`` inside the sandbox shows only what
    the agent did."""
    index = _index_path(dest)
    workspace.link_or_copy(base.index, index)
    if refresh:  # the files' inode numbers and ctimes differ from the base's
        env = _mirror_env(snapshot.mirror, dest, index)
        gitops.run(["update-index", "-q", "--refresh"], cwd=dest, env=env)
    git_dir = dest / ".git"
    if (git_dir / "index").is_file() and (git_dir / "objects" / "info" / "alternates").is_file():
        (git_dir / "HEAD").write_text(f"{snapshot.commit}\n", encoding="ascii")
        if refresh:
            (git_dir / "index").unlink()
            shutil.copy2(index, git_dir / "index")
    else:  # a base made before bases carried their .git
        workspace.init_copy_git(snapshot, dest, index)
    if changes:
        apply_changes(snapshot.mirror, dest, git_dir / "index", changes)
        # errand's private index must list the snapshot, not the base: a path the user
        # added (an untracked file, an ignored one they force-added) is then tracked
        # when the result is recorded, so no ignore rule can drop it from the result and
        # turn it into a deletion the user never asked for. The copy's index holds just
        # that, written before the agent could touch it.
        index.unlink()
        shutil.copy2(git_dir / "index", index)
    return index


def _refuse_existing(dest: Path) -> None:
    """A copy is only ever made in a fresh place; cleaning up after a failure must never
    take what was there before."""
    for path in (dest, _layers(dest), _index_path(dest)):
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, f"{path} already exists")


# --- overlay --------------------------------------------------------------------------


def _layers(copy_path: Path) -> Path:
    return copy_path.with_name(copy_path.name + ".layers")


_libc = ctypes.CDLL(None, use_errno=True)


def _mount_overlay(lower: Path, upper: Path, work: Path, target: Path) -> None:
    for path in (lower, upper, work):
        text = str(path)
        if any(c in text for c in ",:\\\n"):
            raise CopyUnavailable(f"overlay can't take a path with ',', ':' or '\\': {text}")
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    if _metacopy_supported():
        # chown/chmod of a base file (the Docker backend hands the copy to its user)
        # then copies up metadata only, not the file's data.
        options += ",metacopy=on"
    result = _libc.mount(
        b"errand",
        os.fsencode(target),
        b"overlay",
        ctypes.c_ulong(_MS_NOSUID | _MS_NODEV),
        options.encode(),
    )
    if result != 0:
        code = ctypes.get_errno()
        raise CopyUnavailable(f"overlay mount failed: {os.strerror(code)} (errno {code})")


def _metacopy_supported() -> bool:
    return Path("/sys/module/overlay/parameters/metacopy").exists()


def _unmount(target: Path) -> None:
    if _libc.umount2(os.fsencode(target), 0) == 0:
        return
    code = ctypes.get_errno()
    if code == errno.EBUSY:
        # A straggler still has a file open inside: detach now, the kernel frees the
        # mount when it lets go.
        log.warning("copy %s is busy; detaching its mount", target)
        if _libc.umount2(os.fsencode(target), _MNT_DETACH) == 0:
            return
        code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOENT):
        return  # not mounted
    raise OSError(code, f"unmounting {target}: {os.strerror(code)}")


def mounts_under(folder: Path) -> list[Path]:
    """Mount points at or below ``folder``, from ``/proc/self/mountinfo``."""
    prefix = str(folder.resolve()).rstrip("/") + "/"
    found: list[Path] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text("utf-8", "surrogateescape").splitlines()
    except OSError:
        return found
    for line in lines:
        parts = line.split(" ")
        if len(parts) < 5:
            continue
        point = _unescape_mount(parts[4])
        if point == prefix.rstrip("/") or point.startswith(prefix):
            found.append(Path(point))
    return found


def _unescape_mount(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 3 < len(text) + 1 and text[i + 1 : i + 4].isdigit():
            out.append(chr(int(text[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


class OverlayCopies:
    """An overlayfs mount per attempt over a shared base checkout."""

    kind = "overlay"

    def create(self, snapshot: Snapshot, dest: Path) -> TaskCopy:
        _refuse_existing(dest)
        base, changes = ensure_base(snapshot)
        layers = _layers(dest)
        dest.mkdir(parents=True, exist_ok=False)
        try:
            (layers / "upper").mkdir(parents=True)
            (layers / "work").mkdir()
            (layers / "lower").symlink_to(base.path)
            _mount_overlay(base.path, layers / "upper", layers / "work", dest)
            index = _finish_copy(snapshot, dest, base, changes, refresh=False)
        except BaseException:
            self.remove(TaskCopy(dest, _index_path(dest), self.kind))
            raise
        return TaskCopy(dest, index, self.kind)

    def reopen(self, copy: TaskCopy) -> None:
        if os.path.ismount(copy.path):
            return
        layers = _layers(copy.path)
        lower = layers / "lower"
        if not lower.exists():
            raise CopyUnavailable(f"the base of copy {copy.path} is gone")
        copy.path.mkdir(parents=True, exist_ok=True)
        _touch(lower.resolve())
        _mount_overlay(lower.resolve(), layers / "upper", layers / "work", copy.path)

    def release(self, copy: TaskCopy) -> None:
        if os.path.ismount(copy.path):
            _unmount(copy.path)

    def remove(self, copy: TaskCopy) -> None:
        self.release(copy)
        if os.path.ismount(copy.path):
            raise OSError(errno.EBUSY, f"{copy.path} is still mounted")
        layers = _layers(copy.path)
        _rmtree(layers)
        with contextlib.suppress(OSError):
            copy.path.rmdir()
        if copy.path.exists():  # only if something wrote into the bare mount point
            _rmtree(copy.path)
        copy.index.unlink(missing_ok=True)

    def disk_usage(self, copy: TaskCopy) -> int:
        return tree_bytes(_layers(copy.path) / "upper")


# --- reflink --------------------------------------------------------------------------


class ReflinkCopies:
    """``cp --reflink=always`` of the shared base: blocks are shared until written."""

    kind = "reflink"

    def create(self, snapshot: Snapshot, dest: Path) -> TaskCopy:
        _refuse_existing(dest)
        base, changes = ensure_base(snapshot)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            proc = subprocess.run(
                [
                    "cp",
                    "-a",
                    "--reflink=always",
                    "--no-target-directory",
                    str(base.path),
                    str(dest),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise CopyUnavailable(f"cp --reflink=always failed: {proc.stderr.strip()}")
            index = _finish_copy(snapshot, dest, base, changes, refresh=True)
        except BaseException:
            self.remove(TaskCopy(dest, _index_path(dest), self.kind))
            raise
        return TaskCopy(dest, index, self.kind)

    def reopen(self, copy: TaskCopy) -> None:
        return None

    def release(self, copy: TaskCopy) -> None:
        return None

    def remove(self, copy: TaskCopy) -> None:
        _rmtree(copy.path)
        copy.index.unlink(missing_ok=True)

    def disk_usage(self, copy: TaskCopy) -> int:
        # Shared extents are counted in full: an upper bound of what removing frees.
        return tree_bytes(copy.path)


# --- choosing -------------------------------------------------------------------------


def _providers() -> dict[str, CopyProvider]:
    return {
        "overlay": OverlayCopies(),
        "reflink": ReflinkCopies(),
        "checkout": workspace.CheckoutCopies(),
    }


class CopyManager:
    """Creates copies with the chosen kind, falling back along the chain when a creation
    fails; reopens, releases and removes copies of every kind."""

    def __init__(self, chain: list[str], reason: str) -> None:
        self._providers = _providers()
        self.chain = chain
        self.reason = reason

    @property
    def kind(self) -> str:
        return self.chain[0]

    def create(self, snapshot: Snapshot, dest: Path) -> TaskCopy:
        _refuse_existing(dest)
        hold(dest)
        try:
            return self._create(snapshot, dest)
        except BaseException:
            let_go(dest, forget=True)
            raise

    def _create(self, snapshot: Snapshot, dest: Path) -> TaskCopy:
        reason = self.reason
        for n, kind in enumerate(self.chain):
            started = time.monotonic()
            try:
                copy = self._providers[kind].create(snapshot, dest)
            except (CopyUnavailable, OSError, gitops.GitError) as exc:
                if n + 1 == len(self.chain):
                    raise
                log.warning("%s copy failed (%s); trying %s", kind, exc, self.chain[n + 1])
                reason = f"{kind} copy failed: {exc}; fell back to {self.chain[n + 1]}"
                continue
            log.info(
                "%s copy %s ready in %.1f ms (%s)",
                kind,
                dest,
                (time.monotonic() - started) * 1000,
                reason,
            )
            return TaskCopy(copy.path, copy.index, copy.kind, reason)
        raise AssertionError("unreachable")

    def _for(self, copy: TaskCopy) -> CopyProvider:
        return self._providers.get(copy.kind) or self._providers["checkout"]

    def reopen(self, copy: TaskCopy) -> None:
        hold(copy.path)
        try:
            self._for(copy).reopen(copy)
        except BaseException:
            let_go(copy.path)
            raise

    def release(self, copy: TaskCopy) -> None:
        try:
            self._for(copy).release(copy)
        finally:
            let_go(copy.path)

    def remove(self, copy: TaskCopy) -> None:
        self._for(copy).remove(copy)
        let_go(copy.path, forget=True)

    def disk_usage(self, copy: TaskCopy) -> int:
        return self._for(copy).disk_usage(copy)


# --- in use ---------------------------------------------------------------------------
#
# A copy in use (being made, or an attempt running in it) is held with an flock on
# ``<copy>.lock``. Garbage collection in any process (a second server, a CLI command on
# the same data folder) leaves held copies alone; a crashed server's locks go with it.

_held_lock = threading.Lock()
_held: dict[Path, int] = {}


def _lock_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".lock")


def hold(dest: Path) -> None:
    """Mark ``dest`` in use by this process (idempotent)."""
    with _held_lock:
        if dest in _held:
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(_lock_path(dest), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CopyUnavailable(f"{dest} is in use by another errand process") from None
        _held[dest] = fd


def let_go(dest: Path, *, forget: bool = False) -> None:
    """Stop holding ``dest``; ``forget`` also deletes its lock file."""
    with _held_lock:
        fd = _held.pop(dest, None)
        if forget:
            _lock_path(dest).unlink(missing_ok=True)
        if fd is not None:
            os.close(fd)


def in_use(dest: Path) -> bool:
    """Whether some process (this one included) holds ``dest``."""
    try:
        fd = os.open(_lock_path(dest), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


_probe_lock = threading.Lock()
_probed: dict[tuple[Path, str], str | None] = {}


def choose_provider(data_dir: Path, prefer: str | None = None) -> CopyManager:
    """Probe ``data_dir`` and pick the fastest kind of copy that works there.

    ``prefer`` (default: the ``ERRAND_COPIES`` environment variable; ``auto`` or unset
    means overlay first) names the first kind to try; the kinds after it remain as
    fallbacks. The reason for the choice is logged and recorded on every copy.
    """
    if prefer is None:
        prefer = os.environ.get("ERRAND_COPIES") or "auto"
    prefer = prefer.strip().lower()
    if prefer not in (*KINDS, "auto"):
        log.warning("ERRAND_COPIES=%s is not one of auto, %s; using auto", prefer, ", ".join(KINDS))
        prefer = "auto"
    start = 0 if prefer == "auto" else KINDS.index(prefer)
    skipped: list[str] = []
    if start > 0:
        skipped.append(f"ERRAND_COPIES={prefer}")
    fstype = filesystem_type(data_dir)
    for i in range(start, len(KINDS)):
        kind = KINDS[i]
        problem = probe(data_dir, kind)
        if problem is None:
            why = {
                "overlay": f"overlayfs over a cached base checkout (root mounts; {fstype})",
                "reflink": f"reflink copy of a cached base checkout ({fstype} shares blocks)",
                "checkout": "full checkout",
            }[kind]
            reason = "; ".join([*skipped, why]) if skipped else why
            manager = CopyManager(list(KINDS[i:]), reason)
            log.info("task copies: %s", reason)
            return manager
        skipped.append(f"no {kind}: {problem}")
    raise AssertionError("checkout copies always work")


def probe(data_dir: Path, kind: str) -> str | None:
    """None when ``kind`` works under ``data_dir``, else why not. Cached per process."""
    if kind == "checkout":
        return None
    key = (data_dir.resolve() if data_dir.exists() else data_dir, kind)
    with _probe_lock:
        if key not in _probed:
            _probed[key] = (
                _probe_overlay(data_dir) if kind == "overlay" else _probe_reflink(data_dir)
            )
        return _probed[key]


def _probe_overlay(data_dir: Path) -> str | None:
    if (
        not Path("/proc/filesystems").exists()
        or "overlay" not in Path("/proc/filesystems").read_text()
    ):
        return "this kernel has no overlayfs"
    if os.geteuid() != 0:
        return (
            "the server is not root, and an overlay mounted in a user namespace would be "
            "invisible to the server process, which applies patches and records diffs"
        )
    root = data_dir / "copies" / f".probe-{secrets.token_hex(4)}"
    try:
        for name in ("lower", "upper", "work", "merged"):
            (root / name).mkdir(parents=True)
        (root / "lower" / "f").write_text("x")
        _mount_overlay(root / "lower", root / "upper", root / "work", root / "merged")
        try:
            (root / "merged" / "f").write_text("y")
        finally:
            _unmount(root / "merged")
        if (root / "lower" / "f").read_text() != "x":
            return "the overlay wrote through to its lower layer"
        return None
    except (CopyUnavailable, OSError) as exc:
        return f"{exc} (data folder on {filesystem_type(data_dir)})"
    finally:
        with contextlib.suppress(OSError):
            _unmount(root / "merged")
        _rmtree(root)


def _probe_reflink(data_dir: Path) -> str | None:
    root = bases_root(data_dir)
    src = root / f".probe-{secrets.token_hex(4)}"
    dst = src.with_name(src.name + "-clone")
    try:
        root.mkdir(parents=True, exist_ok=True)
        src.write_bytes(b"errand reflink probe\n")
        with open(src, "rb") as s, open(dst, "wb") as d:
            fcntl.ioctl(d.fileno(), _FICLONE, s.fileno())
        return None
    except OSError as exc:
        return f"{filesystem_type(data_dir)} under the data folder has no reflinks ({exc.strerror})"
    finally:
        for path in (src, dst):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)


def filesystem_type(path: Path) -> str:
    """The filesystem type of the mount holding ``path`` (``ext4``, ``btrfs``...)."""
    target = path
    while not target.exists() and target != target.parent:
        target = target.parent
    target = target.resolve()
    best, kind = "", "unknown"
    try:
        lines = Path("/proc/self/mountinfo").read_text("utf-8", "surrogateescape").splitlines()
    except OSError:
        return kind
    for line in lines:
        left, _, right = line.partition(" - ")
        point = _unescape_mount(left.split(" ")[4]) if len(left.split(" ")) > 4 else ""
        inside = str(target) == point or str(target).startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best) and right:
            best, kind = point, right.split(" ")[0]
    return kind


# --- disk use and garbage -------------------------------------------------------------


tree_bytes = workspace.tree_bytes


@dataclass(frozen=True, slots=True)
class GarbageReport:
    unmounted: list[Path]
    removed_copies: list[Path]
    removed_bases: list[Path]


def collect_garbage(
    data_dir: Path,
    live: Collection[Path],
    *,
    mounted: Collection[Path] = (),
    grace_s: float = GRACE_SECONDS,
) -> GarbageReport:
    """Tidy ``data_dir`` for the engine, at startup and after a discard.

    * unmounts copies that no process holds (see :func:`hold`) and that are not in
      ``mounted``, e.g. left mounted by a server that crashed;
    * removes copies (their folders, layers, indexes and lock files) that no process
      holds and that are not in ``live`` (the copies the engine knows);
    * removes bases that no remaining copy uses, except the most recently used base of
      each repository, which stays warm for the next task, and any base (or base being
      built) touched within ``grace_s``.
    """
    copies_dir = data_dir / "copies"
    live_set = {Path(p).resolve() for p in live}
    keep_mounted = {Path(p).resolve() for p in mounted}
    unmounted: list[Path] = []
    for point in mounts_under(copies_dir):
        if point.resolve() in keep_mounted or in_use(point):
            continue
        try:
            _unmount(point)
            unmounted.append(point)
        except OSError as exc:
            log.warning("could not unmount %s: %s", point, exc)
    removed_copies: list[Path] = []
    used_bases: set[Path] = set()
    for entry in sorted(_list_dir(copies_dir)):
        name = entry.name
        if name.startswith(".probe-"):
            if not _young(entry, grace_s):
                _rmtree(entry)
            continue
        stem = name
        for suffix in (".layers", ".index", ".lock"):
            stem = stem.removesuffix(suffix)
        copy_path = entry.with_name(stem)
        if copy_path.resolve() in live_set or in_use(copy_path):
            lower = copy_path.with_name(stem + ".layers") / "lower"
            with contextlib.suppress(OSError):
                used_bases.add(lower.resolve(strict=True))
            continue
        if os.path.ismount(copy_path):
            continue  # still mounted (busy); try again next time
        if name.endswith(".lock"):
            continue  # removed below, once nothing else of the copy is left
        if entry.is_dir() and not entry.is_symlink():
            _rmtree(entry)
        else:
            entry.unlink(missing_ok=True)
        removed_copies.append(entry)
    for entry in _list_dir(copies_dir):
        stem = entry.name.removesuffix(".lock")
        parts = (entry.with_name(stem + suffix) for suffix in ("", ".layers", ".index"))
        stale = entry.name.endswith(".lock") and not any(os.path.lexists(p) for p in parts)
        if stale and not in_use(entry.with_name(stem)):
            entry.unlink(missing_ok=True)
    removed_bases: list[Path] = []
    for repo in _list_dir(bases_root(data_dir)):
        if not repo.is_dir():
            continue
        bases = sorted(
            (p for p in _list_dir(repo) if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for base in bases[1:]:
            if base.resolve() in used_bases or _young(base, grace_s):
                continue
            _rmtree(base)
            base.with_name(base.name + ".index").unlink(missing_ok=True)
            base.with_name(base.name + ".lock").unlink(missing_ok=True)
            removed_bases.append(base)
        for tmp in _list_dir(repo):
            if tmp.name.startswith(".tmp-") and not _young(tmp, grace_s):
                if tmp.is_dir():
                    _rmtree(tmp)
                else:
                    tmp.unlink(missing_ok=True)
    if unmounted or removed_copies or removed_bases:
        log.info(
            "garbage: unmounted %d, removed %d copy entries and %d bases",
            len(unmounted),
            len(removed_copies),
            len(removed_bases),
        )
    return GarbageReport(unmounted, removed_copies, removed_bases)


def _young(path: Path, grace_s: float) -> bool:
    try:
        return time.time() - path.lstat().st_mtime < grace_s
    except OSError:
        return False


def _list_dir(folder: Path) -> Iterator[Path]:
    try:
        yield from folder.iterdir()
    except OSError:
        return


def _rmtree(path: Path) -> None:
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
        return
    if mounts_under(path):
        raise OSError(errno.EBUSY, f"refusing to delete {path}: something is mounted inside")
    workspace.make_removable(path)
    shutil.rmtree(path, ignore_errors=True)
