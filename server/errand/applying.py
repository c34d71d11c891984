"""Decide whether an attempt's changes can be applied to the user's files now.

Pure apart from the two callables it is given. A file whose current content (the
open buffer if the editor has it open, else the disk) differs from the snapshot is a
conflict, and a plan with conflicts is refused whole: nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from errand.edits import FileChange, path_to_uri
from errand.protocol import FileStat


@dataclass(frozen=True, slots=True)
class CurrentFile:
    exists: bool
    text: str | None = None
    """Decoded text (UTF-8, surrogateescape) of the buffer or the file."""
    version: int | None = None
    """The open buffer's version, when the editor has the file open."""


@dataclass(slots=True)
class ApplyPlan:
    changes: list[FileChange] = field(default_factory=list)
    versions: dict[str, int | None] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    binary_writes: list[tuple[str, bytes | None]] = field(default_factory=list)
    """(path, new bytes or None to delete) for binary files, written after the edit."""

    @property
    def files(self) -> list[str]:
        return [c.path for c in self.changes] + [p for p, _ in self.binary_writes]


class ApplyRefused(ValueError):
    pass


def plan_apply(
    root: Path,
    changes: list[FileChange],
    binaries: list[FileStat],
    only: list[str] | None,
    current: Callable[[str], CurrentFile],
    new_blob: Callable[[str], bytes | None],
) -> ApplyPlan:
    known = {c.path for c in changes} | {b.path for b in binaries}
    if only is not None:
        unknown = sorted(set(only) - known)
        if unknown:
            raise ApplyRefused(
                f"not changed by this attempt: {', '.join(unknown)}; "
                f"changed files are: {', '.join(sorted(known)) or 'none'}"
            )
    wanted = set(only) if only is not None else known
    plan = ApplyPlan()
    for change in changes:
        if change.path not in wanted:
            continue
        conflict = _conflict(change, current)
        if conflict:
            plan.conflicts.append(conflict)
            continue
        plan.changes.append(change)
        source = change.old_path or change.path
        state = current(source)
        if change.change != "added":
            plan.versions[path_to_uri(root, source)] = state.version
    for binary in binaries:
        if binary.path not in wanted:
            continue
        target = current(binary.path)
        if binary.change == "added" and target.exists:
            plan.conflicts.append(f"{binary.path}: already exists in the workspace")
            continue
        plan.binary_writes.append(
            (binary.path, None if binary.change == "deleted" else new_blob(binary.path))
        )
    return plan


def _conflict(change: FileChange, current: Callable[[str], CurrentFile]) -> str | None:
    if change.change == "added":
        state = current(change.path)
        if state.exists and state.text != change.new_text:
            return f"{change.path}: a different file was created there since the task started"
        return None
    source = change.old_path or change.path
    state = current(source)
    if not state.exists:
        return f"{source}: deleted in the workspace since the task started"
    if state.text != change.base_text:
        if change.change == "modified" and state.text == change.new_text:
            return f"{source}: already has this change (applied before?)"
        return f"{source}: changed in the workspace since the task started"
    if change.change == "renamed" and current(change.path).exists:
        return f"{change.path}: rename target already exists in the workspace"
    return None
