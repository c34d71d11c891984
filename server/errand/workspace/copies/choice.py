"""Choosing the kind of copy, and the manager that makes copies of that kind.

:func:`choose_provider` probes the data folder once and returns a :class:`CopyManager`
that creates copies with the best kind that works, falls back to the next kind when a
creation fails, and reopens (mounts), releases (unmounts) and removes copies of any
kind. Its reason is recorded on each copy.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import threading
import time
from pathlib import Path

from errand.config.paths import DataPaths
from errand.workspace import git
from errand.workspace.copies.base import (
    CopyProvider,
    CopyUnavailable,
    TaskCopy,
    refuse_existing,
)
from errand.workspace.copies.checkout import CheckoutCopies
from errand.workspace.copies.holding import hold, let_go
from errand.workspace.copies.mounts import filesystem_type, mount_overlay, rmtree, unmount
from errand.workspace.copies.overlay import OverlayCopies
from errand.workspace.copies.reflink import ReflinkCopies
from errand.workspace.snapshot import Snapshot

log = logging.getLogger(__name__)


KINDS = ("overlay", "reflink", "checkout")


_FICLONE = 0x40049409


def _providers(paths: DataPaths) -> dict[str, CopyProvider]:
    return {
        "overlay": OverlayCopies(paths),
        "reflink": ReflinkCopies(paths),
        "checkout": CheckoutCopies(),
    }


class CopyManager:
    """Creates copies with the chosen kind, falling back along the chain when a creation
    fails; reopens, releases and removes copies of every kind."""

    def __init__(self, paths: DataPaths, chain: list[str], reason: str) -> None:
        self._providers = _providers(paths)
        self.chain = chain
        self.reason = reason

    @property
    def kind(self) -> str:
        return self.chain[0]

    def create(self, snapshot: Snapshot, dest: Path) -> TaskCopy:
        refuse_existing(dest)
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
            except (CopyUnavailable, OSError, git.GitError) as exc:
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


_probe_lock = threading.Lock()


_probed: dict[tuple[Path, str], str | None] = {}


def choose_provider(paths: DataPaths, prefer: str | None = None) -> CopyManager:
    """Probe the data folder and pick the fastest kind of copy that works there.

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
    fstype = filesystem_type(paths.root)
    for i in range(start, len(KINDS)):
        kind = KINDS[i]
        problem = probe(paths, kind)
        if problem is None:
            why = {
                "overlay": f"overlayfs over a cached base checkout (root mounts; {fstype})",
                "reflink": f"reflink copy of a cached base checkout ({fstype} shares blocks)",
                "checkout": "full checkout",
            }[kind]
            reason = "; ".join([*skipped, why]) if skipped else why
            manager = CopyManager(paths, list(KINDS[i:]), reason)
            log.info("task copies: %s", reason)
            return manager
        skipped.append(f"no {kind}: {problem}")
    raise AssertionError("checkout copies always work")


def probe(paths: DataPaths, kind: str) -> str | None:
    """None when ``kind`` works under the data folder, else why not. Cached per process."""
    if kind == "checkout":
        return None
    root = paths.root
    key = (root.resolve() if root.exists() else root, kind)
    with _probe_lock:
        if key not in _probed:
            _probed[key] = _probe_overlay(paths) if kind == "overlay" else _probe_reflink(paths)
        return _probed[key]


def _probe_overlay(paths: DataPaths) -> str | None:
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
    root = paths.copies / f".probe-{secrets.token_hex(4)}"
    try:
        for name in ("lower", "upper", "work", "merged"):
            (root / name).mkdir(parents=True)
        (root / "lower" / "f").write_text("x")
        mount_overlay(root / "lower", root / "upper", root / "work", root / "merged")
        try:
            (root / "merged" / "f").write_text("y")
        finally:
            unmount(root / "merged")
        if (root / "lower" / "f").read_text() != "x":
            return "the overlay wrote through to its lower layer"
        return None
    except (CopyUnavailable, OSError) as exc:
        return f"{exc} (data folder on {filesystem_type(paths.root)})"
    finally:
        with contextlib.suppress(OSError):
            unmount(root / "merged")
        rmtree(root)


def _probe_reflink(paths: DataPaths) -> str | None:
    root = paths.bases
    src = root / f".probe-{secrets.token_hex(4)}"
    dst = src.with_name(src.name + "-clone")
    try:
        root.mkdir(parents=True, exist_ok=True)
        src.write_bytes(b"errand reflink probe\n")
        with open(src, "rb") as s, open(dst, "wb") as d:
            fcntl.ioctl(d.fileno(), _FICLONE, s.fileno())
        return None
    except OSError as exc:
        return (
            f"{filesystem_type(paths.root)} under the data folder has no reflinks ({exc.strerror})"
        )
    finally:
        for path in (src, dst):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
