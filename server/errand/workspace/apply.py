"""Decide whether an attempt's changes can be applied to the user's files now.

For each file, the current content (the open buffer if the editor has it open, else
the disk) is compared with the snapshot the task started from. Unchanged: the
attempt's version applies as is. Changed meanwhile: a three-way merge (``git
merge-file``) of the user's version, the snapshot and the attempt's version; a clean
merge applies, an overlapping one is a conflict. A plan with any conflict is refused
whole: nothing is written. The user's edits are never overwritten.

The editor writes text files (through ``workspace/applyEdit``); :func:`write_binaries`
writes the binary ones after it, and :func:`write_plan` writes everything for a front
end without an editor. They are the only writers of the user's files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from errand.wire.changes import ApplyPlan, FileChange, OpenFile
from errand.wire.protocol import Conflict, FileStat
from errand.workspace import git


@dataclass(frozen=True, slots=True)
class CurrentFile:
    exists: bool
    text: str | None = None
    """Decoded text (UTF-8, surrogateescape) of the buffer or the file."""
    version: int | None = None
    """The open buffer's version, when the editor has the file open."""


class ApplyRefused(ValueError):
    pass


def plan_apply(
    root: Path,
    changes: list[FileChange],
    binaries: list[FileStat],
    only: list[str] | None,
    current: Callable[[str], CurrentFile],
    base_blob: Callable[[str], bytes | None],
    new_blob: Callable[[str], bytes | None],
) -> ApplyPlan:
    known = {c.path for c in changes} | {b.path for b in binaries}
    if only is not None:
        unknown = sorted(set(only) - known)
        if unknown:
            raise ApplyRefused(
                f"files not changed by this attempt: {', '.join(unknown)}; "
                f"changed files are: {', '.join(sorted(known)) or 'none'}"
            )
    wanted = set(only) if only is not None else known
    plan = ApplyPlan()
    for change in changes:
        if change.path not in wanted:
            continue
        outcome = _reconcile(change, current)
        if outcome is None:
            plan.already.append(change.path)
            continue
        if isinstance(outcome, Conflict):
            plan.conflicts.append(outcome)
            continue
        if outcome is not change:
            plan.merged.append(change.path)
        plan.changes.append(outcome)
        source = change.old_path or change.path
        if change.change != "added":
            plan.versions[source] = current(source).version
    for binary in binaries:
        if binary.path not in wanted:
            continue
        if _binary_already(binary, current, new_blob):
            plan.already.append(binary.path)
            continue
        conflict = _binary_conflict(binary, current, base_blob)
        if conflict:
            plan.conflicts.append(conflict)
            continue
        plan.binary_writes.append(
            (binary.path, None if binary.change == "deleted" else new_blob(binary.path))
        )
    return plan


def _reconcile(
    change: FileChange, current: Callable[[str], CurrentFile]
) -> FileChange | Conflict | None:
    """The change to apply now, a conflict, or None when the file is already as the
    attempt leaves it."""
    if _already(change, current):
        return None
    if change.change == "added":
        state = current(change.path)
        if state.exists and state.text != change.new_text:
            return Conflict(
                path=change.path, reason="a different file was created there since the task started"
            )
        return change
    source = change.old_path or change.path
    state = current(source)
    if not state.exists:
        return Conflict(path=source, reason="deleted in the workspace since the task started")
    if change.change == "renamed" and current(change.path).exists:
        return Conflict(path=change.path, reason="rename target already exists in the workspace")
    if state.text == change.base_text:
        return change
    if change.change == "deleted":
        return Conflict(
            path=source,
            reason="changed in the workspace since the task started, and the task deletes it",
        )
    assert state.text is not None and change.base_text is not None
    assert change.new_text is not None
    merged = merge_texts(state.text, change.base_text, change.new_text)
    if merged is None:
        return Conflict(
            path=source,
            reason="changed in the workspace since the task started, "
            "and the changes overlap (three-way merge conflict)",
        )
    return FileChange(
        path=change.path,
        change=change.change,
        old_path=change.old_path,
        base_text=state.text,
        new_text=merged,
    )


