"""``errand.apply`` in an editor: the engine plans against the editor's open buffers, the
editor writes the text files through ``workspace/applyEdit`` (all or nothing,
version-checked), then the binary files are written and the engine is told."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from errand.frontends.lsp.workspace_edit import build_workspace_edit
from errand.wire import daemon as d
from errand.wire import protocol
from errand.wire.changes import ApplyPlan
from errand.wire.words import clip
from errand.workspace.apply import conflict_lines, plan_files, refusal, write_binaries

if TYPE_CHECKING:
    from errand.frontends.lsp.server import ErrandServer


async def apply_attempt(ls: ErrandServer, params: protocol.ApplyParams) -> protocol.ApplyResult:
    workspace_caps = ls.client_capabilities.workspace
    if not (workspace_caps and workspace_caps.apply_edit):
        return protocol.ApplyResult(
            applied=False, reason="this client does not support workspace/applyEdit"
        )
    api = await ls.require_engine()
    task = await api.get_task(params.task_id)
    ask = d.PlanParams(
        task_id=params.task_id, attempt=params.attempt, files=params.files, opened=ls.open_files()
    )
    planned = await api.plan(ask)
    plan, root = planned.plan, Path(planned.repository)
    refused = refusal(plan)
    if refused is not None:
        return protocol.ApplyResult(
            applied=False,
            conflicts=conflict_lines(plan),
            conflict_details=plan.conflicts,
            reason=refused,
        )
    if plan.changes:
        failure = await _apply_edit(ls, root, plan, task.title)
        if failure is not None:
            return protocol.ApplyResult(applied=False, reason=failure)
    await asyncio.to_thread(write_binaries, root, plan)
    await api.applied(params.task_id)
    return protocol.ApplyResult(applied=True, files=plan_files(plan), merged=plan.merged)


async def _apply_edit(ls: ErrandServer, root: Path, plan: ApplyPlan, title: str) -> str | None:
    """Send the plan's text edits to the editor; why it did not apply them, or None."""
    edit = build_workspace_edit(root, plan.changes, plan.versions)
    try:
        response = await ls.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=edit, label=f"errand: {title}")
        )
    except JsonRpcException as exc:
        return clip(f"workspace/applyEdit failed: {exc}", 500) + "; nothing was written"
    if not getattr(response, "applied", False):
        # A client may answer ``null``: that is no applied edit either.
        return (
            getattr(response, "failure_reason", None)
            or "the editor refused the edit; nothing was written"
        )
    return None
