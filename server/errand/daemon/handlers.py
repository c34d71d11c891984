"""The daemon's requests: each checks its params against the declared type, asks the
engine (through :class:`~errand.daemon.api.InProcess`) and answers with a wire struct,
or with the same JSON-RPC errors as the LSP server: InvalidParams for arguments that are
wrong, RequestFailed for a valid request the engine can't carry out now."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec

from errand import __version__
from errand.daemon.api import InProcess
from errand.engine.errors import BadArguments, EngineError
from errand.wire import daemon as d
from errand.wire import protocol as p
from errand.wire.arguments import InvalidArguments, parse_params
from errand.wire.words import clip

if TYPE_CHECKING:
    from errand.daemon.server import Connection

log = logging.getLogger(__name__)

INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REQUEST_FAILED = -32803


def error(msg_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": clip(message)}}


Handler = Callable[["Connection", InProcess, Any], Awaitable[msgspec.Struct | None]]


async def _hello(c: Connection, api: InProcess, params: d.Hello) -> msgspec.Struct:
    if params.protocol != d.PROTOCOL_VERSION:
        raise BadArguments(
            f"this daemon (errand {__version__}) speaks daemon protocol {d.PROTOCOL_VERSION}, "
            f"the front end (errand {params.version}) speaks {params.protocol}; run "
            "`errand daemon stop` once no task runs, and the next front end starts a new one"
        )
    c.said_hello, c.client = True, params.client
    daemon = c.daemon
    return d.HelloResult(
        protocol=d.PROTOCOL_VERSION,
        version=__version__,
        pid=daemon.status().pid,
        data_dir=str(daemon.settings.data_dir),
        started_at=daemon.started_at,
    )


async def _status(c: Connection, api: InProcess, params: p.Empty) -> msgspec.Struct:
    return c.daemon.status()


async def _stop(c: Connection, api: InProcess, params: d.StopParams) -> msgspec.Struct:
    running = c.daemon.running_attempts()
    if running and not params.force:
        raise EngineError(
            f"{running} attempt(s) still run; they would end as interrupted. Wait for them, "
            "or stop with force (`errand daemon stop --force`)"
        )
    c.daemon.stop()
    return p.Empty()


async def _delegate(c: Connection, api: InProcess, params: p.DelegateParams) -> msgspec.Struct:
    if not params.workspace:
        raise BadArguments("workspace: the daemon has no folder of its own; name one")
    return p.DelegateResult(task_id=await api.delegate(params))


async def _list(c: Connection, api: InProcess, params: p.ListTasksParams) -> msgspec.Struct:
    return p.ListTasksResult(tasks=await api.list_tasks())


async def _get(c: Connection, api: InProcess, params: p.TaskRef) -> msgspec.Struct:
    return p.GetTaskResult(task=await api.get_task(params.task_id))


async def _diff(c: Connection, api: InProcess, params: d.DiffParams) -> msgspec.Struct:
    return await api.get_diff(params.task_id, params.attempt)


async def _plan(c: Connection, api: InProcess, params: d.PlanParams) -> msgspec.Struct:
    return await api.plan(params)


async def _applied(c: Connection, api: InProcess, params: p.TaskRef) -> msgspec.Struct:
    await api.applied(params.task_id)
    return p.Empty()


async def _log(c: Connection, api: InProcess, params: p.GetLogParams) -> msgspec.Struct:
    return p.GetLogResult(entries=await api.logs(params.task_id, params.attempt))


async def _cancel(c: Connection, api: InProcess, params: p.TaskRef) -> msgspec.Struct:
    await api.cancel(params.task_id)
    return p.Empty()


async def _discard(c: Connection, api: InProcess, params: p.TaskRef) -> msgspec.Struct:
    await api.discard(params.task_id)
    return p.Empty()


async def _follow_up(c: Connection, api: InProcess, params: p.FollowUpParams) -> msgspec.Struct:
    return p.DelegateResult(task_id=await api.follow_up(params.task_id, params.prompt))


async def _resume(c: Connection, api: InProcess, params: p.TaskRef) -> msgspec.Struct:
    return p.DelegateResult(task_id=await api.resume(params.task_id))


async def _branch(c: Connection, api: InProcess, params: p.CreateBranchParams) -> msgspec.Struct:
    return await api.create_branch(params)


async def _wait(c: Connection, api: InProcess, params: p.TaskRef) -> msgspec.Struct:
    return d.WaitResult(task=await api.wait(params.task_id))


HANDLERS: dict[str, tuple[type[msgspec.Struct], Handler]] = {
    d.HELLO: (d.Hello, _hello),
    d.STATUS: (p.Empty, _status),
    d.STOP: (d.StopParams, _stop),
    p.CMD_DELEGATE: (p.DelegateParams, _delegate),
    p.CMD_LIST_TASKS: (p.ListTasksParams, _list),
    p.CMD_GET_TASK: (p.TaskRef, _get),
    p.CMD_GET_LOG: (p.GetLogParams, _log),
    p.CMD_CANCEL: (p.TaskRef, _cancel),
    p.CMD_DISCARD: (p.TaskRef, _discard),
    p.CMD_FOLLOW_UP: (p.FollowUpParams, _follow_up),
    p.CMD_CREATE_BRANCH: (p.CreateBranchParams, _branch),
    p.CMD_RESUME: (p.TaskRef, _resume),
    d.DIFF: (d.DiffParams, _diff),
    d.PLAN: (d.PlanParams, _plan),
    d.APPLIED: (p.TaskRef, _applied),
    d.WAIT: (p.TaskRef, _wait),
}


async def answer(c: Connection, msg_id: Any, method: str, params: Any) -> dict[str, Any]:
    """The reply to one request."""
    known = HANDLERS.get(method)
    if known is None:
        return error(
            msg_id, METHOD_NOT_FOUND, f"errand's daemon has no method {clip(method, 80)!r}"
        )
    kind, fn = known
    try:
        parsed = parse_params(() if params is None else (params,), kind, method)
        result = await fn(c, InProcess(c.daemon.engine), parsed)
    except InvalidArguments as exc:
        return error(msg_id, INVALID_PARAMS, str(exc))
    except BadArguments as exc:
        return error(msg_id, INVALID_PARAMS, f"{method}: {exc}")
    except EngineError as exc:
        return error(msg_id, REQUEST_FAILED, f"{method}: {exc}")
    except Exception as exc:
        log.exception("%s failed", method)
        return error(
            msg_id, INTERNAL_ERROR, f"{method}: internal error: {type(exc).__name__}: {exc}"
        )
    body = None if result is None else p.to_wire(result)
    return {"jsonrpc": "2.0", "id": msg_id, "result": body}
