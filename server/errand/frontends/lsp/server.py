"""errand's language server: a typed pygls server whose handlers convert, delegate to
the engine and convert back (see :mod:`errand.frontends.lsp.handlers`). What belongs to
LSP alone lives here: the lifecycle, open documents and their versions, notifications
and ``$/progress``."""

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
from errand.config.settings import Settings
from errand.engine.engine import ModelFactory, TaskEngine
from errand.engine.errors import EngineError
from errand.frontends.lsp.handlers import HANDLERS, command
from errand.frontends.lsp.progress import TaskProgress
from errand.frontends.lsp.protocol import ErrandProtocol, serve_stdio
from errand.wire import protocol
from errand.wire.arguments import find_lone_surrogate
from errand.wire.protocol import TaskLog, TaskSummary
from errand.wire.words import clip
from errand.workspace.apply import CurrentFile

log = logging.getLogger(__name__)


class ErrandServer(LanguageServer):
    protocol: ErrandProtocol

    def __init__(self, settings: Settings, model_factory: ModelFactory) -> None:
        super().__init__(name="errand", version=__version__, protocol_cls=ErrandProtocol)
        self.init_options: object = None
        self.base_settings = settings
        self.model_factory = model_factory
        self.engine: TaskEngine | None = None
        self.ready = asyncio.Event()
        self.start_error: str | None = None
        self.started = False
        """True once the first ``initialized`` notification started the engine."""
        self.task_progress = TaskProgress(self.work_done_progress, self.spawn)
        self._background: set[asyncio.Task[None]] = set()

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
        changed = protocol.TaskChanged(task=summary, removed=removed)
        self.protocol.notify(protocol.NOTIFY_TASK_CHANGED, protocol.to_wire(changed))
        window = self.client_capabilities.window
        if window and window.work_done_progress:
            self.task_progress.update(summary)

    def task_log(self, entry: TaskLog) -> None:
        self.protocol.notify(protocol.NOTIFY_TASK_LOG, protocol.to_wire(entry))

    def cancel_by_progress(self, token: str) -> None:
        task_id = self.task_progress.task_of(token)
        if task_id is not None and self.engine is not None:
            self.spawn(self.engine.cancel(task_id))

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- what the handlers need ----------------------------------------------------

    async def require_engine(self) -> TaskEngine:
        await self.ready.wait()
        if self.engine is None:
            raise EngineError(f"errand could not start: {self.start_error}")
        return self.engine

    def default_folder(self) -> Path | None:
        folders = self.workspace.folders
        if folders:
            return uri_to_path(next(iter(folders.values())).uri)
        root = self.workspace.root_path
        return Path(root) if root else None

    def current_files(self) -> dict[str, CurrentFile]:
        """Open buffers by path, captured on the loop before any thread reads them."""
        opened: dict[str, CurrentFile] = {}
        for uri, doc in self.workspace.text_documents.items():
            if uri.startswith("file:"):
                opened[str(uri_to_path(uri))] = CurrentFile(
                    exists=True, text=doc.source, version=doc.version
                )
        return opened

    def say(self, kind: types.MessageType, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    async def start_engine(self) -> None:
        """Start the engine with the client's settings, once (``initialized``)."""
        if self.started:
            log.warning("ignored a repeated initialized notification; the engine runs already")
            return
        self.started = True
        settings, problems = self._settings()
        for problem in problems:
            self.say(types.MessageType.Warning, f"errand: {problem}")
            log.warning(problem)
        try:
            engine = TaskEngine(settings, model_factory=self.model_factory, listener=self)
            await engine.start()
        except Exception as exc:
            log.exception("engine start failed")
            self.start_error = f"{type(exc).__name__}: {exc} (data folder: {settings.data_dir})"
            self.say(types.MessageType.Error, f"errand could not start: {self.start_error}")
        else:
            self.engine = engine
        self.ready.set()
        log.info(
            "errand ready: model=%s api=%s sandbox=%s",
            settings.model,
            settings.api,
            settings.sandbox,
        )

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
        if ls.engine is not None:
            await ls.engine.shutdown()

    for name, fn in HANDLERS.items():
        server.command(name)(command(name, fn))
    return server
