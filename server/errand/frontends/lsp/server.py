"""errand's language server: thin handlers that convert, delegate to the engine, and
convert back. All logic lives in the engine and the pure modules."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import unquote, urlparse

import msgspec
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from errand import __version__
from errand.config.settings import Settings
from errand.engine.engine import ModelFactory, TaskEngine
from errand.engine.errors import BadArguments, EngineError
from errand.frontends.lsp.edits import build_workspace_edit, workspace_edit_to_json
from errand.frontends.lsp.messages import REQUEST_FAILED, clip
from errand.frontends.lsp.protocol import ErrandProtocol, serve_stdio
from errand.wire import protocol
from errand.wire.arguments import InvalidArguments, find_lone_surrogate, parse_params
from errand.wire.protocol import TERMINAL_STATUSES, TaskLog, TaskSummary
from errand.workspace.apply import CurrentFile, read_current, write_binaries

log = logging.getLogger(__name__)
P = TypeVar("P", bound=msgspec.Struct)
MAX_ERROR = 2000
"""Characters of a command's error message."""


class JsonRpcRequestFailed(JsonRpcException):
    CODE = REQUEST_FAILED  # LSP's RequestFailed
    MESSAGE = "Request Failed"


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
        self._progress: dict[str, str] = {}
        self._background: set[asyncio.Task[None]] = set()

    # --- transport -----------------------------------------------------------------

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Serve LSP on stdio through errand's bounded reader (see
        :mod:`errand.frontends.lsp.stream`) instead of pygls's."""
        self._stop_event = stop = threading.Event()
        try:
            serve_stdio(
                self.protocol,
                stop,
                self.thread_pool,
                self.base_settings.max_frame_bytes,
                stdin,
                stdout,
            )
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
        self.protocol.notify(
            protocol.NOTIFY_TASK_CHANGED,
            protocol.to_wire(protocol.TaskChanged(task=summary, removed=removed)),
        )
        self._update_progress(summary)

    def task_log(self, entry: TaskLog) -> None:
        self.protocol.notify(protocol.NOTIFY_TASK_LOG, protocol.to_wire(entry))

    def _supports_progress(self) -> bool:
        window = self.client_capabilities.window
        return bool(window and window.work_done_progress)

    def _update_progress(self, summary: TaskSummary) -> None:
        if not self._supports_progress():
            return
        token = self._progress.get(summary.task_id)
        if summary.status in TERMINAL_STATUSES:
            if token is not None:
                del self._progress[summary.task_id]
                self.work_done_progress.end(
                    token, types.WorkDoneProgressEnd(message=f"{summary.title}: {summary.status}")
                )
            return
        message = f"{summary.status} · +{summary.diff_stat.added} −{summary.diff_stat.removed}"
        if token is None:
            token = f"errand-{summary.task_id}"
            self._progress[summary.task_id] = token
            self._spawn(self._begin_progress(token, summary, message))
        elif token in self.work_done_progress.tokens:
            self.work_done_progress.report(token, types.WorkDoneProgressReport(message=message))

    async def _begin_progress(self, token: str, summary: TaskSummary, message: str) -> None:
        try:
            await self.work_done_progress.create_async(token)
        except Exception as exc:  # noqa: BLE001 - progress is optional; the client may refuse
            log.info("client refused progress token %s: %s", token, exc)
            return
        self.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(
                title=f"errand: {summary.title}", message=message, cancellable=True
            ),
        )

    def cancel_by_progress(self, token: str) -> None:
        for task_id, known in list(self._progress.items()):
            if known == token and self.engine is not None:
                self._spawn(self.engine.cancel(task_id))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- helpers -------------------------------------------------------------------

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


def uri_to_path(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path)) if uri.startswith("file:") else Path(uri)


def _command(
    server: ErrandServer, name: str, kind: type[P]
) -> Callable[[Callable[[ErrandServer, P], Awaitable[msgspec.Struct]]], None]:
    def register(fn: Callable[[ErrandServer, P], Awaitable[msgspec.Struct]]) -> None:
        async def handler(ls: ErrandServer, *args: Any) -> Any:
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
            return protocol.to_wire(result)

        server.command(name)(handler)

    return register


