"""Path confinement: which paths a patch may name, and where they lead on disk.

Two checks, one rule (a patch edits files inside the root and never ``.git``):
``check_path`` reads a path as written in the patch, before any file is looked at;
``resolve`` walks it under the root, one component at a time, refusing symlinks that
lead outside the root or into ``.git``.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from errand.patch.errors import PatchError, quote

_DRIVE = re.compile(r"[A-Za-z]:(/|$)")


def check_path(raw: str, lineno: int) -> str:
    """Validate a path as written in the patch; return it normalized (posix, no ``.``)."""
    path = raw.strip()
    where = f"line {lineno}"
    if not path:
        raise PatchError(f"{where}: the file path is missing.")
    if "\0" in path:
        raise PatchError(f"{where}: the file path contains a NUL character.")
    if "\\" in path:
        raise PatchError(
            f"{where}: {quote(path)} contains a backslash; write paths with '/' relative to "
            "the workspace root."
        )
    if path.startswith(("/", "~/")) or path == "~" or _DRIVE.match(path):
        raise PatchError(
            f"{where}: {quote(path)} is an absolute path; paths must be relative to the "
            "workspace root (e.g. 'src/app.py')."
        )
    if path.endswith("/"):
        raise PatchError(f"{where}: {quote(path)} names a directory; give a file path.")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PatchError(
            f"{where}: {quote(path)} contains '..'; paths must stay inside the workspace, "
            "relative to its root."
        )
    if _has_git(parts):
        raise PatchError(f"{where}: {quote(path)} is inside .git; apply_patch never edits .git.")
    if not parts:
        raise PatchError(f"{where}: {quote(path)} is not a file path.")
    return "/".join(parts)


def _has_git(parts: tuple[str, ...] | list[str]) -> bool:
    return any(p.lower() == ".git" for p in parts)


@dataclass(frozen=True, slots=True)
class Found:
    """Where a checked path leads: ``real`` under the root, and its lstat (None: absent)."""

    real: Path
    st: os.stat_result | None

    @property
    def is_link(self) -> bool:
        return self.st is not None and stat.S_ISLNK(self.st.st_mode)


class Root:
    """The folder a patch applies to, with its symlinks resolved once."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise PatchError(f"The workspace root {root} is not a directory.")
        self.path = Path(os.path.realpath(root))

    def check_not_git(self, real: Path, path: str) -> None:
        if _has_git(real.relative_to(self.path).parts):
            raise PatchError(f"{path}: resolves into .git; apply_patch never edits .git.")

    def rel(self, real: Path) -> str:
        return real.relative_to(self.path).as_posix()

    def resolve(self, path: str, *, follow_final: bool) -> Found:
        """Resolve ``path`` under the root, refusing symlinks that lead outside it.

        A symlink as the last component is followed only with ``follow_final``.
        """
        parts = path.split("/")
        cur = self.path
        for k, name in enumerate(parts):
            shown = "/".join(parts[: k + 1])
            final = k == len(parts) - 1
            cand = cur / name
            st = _lstat(cand, path, shown)
            if st is None:
                return Found(cur.joinpath(*parts[k:]), None)
            if stat.S_ISLNK(st.st_mode):
                if final and not follow_final:
                    self._link_target(cand, path, shown)
                    return Found(cand, st)
                cand = self._link_target(cand, path, shown)
                st = _lstat(cand, path, shown)
                if st is None:
                    return Found(cand.joinpath(*parts[k + 1 :]), None)
            if final:
                return Found(cand, st)
            if not stat.S_ISDIR(st.st_mode):
                raise PatchError(f"{path}: {shown} is a file, not a directory.")
            cur = cand
        raise AssertionError("unreachable: a checked path has at least one part")

    def _link_target(self, link: Path, path: str, shown: str) -> Path:
        """Where symlink ``link`` leads, refused unless it is inside the root and not .git."""
        target = Path(os.path.realpath(link))
        if not target.is_relative_to(self.path):
            raise PatchError(
                f"{path}: {shown} is a symlink to {os.readlink(link)!r}, outside the "
                "workspace; apply_patch only edits files inside the workspace."
            )
        self.check_not_git(target, path)
        return target


def _lstat(p: Path, path: str, shown: str) -> os.stat_result | None:
    try:
        return os.lstat(p)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise PatchError(f"{path}: can't inspect {shown}: {e.strerror}.") from e
