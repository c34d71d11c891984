"""The ``workspace/executeCommand`` handlers: each converts its arguments, delegates to
the engine and converts back. The engine's errors become JSON-RPC errors here:
:class:`~errand.engine.errors.BadArguments` is InvalidParams, any other
:class:`~errand.engine.errors.EngineError` is RequestFailed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from errand.engine.errors import BadArguments, EngineError
from errand.frontends.lsp.apply import apply_attempt
from errand.frontends.lsp.messages import REQUEST_FAILED
from errand.frontends.lsp.workspace_edit import build_workspace_edit, workspace_edit_to_json
from errand.wire import daemon as d
from errand.wire import protocol as p
from errand.wire.arguments import InvalidArguments, parse_params
from errand.wire.words import clip
from errand.workspace.apply import conflict_lines

if TYPE_CHECKING:
    from errand.frontends.lsp.server import ErrandServer

S = TypeVar("S", bound=msgspec.Struct)
MAX_ERROR = 2000
"""Characters of a command's error message."""


class JsonRpcRequestFailed(JsonRpcException):
    CODE = REQUEST_FAILED  # LSP's RequestFailed
    MESSAGE = "Request Failed"


async def delegate(ls: ErrandServer, params: p.DelegateParams) -> msgspec.Struct:
    api = await ls.require_engine()
    if not params.workspace:
        folder = ls.default_folder()
        if folder is None:
            raise BadArguments(
                "no workspace folder: open a folder in the editor or pass `workspace`"
            )
        params = msgspec.structs.replace(params, workspace=str(folder))
    return p.DelegateResult(task_id=await api.delegate(params))


async def list_tasks(ls: ErrandServer, params: p.ListTasksParams) -> msgspec.Struct:
    tasks = await (await ls.require_engine()).list_tasks()
    return p.ListTasksResult(tasks=[t for t in tasks if ls.shows(t)])


async def get_task(ls: ErrandServer, params: p.TaskRef) -> msgspec.Struct:
    return p.GetTaskResult(task=await (await ls.require_engine()).get_task(params.task_id))


async def get_diff(ls: ErrandServer, params: p.GetDiffParams) -> msgspec.Struct:
    api = await ls.require_engine()
    diff = await api.get_diff(params.task_id, params.attempt)
    ask = d.PlanParams(
        task_id=params.task_id, attempt=diff.attempt, opened=ls.open_files(), preview=True
    )
    planned = await api.plan(ask)
    plan = planned.plan
    edit = build_workspace_edit(Path(planned.repository), plan.changes, plan.versions)
    return p.GetDiffResult(
        diff=diff.diff,
        edit=workspace_edit_to_json(edit),
        attempt=diff.attempt,
        files=diff.files,
        conflicts=conflict_lines(plan),
        conflict_details=plan.conflicts,
        merged=plan.merged,
    )


async def get_log(ls: ErrandServer, params: p.GetLogParams) -> msgspec.Struct:
    api = await ls.require_engine()
    return p.GetLogResult(entries=await api.logs(params.task_id, params.attempt))


async def apply(ls: ErrandServer, params: p.ApplyParams) -> msgspec.Struct:
    return await apply_attempt(ls, params)


async def cancel(ls: ErrandServer, params: p.TaskRef) -> msgspec.Struct:
    await (await ls.require_engine()).cancel(params.task_id)
    return p.Empty()


async def discard(ls: ErrandServer, params: p.TaskRef) -> msgspec.Struct:
    await (await ls.require_engine()).discard(params.task_id)
    return p.Empty()


async def follow_up(ls: ErrandServer, params: p.FollowUpParams) -> msgspec.Struct:
    api = await ls.require_engine()
    return p.DelegateResult(task_id=await api.follow_up(params.task_id, params.prompt))


async def resume(ls: ErrandServer, params: p.TaskRef) -> msgspec.Struct:
    return p.DelegateResult(task_id=await (await ls.require_engine()).resume(params.task_id))


async def create_branch(ls: ErrandServer, params: p.CreateBranchParams) -> msgspec.Struct:
    return await (await ls.require_engine()).create_branch(params)


Handler = Callable[["ErrandServer", Any], Awaitable[msgspec.Struct]]

HANDLERS: dict[str, Handler] = {
    p.CMD_DELEGATE: delegate,
    p.CMD_LIST_TASKS: list_tasks,
    p.CMD_GET_TASK: get_task,
    p.CMD_GET_DIFF: get_diff,
    p.CMD_GET_LOG: get_log,
    p.CMD_APPLY: apply,
    p.CMD_CANCEL: cancel,
    p.CMD_DISCARD: discard,
    p.CMD_FOLLOW_UP: follow_up,
    p.CMD_CREATE_BRANCH: create_branch,
    p.CMD_RESUME: resume,
}


def command(name: str, fn: Handler) -> Callable[..., Awaitable[Any]]:
    """The pygls handler for command ``name``: arguments checked against the command's
    declared type, errors said as JSON-RPC errors that name the command."""
    kind = p.COMMAND_PARAMS[name]

    # pygls reads this function's annotations at run time: no names that exist only
    # for the type checker.
    async def handler(ls: Any, *args: Any) -> Any:
        try:
            params = parse_params(args, kind, name)
        except InvalidArguments as exc:
            raise JsonRpcInvalidParams(message=clip(str(exc), MAX_ERROR)) from None
        try:
            result = await fn(ls, params)
        except BadArguments as exc:
            raise JsonRpcInvalidParams(message=clip(f"{name}: {exc}", MAX_ERROR)) from None
        except EngineError as exc:
            raise JsonRpcRequestFailed(message=clip(f"{name}: {exc}", MAX_ERROR)) from None
        return p.to_wire(result)

    return handler
