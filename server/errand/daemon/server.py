"""errand's daemon: one process per user and data folder that owns the engine, serves
every front end over a Unix socket, and goes on when they close.

Each connection is checked before anything is read from it: a peer of another uid
(``SO_PEERCRED``) is refused. Frames are bounded (see :mod:`errand.daemon.framing`);
a garbage or oversized frame ends that connection only. Requests run concurrently;
notifications (``errand/taskChanged``, ``errand/taskLog``) reach every connection that
said hello. The daemon exits once no attempt runs and no front end has been connected
for ``ERRAND_DAEMON_IDLE_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import sys
import time
from typing import Any

from errand import __version__
from errand.config.settings import Settings
from errand.daemon import handlers
from errand.daemon.framing import FramingError, frame, read_frame
from errand.daemon.lifecycle import private_dir, socket_path
from errand.engine.attempt import ModelFactory
from errand.engine.engine import TaskEngine
from errand.engine.owner import DataFolderBusy
from errand.engine.state import now_iso
from errand.wire import daemon as d
from errand.wire import protocol as p

log = logging.getLogger(__name__)

MAX_PENDING_BYTES = 64 << 20
"""A front end that lets this much of its notifications pile up unread is dropped."""


class Connection:
    def __init__(self, daemon: Daemon, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.daemon = daemon
        self.reader = reader
        self.writer = writer
        self.said_hello = False
        self.client = "?"
        self._pending = 0
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._requests: set[asyncio.Task[None]] = set()

    def send(self, message: dict[str, Any]) -> None:
        data = frame(message)
        self._pending += len(data)
        if self._pending > MAX_PENDING_BYTES:
            log.warning("dropping a front end (%s) that does not read its messages", self.client)
            self.close()
            return
        self._queue.put_nowait(data)

    def notify(self, method: str, params: Any) -> None:
        if self.said_hello:
            self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def run(self) -> None:
        writer = asyncio.create_task(self._write())
        try:
            while True:
                message = await read_frame(self.reader, self.daemon.settings.max_frame_bytes)
                if message is None:
                    break
                task = asyncio.create_task(self._answer(message))
                self._requests.add(task)
                task.add_done_callback(self._requests.discard)
        except FramingError as exc:
            log.info("closing a connection (%s): %s", self.client, exc)
        except (ConnectionError, OSError) as exc:
            log.info("connection (%s) lost: %s", self.client, exc)
        finally:
            self.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer, 5)
            self.writer.close()

    async def _write(self) -> None:
        while True:
            data = await self._queue.get()
            if data is None:
                return
            self._pending -= len(data)
            try:
                self.writer.write(data)
                await self.writer.drain()
            except (ConnectionError, OSError):
                return

    async def _answer(self, message: dict[str, Any]) -> None:
        msg_id = message.get("id")
        method = message.get("method")
        if msg_id is None or not isinstance(method, str):
            return  # a notification or a stray answer: front ends send neither
        if not self.said_hello and method not in (d.HELLO, d.STATUS, d.STOP):
            reply = handlers.error(msg_id, handlers.INVALID_REQUEST, "say errand/hello first")
        else:
            reply = await handlers.answer(self, msg_id, method, message.get("params"))
        self.send(reply)


class Daemon:
    def __init__(self, settings: Settings, model_factory: ModelFactory) -> None:
        self.settings = settings
        self.engine = TaskEngine(settings, model_factory=model_factory, listener=self)
        self.connections: set[Connection] = set()
        self.socket = socket_path(self.engine.paths)
        self.started_at = now_iso()
        self._started = time.monotonic()
        self._stop = asyncio.Event()
        self._idle_since = time.monotonic()

    # --- the engine's listener -----------------------------------------------------

    def task_changed(self, summary: p.TaskSummary, removed: bool = False) -> None:
        params = p.to_wire(p.TaskChanged(task=summary, removed=removed))
        for connection in list(self.connections):
            connection.notify(p.NOTIFY_TASK_CHANGED, params)

    def task_log(self, entry: p.TaskLog) -> None:
        params = p.to_wire(entry)
        for connection in list(self.connections):
            connection.notify(p.NOTIFY_TASK_LOG, params)

    # --- life ----------------------------------------------------------------------

    async def run(self) -> None:
        """Take the data folder, listen, and serve until stopped or idle."""
        await self.engine.start()  # takes the owner lock: DataFolderBusy when it can't
        private_dir(self.socket.parent)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()  # a dead owner's: the lock is ours now
        server = await asyncio.start_unix_server(self._accept, path=str(self.socket))
        os.chmod(self.socket, 0o600)
        log.info(
            "errand daemon %s serving %s on %s", __version__, self.settings.data_dir, self.socket
        )
        idle = asyncio.create_task(self._exit_when_idle())
        try:
            await self._stop.wait()
        finally:
            idle.cancel()
            server.close()
            for connection in list(self.connections):
                connection.close()
            with contextlib.suppress(FileNotFoundError):
                self.socket.unlink()
            await self.engine.shutdown()
            log.info("errand daemon stopped")

    def stop(self) -> None:
        self._stop.set()

    def running_attempts(self) -> int:
        return sum(
            1
            for task in self.engine.list_tasks()
            if task.status not in p.TERMINAL_STATUSES
            for attempt in self.engine.get_task(task.task_id).attempts
            if attempt.status not in p.TERMINAL_STATUSES
        )

    def status(self) -> d.StatusResult:
        return d.StatusResult(
            pid=os.getpid(),
            version=__version__,
            protocol=d.PROTOCOL_VERSION,
            socket=str(self.socket),
            data_dir=str(self.settings.data_dir),
            started_at=self.started_at,
            uptime_s=round(time.monotonic() - self._started, 3),
            clients=len(self.connections),
            running_attempts=self.running_attempts(),
        )

    async def _exit_when_idle(self) -> None:
        limit = float(self.settings.daemon_idle_seconds)
        while True:
            await asyncio.sleep(min(5.0, max(0.2, limit / 4)))
            if self.connections or self.running_attempts():
                self._idle_since = time.monotonic()
            elif time.monotonic() - self._idle_since >= limit:
                log.info("no front end and no attempt for %.0fs: exiting", limit)
                self.stop()
                return

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        uid = peer_uid(writer)
        if uid != os.getuid():
            log.warning("refused a connection from uid %s", uid)
            writer.close()
            return
        connection = Connection(self, reader, writer)
        self.connections.add(connection)
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)
            self._idle_since = time.monotonic()


def peer_uid(writer: asyncio.StreamWriter) -> int | None:
    """The uid of the process at the other end of a Unix socket (``SO_PEERCRED``)."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _, uid, _ = struct.unpack("3i", raw)
    return int(uid)


def serve(settings: Settings, model_factory: ModelFactory) -> int:
    """Run the daemon in this process until it stops; the exit status."""
    try:
        asyncio.run(Daemon(settings, model_factory).run())
    except DataFolderBusy as exc:
        log.error("%s", exc)
        print(f"errand daemon: {exc}", file=sys.stderr)
        return 3
    return 0
