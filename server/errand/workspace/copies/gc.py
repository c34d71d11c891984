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
    copies_dir = paths.copies
    live_set = {Path(p).resolve() for p in live}
    keep_mounted = {Path(p).resolve() for p in mounted}
    unmounted: list[Path] = []
    for point in mounts_under(copies_dir):
        if point.resolve() in keep_mounted or in_use(point):
            continue
        try:
            unmount(point)
            unmounted.append(point)
        except OSError as exc:
            log.warning("could not unmount %s: %s", point, exc)
    removed_copies: list[Path] = []
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
        removed_copies.append(entry)
    for entry in list_dir(copies_dir):
        stem = entry.name.removesuffix(".lock")
        parts = (entry.with_name(stem + suffix) for suffix in ("", ".layers", ".index"))
        stale = entry.name.endswith(".lock") and not any(os.path.lexists(p) for p in parts)
        if stale and not in_use(entry.with_name(stem)):
            entry.unlink(missing_ok=True)
    removed_bases: list[Path] = []
    for repo in list_dir(paths.bases):
        if not repo.is_dir():
            continue
        bases = sorted(
            (p for p in list_dir(repo) if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for base in bases[1:]:
            if base.resolve() in used_bases or _young(base, grace_s):
                continue
            rmtree(base)
            base.with_name(base.name + ".index").unlink(missing_ok=True)
            base.with_name(base.name + ".lock").unlink(missing_ok=True)
            removed_bases.append(base)
        for tmp in list_dir(repo):
            if tmp.name.startswith(".tmp-") and not _young(tmp, grace_s):
                if tmp.is_dir():
                    rmtree(tmp)
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
