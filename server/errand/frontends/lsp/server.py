"""errand's language server: a typed pygls server whose handlers convert, delegate to the
engine and convert back (see :mod:`errand.frontends.lsp.handlers`).

The engine is the data folder's daemon, reached through
:class:`~errand.daemon.client.DaemonClient` and started when none runs, or, with
``ERRAND_DAEMON=off``, one inside this process. What belongs to LSP alone lives here:
the lifecycle, open documents and their versions, notifications, ``$/progress``. An
editor's ``shutdown`` closes the connection to the daemon and cancels nothing; when the
daemon goes away, the server says so, starts a new one and lists the tasks again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from errand import __version__
from errand.config.paths import DataPaths
from errand.config.settings import Settings, settings_env
from errand.daemon import client as daemon_client
from errand.daemon.api import EngineAPI, InProcess
from errand.engine.attempt import ModelFactory
from errand.engine.engine import TaskEngine
from errand.engine.errors import EngineError
from errand.frontends.lsp.handlers import HANDLERS, command
from errand.frontends.lsp.progress import TaskProgress
from errand.frontends.lsp.protocol import ErrandProtocol, serve_stdio
from errand.wire import protocol
from errand.wire.arguments import find_lone_surrogate
from errand.wire.changes import OpenFile
from errand.wire.protocol import TaskLog, TaskSummary
from errand.wire.words import clip

log = logging.getLogger(__name__)

RECONNECT_TRIES = 20


class ErrandServer(LanguageServer):
    protocol: ErrandProtocol

    def __init__(self, settings: Settings, model_factory: ModelFactory) -> None:
        super().__init__(name="errand", version=__version__, protocol_cls=ErrandProtocol)
        self.init_options: object = None
        self.base_settings = settings
        self.settings = settings
        self.model_factory = model_factory
        self.api: EngineAPI | None = None
        self.ready = asyncio.Event()
        self.start_error: str | None = None
        self.started = False
        """True once the first ``initialized`` notification started the engine."""
        self.task_progress = TaskProgress(self.work_done_progress, self.spawn)
        self._background: set[asyncio.Task[None]] = set()
        self._closing = False

    # --- transport -----------------------------------------------------------------

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Serve LSP on stdio through errand's bounded reader (see
        :mod:`errand.frontends.lsp.stream`) instead of pygls's."""
        self._stop_event = stop = threading.Event()
        try:
            max_frame = self.base_settings.max_frame_bytes
            serve_stdio(self.protocol, stop, self.thread_pool, max_frame, stdin, stdout)
        finally:
            self.shutdown()  # type: ignore[no-untyped-call]

    def report_server_error(self, error: Exception, source: Any) -> None:
        """pygls reports errors outside a request here (a notification handler that
        failed, say). Log them in one line; don't pop up a message in the editor for
        each: a client sending bad notifications would flood the user."""
        log.info(
            "error outside a request (%s): %s",
            getattr(source, "__name__", source),
            clip(f"{type(error).__name__}: {error}", 500),
        )

    # --- engine events -> notifications --------------------------------------------

    def task_changed(self, summary: TaskSummary, removed: bool = False) -> None:
        if not self.shows(summary):
            return
        changed = protocol.TaskChanged(task=summary, removed=removed)
        self.protocol.notify(protocol.NOTIFY_TASK_CHANGED, protocol.to_wire(changed))
        window = self.client_capabilities.window
        if window and window.work_done_progress:
            self.task_progress.update(summary)

    def task_log(self, entry: TaskLog) -> None:
        self.protocol.notify(protocol.NOTIFY_TASK_LOG, protocol.to_wire(entry))

    def shows(self, task: TaskSummary) -> bool:
        """Whether this window lists ``task``: one of its workspace folders holds the
        task's repository or lies inside it, unless every task is shown."""
        if self.settings.show_all_tasks or not task.repository:
            return True
        folders = self.folders()
        if not folders:
            return True
        repo = Path(task.repository)
        return any(f == repo or repo in f.parents or f in repo.parents for f in folders)

    def cancel_by_progress(self, token: str) -> None:
        task_id = self.task_progress.task_of(token)
        if task_id is not None and self.api is not None:
            self.spawn(self.api.cancel(task_id))

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- what the handlers need ----------------------------------------------------

    async def require_engine(self) -> EngineAPI:
        await self.ready.wait()
        if self.api is None:
            raise EngineError(f"errand could not start: {self.start_error}")
        return self.api

    def folders(self) -> list[Path]:
        folders = [uri_to_path(f.uri) for f in self.workspace.folders.values()]
        root = self.workspace.root_path
        return folders or ([Path(root)] if root else [])

    def default_folder(self) -> Path | None:
        folders = self.folders()
        return folders[0] if folders else None

    def open_files(self) -> dict[str, OpenFile]:
        """Open buffers by absolute path, captured on the loop."""
        return {
            str(uri_to_path(uri)): OpenFile(text=doc.source, version=doc.version)
            for uri, doc in self.workspace.text_documents.items()
            if uri.startswith("file:")
        }

    def say(self, kind: types.MessageType, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    # --- the engine ----------------------------------------------------------------

    async def start_engine(self) -> None:
        """Reach the engine with the client's settings, once (``initialized``)."""
        if self.started:
            log.warning("ignored a repeated initialized notification; the engine runs already")
            return
        self.started = True
        self.settings, problems = self._settings()
        for problem in problems:
            self.say(types.MessageType.Warning, f"errand: {problem}")
            log.warning(problem)
        try:
            self.api = await self._open()
        except Exception as exc:
            log.exception("engine start failed")
            data = self.settings.data_dir
            self.start_error = f"{type(exc).__name__}: {exc} (data folder: {data})"
            self.say(types.MessageType.Error, f"errand could not start: {self.start_error}")
        self.ready.set()
        log.info(
            "errand ready: model=%s api=%s sandbox=%s daemon=%s",
            self.settings.model,
            self.settings.api,
            self.settings.sandbox,
            self.settings.daemon,
        )

    async def _open(self) -> EngineAPI:
        if self.settings.daemon == "off":
            engine = TaskEngine(self.settings, model_factory=self.model_factory, listener=self)
            await engine.start()
            return InProcess(engine)
        paths = DataPaths(self.settings.data_dir)
        client = await daemon_client.connect(paths, "lsp", env=settings_env(self.settings))
        assert client is not None
        client.add_listener(self)
        client.on_lost.append(self._daemon_lost)
        return client

    def _daemon_lost(self) -> None:
        if self._closing:
            return
        self.say(
            types.MessageType.Warning,
            "errand: the daemon stopped; starting a new one (running attempts of the old "
            "one show as interrupted, and `errand.resume` continues them)",
        )
        self.ready.clear()
        self.spawn(self._reconnect())

    async def _reconnect(self) -> None:
        for attempt in range(RECONNECT_TRIES):
            try:
                self.api = await self._open()
                break
            except Exception as exc:  # noqa: BLE001 - said, then tried again
                log.warning("reconnecting to errand's daemon failed: %s", exc)
                self.start_error = f"errand's daemon can't be reached: {exc}"
                await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
        else:
            self.api = None
            self.say(types.MessageType.Error, f"errand: {self.start_error}")
        self.ready.set()
        if self.api is not None:
            for task in await self.api.list_tasks():
                self.task_changed(task)

    async def close(self) -> None:
        """The editor is done: close the connection (the daemon's attempts go on), or
        stop the in-process engine."""
        self._closing = True
        if self.api is not None:
            await self.api.close()

    def _settings(self) -> tuple[Settings, list[str]]:
        unicode_problem = find_lone_surrogate(self.init_options)
        if unicode_problem is not None:
            return self.base_settings, [f"initializationOptions ignored: {unicode_problem}"]
        return self.base_settings.with_init_options(self.init_options)


def uri_to_path(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path)) if uri.startswith("file:") else Path(uri)


def create_server(settings: Settings, model_factory: ModelFactory) -> ErrandServer:
    server = ErrandServer(settings, model_factory)

    @server.feature(types.INITIALIZE)
    def initialize(ls: ErrandServer, params: types.InitializeParams) -> None:
        ls.init_options = params.initialization_options

    @server.feature(types.INITIALIZED)
    async def initialized(ls: ErrandServer, params: types.InitializedParams) -> None:
        await ls.start_engine()

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def progress_cancel(ls: ErrandServer, params: types.WorkDoneProgressCancelParams) -> None:
        ls.cancel_by_progress(str(params.token))

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: ErrandServer, params: None) -> None:
        await ls.close()

    for name, fn in HANDLERS.items():
        server.command(name)(command(name, fn))
    return server
