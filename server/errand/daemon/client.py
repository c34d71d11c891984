"""What the front ends use to speak with errand's daemon: :class:`DaemonClient`, an
:class:`~errand.daemon.api.EngineAPI` over the daemon's socket.

:func:`connect` finds the daemon of a data folder, or starts one, detached (the
``-remote=auto`` behaviour). When the daemon goes away, every request in flight fails
with :class:`DaemonLost` and the ``on_lost`` callbacks run, so that a front end can say
so and connect again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from errand import __version__
from errand.config.paths import DataPaths
from errand.daemon import lifecycle
from errand.daemon.framing import FramingError, frame, read_frame
from errand.engine.errors import BadArguments, EngineError
from errand.engine.journal import EngineListener
from errand.wire import daemon as d
from errand.wire import protocol as p

log = logging.getLogger(__name__)
S = TypeVar("S", bound=msgspec.Struct)

INVALID_PARAMS = -32602
MAX_FRAME = 256 << 20
"""The daemon's answers may be large (a whole diff, a whole log)."""


class DaemonLost(EngineError):
    """The daemon went away while a request was in flight."""


class DaemonClient:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, socket: Path
    ) -> None:
        self.socket = socket
        self.hello: d.HelloResult | None = None
        self.listeners: list[EngineListener] = []
        self.on_lost: list[Callable[[], None]] = []
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._closed = False
        self._task = asyncio.create_task(self._read(), name="errand-daemon-client")

    # --- transport -----------------------------------------------------------------

    async def request(self, method: str, params: msgspec.Struct | None = None) -> Any:
        if self._closed:
            raise DaemonLost("errand's daemon is not connected")
        msg_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        body = p.to_wire(params) if params is not None else {}
        self._writer.write(
            frame({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": body})
        )
        try:
            await self._writer.drain()
            return await future
        finally:
            self._pending.pop(msg_id, None)

    async def call(self, method: str, params: msgspec.Struct | None, kind: type[S]) -> S:
        return msgspec.convert(await self.request(method, params), kind)

    async def _read(self) -> None:
        try:
            while True:
                message = await read_frame(self._reader, MAX_FRAME)
                if message is None:
                    break
                self._dispatch(message)
        except (FramingError, ConnectionError, OSError) as exc:
            log.warning("lost errand's daemon: %s", exc)
        finally:
            self._lose()

    def _dispatch(self, message: dict[str, Any]) -> None:
        msg_id = message.get("id")
        if isinstance(msg_id, int) and msg_id in self._pending:
            future = self._pending[msg_id]
            if future.done():
                return
            if "error" in message:
                err = message["error"] or {}
                text = str(err.get("message", "the daemon refused the request"))
                future.set_exception(
                    (BadArguments if err.get("code") == INVALID_PARAMS else EngineError)(text)
                )
            else:
                future.set_result(message.get("result"))
            return
        method, params = message.get("method"), message.get("params")
        if method == p.NOTIFY_TASK_CHANGED:
            changed = msgspec.convert(params, p.TaskChanged)
            for listener in self.listeners:
                listener.task_changed(changed.task, changed.removed)
        elif method == p.NOTIFY_TASK_LOG:
            entry = msgspec.convert(params, p.TaskLog)
            for listener in self.listeners:
                listener.task_log(entry)

    def _lose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(DaemonLost("errand's daemon stopped while answering"))
        self._writer.close()
        for callback in self.on_lost:
            callback()

    @property
    def connected(self) -> bool:
        return not self._closed

    # --- EngineAPI -----------------------------------------------------------------

    def add_listener(self, listener: EngineListener) -> None:
        self.listeners.append(listener)

    async def delegate(self, params: p.DelegateParams) -> str:
        return (await self.call(p.CMD_DELEGATE, params, p.DelegateResult)).task_id

    async def list_tasks(self) -> list[p.TaskSummary]:
        return (await self.call(p.CMD_LIST_TASKS, p.ListTasksParams(), p.ListTasksResult)).tasks

    async def get_task(self, task_id: str) -> p.Task:
        return (await self.call(p.CMD_GET_TASK, p.TaskRef(task_id=task_id), p.GetTaskResult)).task

    async def get_diff(self, task_id: str, attempt: int | None) -> d.DiffResult:
        return await self.call(d.DIFF, d.DiffParams(task_id=task_id, attempt=attempt), d.DiffResult)

    async def plan(self, params: d.PlanParams) -> d.PlanResult:
        return await self.call(d.PLAN, params, d.PlanResult)

    async def applied(self, task_id: str) -> None:
        await self.request(d.APPLIED, p.TaskRef(task_id=task_id))

    async def logs(self, task_id: str, attempt: int | None) -> list[p.TaskLog]:
        params = p.GetLogParams(task_id=task_id, attempt=attempt)
        return (await self.call(p.CMD_GET_LOG, params, p.GetLogResult)).entries

    async def cancel(self, task_id: str) -> None:
        await self.request(p.CMD_CANCEL, p.TaskRef(task_id=task_id))

    async def discard(self, task_id: str) -> None:
        await self.request(p.CMD_DISCARD, p.TaskRef(task_id=task_id))

    async def follow_up(self, task_id: str, prompt: str) -> str:
        params = p.FollowUpParams(task_id=task_id, prompt=prompt)
        return (await self.call(p.CMD_FOLLOW_UP, params, p.DelegateResult)).task_id

    async def resume(self, task_id: str) -> str:
        params = p.TaskRef(task_id=task_id)
        return (await self.call(p.CMD_RESUME, params, p.DelegateResult)).task_id

    async def create_branch(self, params: p.CreateBranchParams) -> p.CreateBranchResult:
        return await self.call(p.CMD_CREATE_BRANCH, params, p.CreateBranchResult)

    async def wait(self, task_id: str) -> p.Task:
        return (await self.call(d.WAIT, p.TaskRef(task_id=task_id), d.WaitResult)).task

    async def status(self) -> d.StatusResult:
        return await self.call(d.STATUS, p.Empty(), d.StatusResult)

    async def stop(self, *, force: bool = False) -> None:
        await self.request(d.STOP, d.StopParams(force=force))

    async def close(self) -> None:
        """Close the connection; the daemon and its attempts go on."""
        self.on_lost.clear()
        self._lose()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


class OtherVersion(Exception):
    """The daemon speaks another protocol version."""

    def __init__(self, status: d.StatusResult) -> None:
        super().__init__(status.version)
        self.status = status


async def open_client(socket: Path, client: d.FrontEnd) -> DaemonClient:
    """Connect to the daemon listening on ``socket`` and say hello; OtherVersion when
    it speaks another protocol version."""
    reader, writer = await asyncio.open_unix_connection(str(socket), limit=1 << 16)
    connection = DaemonClient(reader, writer, socket)
    try:
        status = await connection.status()
        if status.protocol != d.PROTOCOL_VERSION:
            raise OtherVersion(status)
        hello = d.Hello(protocol=d.PROTOCOL_VERSION, version=__version__, client=client)
        connection.hello = await connection.call(d.HELLO, hello, d.HelloResult)
    except BaseException:
        await connection.close()
        raise
    return connection


async def probe(paths: DataPaths) -> DaemonClient | None:
    """A connection to the daemon of ``paths`` that only asks its status or stops it
    (whatever its version: no hello is said), or None when none answers."""
    socket = lifecycle.socket_path(paths)
    try:
        reader, writer = await asyncio.open_unix_connection(str(socket))
    except (FileNotFoundError, ConnectionRefusedError):
        return None
    return DaemonClient(reader, writer, socket)


async def _replace(socket: Path, status: d.StatusResult) -> None:
    """Stop a daemon of another version that runs no attempt; refuse when it runs some."""
    if status.running_attempts:
        raise lifecycle.DaemonError(
            f"errand's daemon (pid {status.pid}) is errand {status.version}, which this "
            f"errand {__version__} can't speak to, and it still runs "
            f"{status.running_attempts} attempt(s); once they end, run `errand daemon stop`"
        )
    log.warning(
        "replacing errand's daemon %s (pid %d) by %s", status.version, status.pid, __version__
    )
    reader, writer = await asyncio.open_unix_connection(str(socket))
    old = DaemonClient(reader, writer, socket)
    try:
        await old.stop()
    finally:
        await old.close()
    for _ in range(300):
        if not socket.exists():
            return
        await asyncio.sleep(0.05)


async def connect(
    paths: DataPaths,
    client: d.FrontEnd,
    *,
    start: bool = True,
    env: Mapping[str, str] | None = None,
) -> DaemonClient | None:
    """The daemon of ``paths``; started (detached, with ``env`` on top of this
    process's environment) when none answers and ``start``. None when none answers
    and not ``start``."""
    socket = lifecycle.socket_path(paths)
    try:
        return await open_client(socket, client)
    except OtherVersion as exc:
        if not start:
            return None  # it owns the data folder; only a front end that starts one replaces it
        await _replace(socket, exc.status)
    except (FileNotFoundError, ConnectionRefusedError):
        if not start:
            return None
    log_file = paths.root / "daemon.err"
    process = lifecycle.start_detached(paths.root, log_file, env)
    await lifecycle.wait_for_socket(socket, process, log_file)
    return await open_client(socket, client)
