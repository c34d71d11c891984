"""A real LSP client (pygls's LanguageClient) driving `errand serve` over stdio.

The client plays the editor: it answers `workspace/applyEdit` by applying the edit
to the files on disk, and `window/workDoneProgress/create` by accepting the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from errand.frontends.lsp.text_edits import apply_text_edits


def _plain(value: Any) -> Any:
    """pygls hands custom notification params over as attribute objects; turn them
    back into plain JSON-like values."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return [_plain(v) for v in value]
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if hasattr(value, "__dict__"):
        return {k: _plain(v) for k, v in vars(value).items()}
    return value


def uri_path(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


def apply_workspace_edit(edit: types.WorkspaceEdit) -> None:
    """Apply an edit to disk the way an editor would (all operations in order)."""
    for change in edit.document_changes or []:
        if isinstance(change, types.TextDocumentEdit):
            path = uri_path(change.text_document.uri)
            text = path.read_bytes().decode("utf-8", "surrogateescape") if path.exists() else ""
            edits = [e for e in change.edits if isinstance(e, types.TextEdit)]
            path.write_bytes(apply_text_edits(text, edits).encode("utf-8", "surrogateescape"))
        elif isinstance(change, types.CreateFile):
            path = uri_path(change.uri)
            if path.exists() and not (change.options and change.options.overwrite):
                raise FileExistsError(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
        elif isinstance(change, types.RenameFile):
            source, target = uri_path(change.old_uri), uri_path(change.new_uri)
            target.parent.mkdir(parents=True, exist_ok=True)
            source.rename(target)
        elif isinstance(change, types.DeleteFile):
            uri_path(change.uri).unlink()


class ErrandClient:
    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.task_changes: list[dict[str, Any]] = []
        self.task_logs: list[dict[str, Any]] = []
        self.progress: list[Any] = []
        self.apply_requests: list[types.ApplyWorkspaceEditParams] = []
        self.refuse_apply: str | None = None
        self._changed = asyncio.Event()

    async def command(self, name: str, args: Any = None, *, raw: list[Any] | None = None) -> Any:
        arguments = raw if raw is not None else [args if args is not None else {}]
        result = await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=arguments)
        )
        return _plain(result)

    def on_change(self) -> None:
        self._changed.set()

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 60.0, what: str = "condition"
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))

    def status_of(self, task_id: str) -> str | None:
        for change in reversed(self.task_changes):
            if change["task"]["taskId"] == task_id:
                return str(change["task"]["status"])
        return None

    async def wait_status(self, task_id: str, statuses: set[str], timeout: float = 90.0) -> str:
        await self.wait_for(
            lambda: self.status_of(task_id) in statuses,
            timeout,
            f"task {task_id} to reach {statuses} (now {self.status_of(task_id)})",
        )
        status = self.status_of(task_id)
        assert status is not None
        return status


async def start_client(
    *,
    folder: Path,
    env: dict[str, str],
    init_options: dict[str, Any] | None = None,
) -> tuple[ErrandClient, LanguageClient]:
    client = LanguageClient("errand-tests", "1")
    harness = ErrandClient(client)

    @client.feature("errand/taskChanged")
    def task_changed(params: Any) -> None:
        harness.task_changes.append(_plain(params))
        harness.on_change()

    @client.feature("errand/taskLog")
    def task_log(params: Any) -> None:
        harness.task_logs.append(_plain(params))
        harness.on_change()

    @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def progress_create(params: types.WorkDoneProgressCreateParams) -> None:
        harness.progress.append(("create", params.token))

    @client.feature(types.PROGRESS)
    def progress(params: types.ProgressParams) -> None:
        harness.progress.append(("progress", params.token, _plain(params.value)))
        harness.on_change()

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def show_message(params: types.ShowMessageParams) -> None:
        harness.progress.append(("message", params.message))

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        harness.apply_requests.append(params)
        if harness.refuse_apply:
            return types.ApplyWorkspaceEditResult(
                applied=False, failure_reason=harness.refuse_apply
            )
        apply_workspace_edit(params.edit)
        return types.ApplyWorkspaceEditResult(applied=True)

    # The engine runs in the server process unless a test asks for the daemon.
    full_env = {**os.environ, "ERRAND_DAEMON": "off", **env}
    await client.start_io(sys.executable, "-m", "errand.frontends.cli.main", "serve", env=full_env)
    await client.initialize_async(
        types.InitializeParams(
            process_id=os.getpid(),
            root_uri=folder.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=folder.as_uri(), name=folder.name)],
            initialization_options=init_options,
            capabilities=types.ClientCapabilities(
                workspace=types.WorkspaceClientCapabilities(
                    apply_edit=True,
                    workspace_edit=types.WorkspaceEditClientCapabilities(
                        document_changes=True,
                        resource_operations=[
                            types.ResourceOperationKind.Create,
                            types.ResourceOperationKind.Rename,
                            types.ResourceOperationKind.Delete,
                        ],
                    ),
                ),
                window=types.WindowClientCapabilities(work_done_progress=True),
            ),
        )
    )
    client.initialized(types.InitializedParams())
    return harness, client


async def stop_client(client: LanguageClient) -> None:
    try:
        await asyncio.wait_for(client.shutdown_async(None), 15)
        client.exit(None)
    except Exception:  # noqa: BLE001 - the server may already be gone in crash tests
        pass
    await client.stop()


def server_env(tmp_path: Path, url: str, model: str, **extra: str) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": url,
        "OPENAI_API_KEY": "sk-test-not-a-secret",
        "ERRAND_MODEL": model,
        "ERRAND_API": "chat",
        "ERRAND_SANDBOX": "bwrap",
        "ERRAND_DATA_DIR": str(tmp_path / "data"),
        **extra,
    }


async def delegate(client: ErrandClient, prompt: str, **extra: Any) -> str:
    result = await client.command("errand.delegate", {"prompt": prompt, **extra})
    task_id = result["taskId"]
    assert isinstance(task_id, str) and task_id
    return task_id
