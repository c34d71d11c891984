"""Garbage collection of copies and bases no process holds and no task knows."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from errand.config.paths import DataPaths
from errand.workspace.copies.base import list_dir
from errand.workspace.copies.holding import in_use
from errand.workspace.copies.mounts import mounts_under, rmtree, unmount

log = logging.getLogger(__name__)


GRACE_SECONDS = 600.0
"""Garbage collection leaves alone anything touched more recently than this, so that a
copy or base being made at the same moment is never taken."""


@dataclass(frozen=True, slots=True)
class GarbageReport:
    unmounted: list[Path]
    removed_copies: list[Path]
    removed_bases: list[Path]


def collect_garbage(
    paths: DataPaths,
    live: Collection[Path],
    *,
    mounted: Collection[Path] = (),
    grace_s: float = GRACE_SECONDS,
) -> GarbageReport:
    """Tidy the data folder for the engine, at startup and after a discard.

    * unmounts copies that no process holds (see :func:`hold`) and that are not in
      ``mounted``, e.g. left mounted by a server that crashed;
    * removes copies (their folders, layers, indexes and lock files) that no process
      holds and that are not in ``live`` (the copies the engine knows);
    * removes bases that no remaining copy uses, except the most recently used base of
      each repository, which stays warm for the next task, and any base (or base being
      built) touched within ``grace_s``.
    """
    live_set = {Path(p).resolve() for p in live}
    keep_mounted = {Path(p).resolve() for p in mounted}
    unmounted = _unmount_idle(paths.copies, keep_mounted)
    removed_copies, used_bases = _remove_orphaned_copies(paths.copies, live_set, grace_s)
    _remove_stale_locks(paths.copies)
    removed_bases: list[Path] = []
    for repo in list_dir(paths.bases):
        if repo.is_dir():
            removed_bases += _remove_unused_bases(repo, used_bases, grace_s)
            _remove_stale_temporaries(repo, grace_s)
    if unmounted or removed_copies or removed_bases:
        log.info(
            "garbage: unmounted %d, removed %d copy entries and %d bases",
            len(unmounted),
            len(removed_copies),
            len(removed_bases),
        )
    return GarbageReport(unmounted, removed_copies, removed_bases)


def _unmount_idle(copies_dir: Path, keep_mounted: set[Path]) -> list[Path]:
    """Unmount the copies under ``copies_dir`` that no process holds and that are not
    in ``keep_mounted``; the mount points unmounted."""
    unmounted: list[Path] = []
    for point in mounts_under(copies_dir):
        if point.resolve() in keep_mounted or in_use(point):
            continue
        try:
            unmount(point)
            unmounted.append(point)
        except OSError as exc:
            log.warning("could not unmount %s: %s", point, exc)
    return unmounted


def _remove_orphaned_copies(
    copies_dir: Path, live_set: set[Path], grace_s: float
) -> tuple[list[Path], set[Path]]:
    """Remove the entries of copies that are not live and that no process holds (lock
    files excepted, see :func:`_remove_stale_locks`), and old probe folders. Returns the
    entries removed and the bases that the remaining copies use."""
    removed: list[Path] = []
    used_bases: set[Path] = set()
    for entry in sorted(list_dir(copies_dir)):
        name = entry.name
        if name.startswith(".probe-"):
            if not _young(entry, grace_s):
                rmtree(entry)
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
            rmtree(entry)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed, used_bases


def _remove_stale_locks(copies_dir: Path) -> None:
    """Remove the lock files of copies of which nothing else is left and no process
    holds."""
    for entry in list_dir(copies_dir):
        stem = entry.name.removesuffix(".lock")
        parts = (entry.with_name(stem + suffix) for suffix in ("", ".layers", ".index"))
        stale = entry.name.endswith(".lock") and not any(os.path.lexists(p) for p in parts)
        if stale and not in_use(entry.with_name(stem)):
            entry.unlink(missing_ok=True)


def _remove_unused_bases(repo: Path, used_bases: set[Path], grace_s: float) -> list[Path]:
    """Remove the bases of one repository that no copy uses, except the most recently
    used one and those touched within ``grace_s``; the bases removed."""
    bases = sorted(
        (p for p in list_dir(repo) if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    removed: list[Path] = []
    for base in bases[1:]:
        if base.resolve() in used_bases or _young(base, grace_s):
            continue
        rmtree(base)
        base.with_name(base.name + ".index").unlink(missing_ok=True)
        base.with_name(base.name + ".lock").unlink(missing_ok=True)
        removed.append(base)
    return removed


def _remove_stale_temporaries(repo: Path, grace_s: float) -> None:
    """Remove the ``.tmp-*`` entries of one repository's bases (a base being built)
    not touched within ``grace_s``."""
    for tmp in list_dir(repo):
        if tmp.name.startswith(".tmp-") and not _young(tmp, grace_s):
            if tmp.is_dir():
                rmtree(tmp)
            else:
                tmp.unlink(missing_ok=True)


def _young(path: Path, grace_s: float) -> bool:
    try:
        return time.time() - path.lstat().st_mtime < grace_s
    except OSError:
        return False
