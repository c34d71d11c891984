"""``errand.apply`` in an editor: the engine plans, the editor writes the text files
through ``workspace/applyEdit`` (all or nothing, version-checked), then the binary files
are written."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from errand.engine.engine import TaskEngine
from errand.frontends.lsp.workspace_edit import build_workspace_edit
from errand.wire import protocol
from errand.wire.words import clip
from errand.workspace.apply import read_current, write_binaries

if TYPE_CHECKING:
    from errand.frontends.lsp.server import ErrandServer


async def apply_attempt(
    ls: ErrandServer, engine: TaskEngine, params: protocol.ApplyParams
) -> protocol.ApplyResult:
    workspace_caps = ls.client_capabilities.workspace
    if not (workspace_caps and workspace_caps.apply_edit):
        return protocol.ApplyResult(
            applied=False, reason="this client does not support workspace/applyEdit"
        )
    task = engine.get_task(params.task_id)
    root = Path(task.repository or ".")
    current = read_current(root, ls.current_files())
    plan = await engine.plan_apply(params.task_id, params.attempt, params.files, current)
    refusal = plan.refusal()
    if refusal is not None:
        return protocol.ApplyResult(
            applied=False,
            conflicts=plan.conflict_lines(),
            conflict_details=plan.conflicts,
            reason=refusal,
        )
    if plan.changes:
        edit = build_workspace_edit(root, plan.changes, plan.versions)
        try:
            response = await ls.workspace_apply_edit_async(
                types.ApplyWorkspaceEditParams(edit=edit, label=f"errand: {task.title}")
            )
        except JsonRpcException as exc:
            return protocol.ApplyResult(
                applied=False,
                reason=clip(f"workspace/applyEdit failed: {exc}", 500) + "; nothing was written",
            )
        if not getattr(response, "applied", False):
            # A client may answer ``null``: that is no applied edit either.
            return protocol.ApplyResult(
                applied=False,
                reason=getattr(response, "failure_reason", None)
                or "the editor refused the edit; nothing was written",
            )
    await asyncio.to_thread(write_binaries, root, plan)
    await engine.mark_applied(params.task_id)
    return protocol.ApplyResult(applied=True, files=plan.files, merged=plan.merged)