def create_server(settings: Settings, model_factory: ModelFactory) -> ErrandServer:
    server = ErrandServer(settings, model_factory)

    @server.feature(types.INITIALIZE)
    def initialize(ls: ErrandServer, params: types.InitializeParams) -> None:
        ls.init_options = params.initialization_options

    @server.feature(types.INITIALIZED)
    async def initialized(ls: ErrandServer, params: types.InitializedParams) -> None:
        if ls.started:
            log.warning("ignored a repeated initialized notification; the engine runs already")
            return
        ls.started = True
        unicode_problem = find_lone_surrogate(ls.init_options)
        if unicode_problem is not None:
            settings = ls.base_settings
            problems = [f"initializationOptions ignored: {unicode_problem}"]
        else:
            settings, problems = ls.base_settings.with_init_options(ls.init_options)
        for problem in problems:
            ls.window_show_message(
                types.ShowMessageParams(
                    type=types.MessageType.Warning, message=f"errand: {problem}"
                )
            )
            log.warning(problem)
        try:
            engine = TaskEngine(settings, model_factory=ls.model_factory, listener=ls)
            await engine.start()
        except Exception as exc:
            log.exception("engine start failed")
            ls.start_error = f"{type(exc).__name__}: {exc} (data folder: {settings.data_dir})"
            ls.window_show_message(
                types.ShowMessageParams(
                    type=types.MessageType.Error,
                    message=f"errand could not start: {ls.start_error}",
                )
            )
        else:
            ls.engine = engine
        ls.ready.set()
        log.info(
            "errand ready: model=%s api=%s sandbox=%s",
            settings.model,
            settings.api,
            settings.sandbox,
        )

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def progress_cancel(ls: ErrandServer, params: types.WorkDoneProgressCancelParams) -> None:
        ls.cancel_by_progress(str(params.token))

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: ErrandServer, params: None) -> None:
        if ls.engine is not None:
            await ls.engine.shutdown()

    @_command(server, protocol.CMD_DELEGATE, protocol.DelegateParams)
    async def delegate(ls: ErrandServer, params: protocol.DelegateParams) -> msgspec.Struct:
        engine = await ls.require_engine()
        task_id = await engine.delegate(params, ls.default_folder())
        return protocol.DelegateResult(task_id=task_id)

    @_command(server, protocol.CMD_LIST_TASKS, protocol.ListTasksParams)
    async def list_tasks(ls: ErrandServer, params: protocol.ListTasksParams) -> msgspec.Struct:
        engine = await ls.require_engine()
        return protocol.ListTasksResult(tasks=engine.list_tasks())

    @_command(server, protocol.CMD_GET_TASK, protocol.TaskRef)
    async def get_task(ls: ErrandServer, params: protocol.TaskRef) -> msgspec.Struct:
        engine = await ls.require_engine()
        return protocol.GetTaskResult(task=engine.get_task(params.task_id))

    @_command(server, protocol.CMD_GET_DIFF, protocol.GetDiffParams)
    async def get_diff(ls: ErrandServer, params: protocol.GetDiffParams) -> msgspec.Struct:
        engine = await ls.require_engine()
        diff, files, attempt = await engine.get_diff(params.task_id, params.attempt)
        root = Path(engine.get_task(params.task_id).repository or ".")
        current = read_current(root, ls.current_files())
        _, plan = await engine.preview(params.task_id, attempt, current)
        edit = build_workspace_edit(root, plan.changes, plan.versions)
        return protocol.GetDiffResult(
            diff=diff,
            edit=workspace_edit_to_json(edit),
            attempt=attempt,
            files=files,
            conflicts=plan.conflicts,
            merged=plan.merged,
        )

    @_command(server, protocol.CMD_GET_LOG, protocol.GetLogParams)
    async def get_log(ls: ErrandServer, params: protocol.GetLogParams) -> msgspec.Struct:
        engine = await ls.require_engine()
        return protocol.GetLogResult(entries=await engine.logs(params.task_id, params.attempt))

    @_command(server, protocol.CMD_APPLY, protocol.ApplyParams)
    async def apply(ls: ErrandServer, params: protocol.ApplyParams) -> msgspec.Struct:
        engine = await ls.require_engine()
        return await apply_attempt(ls, engine, params)

    @_command(server, protocol.CMD_CANCEL, protocol.TaskRef)
    async def cancel(ls: ErrandServer, params: protocol.TaskRef) -> msgspec.Struct:
        engine = await ls.require_engine()
        await engine.cancel(params.task_id)
        return protocol.Empty()

    @_command(server, protocol.CMD_DISCARD, protocol.TaskRef)
    async def discard(ls: ErrandServer, params: protocol.TaskRef) -> msgspec.Struct:
        engine = await ls.require_engine()
        await engine.discard(params.task_id)
        return protocol.Empty()

    @_command(server, protocol.CMD_FOLLOW_UP, protocol.FollowUpParams)
    async def follow_up(ls: ErrandServer, params: protocol.FollowUpParams) -> msgspec.Struct:
        engine = await ls.require_engine()
        task_id = await engine.follow_up(params.task_id, params.prompt)
        return protocol.DelegateResult(task_id=task_id)

    @_command(server, protocol.CMD_CREATE_BRANCH, protocol.CreateBranchParams)
    async def create_branch(
        ls: ErrandServer, params: protocol.CreateBranchParams
    ) -> msgspec.Struct:
        engine = await ls.require_engine()
        made = await engine.create_branch(params.task_id, params.attempt, params.branch)
        return protocol.CreateBranchResult(branch=made.branch, commit=made.commit)

    return server


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
        return protocol.ApplyResult(applied=False, conflicts=plan.conflicts, reason=refusal)
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
