"""The data folder's layout, in one place.

Everything errand keeps lives under one folder (``ERRAND_DATA_DIR``, by default
``$XDG_STATE_HOME/errand``): the store, the log, a mirror repository per user
repository, cached base checkouts and the task copies.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class DataPaths:
    root: Path

    @property
    def store(self) -> Path:
        return self.root / "errand.db"

    @property
    def log(self) -> Path:
        return self.root / "errand.log"

    @property
    def owner_lock(self) -> Path:
        """Held by the one process that writes this data folder (see errand.engine.owner)."""
        return self.root / "owner.lock"

    @property
    def mirrors(self) -> Path:
        return self.root / "repos"

    @property
    def bases(self) -> Path:
        return self.root / "bases"

    @property
    def copies(self) -> Path:
        return self.root / "copies"

    def mirror(self, repo_root: Path) -> Path:
        """errand's mirror repository of the user's repository at ``repo_root``."""
        key = hashlib.sha256(str(repo_root).encode()).hexdigest()[:16]
        return self.mirrors / f"{repo_root.name}-{key}.git"

    def bases_of(self, mirror: Path) -> Path:
        """Where the base checkouts of one mirror's repository are cached."""
        return self.bases / mirror.name.removesuffix(".git")

    def copy(self, task_id: str, attempt: int) -> Path:
        return self.copies / f"{task_id}-{attempt}"