def _already(change: FileChange, current: Callable[[str], CurrentFile]) -> bool:
    target = current(change.path)
    if change.change == "deleted":
        return not target.exists
    if change.change == "renamed" and current(change.old_path or change.path).exists:
        return False
    return target.exists and target.text == change.new_text


def _binary_already(
    binary: FileStat,
    current: Callable[[str], CurrentFile],
    new_blob: Callable[[str], bytes | None],
) -> bool:
    target = current(binary.path)
    if binary.change == "deleted":
        return not target.exists
    if binary.change == "renamed" and current(binary.old_path or binary.path).exists:
        return False
    new = new_blob(binary.path) if target.exists else None
    return new is not None and target.text == new.decode("utf-8", "surrogateescape")


def _binary_conflict(
    binary: FileStat,
    current: Callable[[str], CurrentFile],
    base_blob: Callable[[str], bytes | None],
) -> Conflict | None:
    target = current(binary.path)
    if binary.change == "added":
        exists = Conflict(path=binary.path, reason="already exists in the workspace")
        return exists if target.exists else None
    source = binary.old_path or binary.path
    base = base_blob(source)
    state = current(source)
    expected = None if base is None else base.decode("utf-8", "surrogateescape")
    if not state.exists or state.text != expected:
        return Conflict(path=source, reason="changed in the workspace since the task started")
    return None


def merge_texts(current: str, base: str, new: str) -> str | None:
    """Three-way merge with ``git merge-file``; None when the changes overlap."""
    clean, merged = git.merge_file(
        current.encode("utf-8", "surrogateescape"),
        base.encode("utf-8", "surrogateescape"),
        new.encode("utf-8", "surrogateescape"),
    )
    return merged.decode("utf-8", "surrogateescape") if clean else None


def read_current(
    root: Path, opened: Mapping[str, OpenFile] | None = None
) -> Callable[[str], CurrentFile]:
    """What the user has now: the open buffer (by absolute path) when the editor has
    the file open, else the disk."""

    def current(rel: str) -> CurrentFile:
        path = root / rel
        buffer = opened.get(str(path)) if opened else None
        if buffer is not None:
            return CurrentFile(exists=True, text=buffer.text, version=buffer.version)
        if path.is_symlink() or not path.is_file():
            return CurrentFile(exists=path.exists() or path.is_symlink())
        return CurrentFile(exists=True, text=path.read_bytes().decode("utf-8", "surrogateescape"))

    return current


def write_binaries(root: Path, plan: ApplyPlan) -> None:
    """Write (or delete) the plan's binary files, after the editor applied its edit."""
    for rel, data in plan.binary_writes:
        target = root / rel
        if data is None:
            target.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def write_plan(root: Path, plan: ApplyPlan) -> None:
    """Write the whole plan to disk, for a front end that has no editor."""
    for change in plan.changes:
        if change.old_path:
            (root / change.old_path).unlink()
        target = root / change.path
        if change.new_text is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(change.new_text.encode("utf-8", "surrogateescape"))
    write_binaries(root, plan)


def plan_files(plan: ApplyPlan) -> list[str]:
    """The files the plan writes."""
    return [c.path for c in plan.changes] + [path for path, _ in plan.binary_writes]


def conflict_lines(plan: ApplyPlan) -> list[str]:
    """Each conflict in one line, ``path: reason``."""
    return [f"{c.path}: {c.reason}" for c in plan.conflicts]


def refusal(plan: ApplyPlan) -> str | None:
    """Why nothing should be written, or None when the plan can be applied."""
    if plan.conflicts:
        return (
            "files changed in the workspace conflict with the task's changes; nothing was written"
        )
    if not plan.changes and not plan.binary_writes:
        if plan.already:
            return (
                "every change of this attempt is already in the workspace; "
                "nothing was left to apply"
            )
        return "the attempt changed no files"
    return None
