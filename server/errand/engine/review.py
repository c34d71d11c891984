"""What a finished attempt offers the user: the preview, the plan Apply writes, and a
branch. Each reads the attempt's recorded result from errand's mirror."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from errand.engine.errors import BadArguments, EngineError
from errand.engine.state import AttemptState, TaskState, default_branch_name
from errand.wire.changes import ApplyPlan
from errand.workspace.apply import ApplyRefused, CurrentFile, plan_apply
from errand.workspace.branch import (
    BadBranchName,
    BranchError,
    BranchResult,
    check_branch_name,
    create_branch,
)
from errand.workspace.git import GitError
from errand.workspace.results import load_changes, read_blob
from errand.workspace.snapshot import Snapshot


def _completed(state: TaskState, target: AttemptState, what: str) -> tuple[Snapshot, str]:
    if target.info.status != "completed":
        raise EngineError(
            f"attempt {target.info.attempt} of task {state.task_id} is {target.info.status}; "
            f"only a completed attempt can {what}"
        )
    snapshot, tree = state.record.snapshot, target.result_tree
    if snapshot is None or tree is None:
        raise EngineError(f"task {state.task_id} has no recorded result")
    return snapshot, tree


async def preview(
    state: TaskState, target: AttemptState, current: Callable[[str], CurrentFile]
) -> ApplyPlan:
    """What Apply would write now, for a completed attempt (merged with the user's edits,
    conflicts left out and listed); for any other, its changes against the snapshot."""
    if target.info.status == "completed":
        return await plan(state, target, None, current)
    snapshot = state.record.snapshot
    if snapshot is None or target.result_tree is None:
        return ApplyPlan()
    changes = await asyncio.to_thread(
        load_changes, snapshot.mirror, snapshot.tree, target.result_tree, target.info.files
    )
    return ApplyPlan(changes=changes)


async def plan(
    state: TaskState,
    target: AttemptState,
    files: list[str] | None,
    current: Callable[[str], CurrentFile],
) -> ApplyPlan:
    snapshot, tree = _completed(state, target, "be applied")
    info = target.info

    def make() -> ApplyPlan:
        changes = load_changes(snapshot.mirror, snapshot.tree, tree, info.files)
        return plan_apply(
            snapshot.repo_root,
            changes,
            [f for f in info.files if f.binary],
            files,
            current,
            lambda path: read_blob(snapshot.mirror, snapshot.tree, path),
            lambda path: read_blob(snapshot.mirror, tree, path),
        )

    try:
        return await asyncio.to_thread(make)
    except ApplyRefused as exc:
        raise BadArguments(str(exc)) from None


async def branch(state: TaskState, target: AttemptState, name: str | None) -> BranchResult:
    """Commit an attempt's changes onto HEAD as a new local branch."""
    snapshot, tree = _completed(state, target, "become a branch")
    if not target.info.files:
        raise EngineError(f"attempt {target.info.attempt} of task {state.task_id} changed no files")
    name = name or default_branch_name(state.record.title, state.task_id)
    try:
        check_branch_name(name)
    except BadBranchName as exc:
        raise BadArguments(str(exc)) from None
    message = f"{state.record.title}\n\n{target.info.report or ''}".strip() + "\n"
    try:
        return await asyncio.to_thread(
            lambda: create_branch(
                repo_root=snapshot.repo_root,
                mirror=snapshot.mirror,
                snapshot_commit=snapshot.commit,
                result_tree=tree,
                head=snapshot.head,
                branch=name,
                message=message,
            )
        )
    except BranchError as exc:
        raise EngineError(str(exc)) from None
    except GitError as exc:
        raise EngineError(f"git refused to create the branch: {exc}") from None
