"""TaskEngine: the public façade over tasks and their attempts.

The engine lives on one asyncio loop and never blocks it: git and file work go to
worker threads, store writes to the journal's one thread. It keeps every task in
memory (derived summaries are computed, never stored), starts one
:class:`~errand.engine.attempt.AttemptRun` per attempt, and answers the front ends.
Front ends subscribe through :class:`~errand.engine.journal.EngineListener`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

from errand.agent.context import close_dangling_calls
from errand.agent.tools import CommandRecord
from errand.config.paths import DataPaths
from errand.config.settings import Settings
from errand.engine import review
from errand.engine.attempt import AttemptRun, Context, ModelFactory
from errand.engine.errors import BadArguments, EngineError, UnknownTask
from errand.engine.journal import EngineListener, Journal
from errand.engine.owner import Owner
from errand.engine.records import TaskRecord
from errand.engine.state import (
    INTERRUPTED,
    AttemptState,
    TaskState,
    default_attempt,
    make_title,
    now_iso,
)
from errand.engine.store import Store
from errand.hosts.base import HostPool, HostRef
from errand.hosts.local import LocalHosts
from errand.models.base import UserMsg, decode_items
from errand.wire.changes import ApplyPlan
from errand.wire.protocol import (
    MAX_ATTEMPTS,
    TERMINAL_STATUSES,
    Attempt,
    DelegateParams,
    FileStat,
    Task,
    TaskLog,
    TaskSummary,
)
from errand.workspace.apply import CurrentFile
from errand.workspace.branch import (
    BranchResult,
)
from errand.workspace.snapshot import SNAPSHOT_REF_PREFIX, delete_refs, take_snapshot

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = ["EngineError", "EngineListener", "ModelFactory", "TaskEngine"]


class TaskEngine:
    def __init__(
        self,
        settings: Settings,
        *,
        model_factory: ModelFactory,
        hosts: HostPool | None = None,
        listener: EngineListener | None = None,
    ) -> None:
        self.settings = settings
        self.paths = DataPaths(settings.data_dir)
        self.journal = Journal()
        if listener is not None:
            self.journal.listeners.append(listener)
        self._hosts = hosts
        self._model_factory = model_factory
        self._tasks: dict[str, TaskState] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._read_only = False
        self._ctx: Context | None = None
        self._owner: Owner | None = None

    # --- lifecycle -----------------------------------------------------------------

    def add_listener(self, listener: EngineListener) -> None:
        self.journal.listeners.append(listener)

    async def start(self, *, read_only: bool = False) -> None:
        """Open the store and load past tasks. A writing engine first cleans up after a
        crashed server, marks the attempts it finds unfinished as interrupted, and
        collects garbage; a read-only one (``errand tasks``) changes nothing at all."""
        self._read_only = read_only
        if read_only:
            if self.paths.store.exists():
                self.journal.store = await self.journal.db(Store, self.paths.store, read_only=True)
                await self._load(recover=False)
            return
        self._owner = Owner(self.paths.owner_lock)  # DataFolderBusy when another owns it
        hosts = self._hosts or LocalHosts(self.paths, self.settings.sandbox)
        self._hosts = hosts
        slots = asyncio.Semaphore(self.settings.max_parallel)
        self._ctx = Context(self.settings, hosts, self.journal, self._model_factory, slots)
        await hosts.start()
        self.journal.store = await self.journal.db(Store, self.paths.store)
        await self._load(recover=True)
        log.info("engine started: %d tasks loaded from %s", len(self._tasks), self.paths.store)
        await self._collect_garbage()

    async def _load(self, *, recover: bool) -> None:
        for stored in await self.journal.db(self.journal.require_store().load_tasks):
            state = TaskState(record=stored.record)
            state.prepared.set()
            interrupted = False
            for record in stored.attempts:
                attempt = AttemptState(info=record.info, host_ref=record.host)
                attempt.result_tree = record.result_tree
                if record.host is not None and self._hosts is not None:
                    attempt.host = self._hosts.restore(record.host)
                state.attempts.append(attempt)
                if recover and attempt.info.status not in TERMINAL_STATUSES:
                    attempt.info.status, attempt.info.reason = "failed", INTERRUPTED
                    attempt.info.finished_at = now_iso()
                    await self.journal.save_attempt(state, attempt)
                    self.journal.log(state, attempt, "status", status="failed", text=INTERRUPTED)
                    interrupted = True
            if interrupted:
                state.touch()
                await self.journal.save_task(state)
            self._tasks[state.task_id] = state

    async def shutdown(self) -> None:
        runners = [a.runner for s in self._tasks.values() for a in s.attempts if a.active]
        for runner in runners:
            if runner is not None:
                runner.cancel()
        if runners:
            await asyncio.gather(*[r for r in runners if r is not None], return_exceptions=True)
        await self.journal.close()
        if self._owner is not None:
            self._owner.release()

    def _context(self) -> Context:
        if self._ctx is None:
            raise EngineError("this view of errand's tasks is read-only")
        return self._ctx

    # --- reading -------------------------------------------------------------------

    def list_tasks(self) -> list[TaskSummary]:
        return [state.summary() for state in self._tasks.values()]

    def get_task(self, task_id: str) -> Task:
        return self._state(task_id).task()

    def attempt_state(self, task_id: str, attempt: int | None) -> AttemptState:
        state = self._state(task_id)
        number = attempt if attempt is not None else default_attempt(state.infos())
        if not 1 <= number <= len(state.attempts):
            raise BadArguments(
                f"task {task_id} has {len(state.attempts)} attempt(s); "
                f"attempt {number} does not exist"
            )
        return state.attempts[number - 1]

    async def get_diff(self, task_id: str, attempt: int | None) -> tuple[str, list[FileStat], int]:
        target = self.attempt_state(task_id, attempt)
        store = self.journal.require_store()
        diff = await self.journal.db(store.load_diff, task_id, target.info.attempt)
        if diff is None:
            if target.info.status not in TERMINAL_STATUSES:
                raise EngineError(
                    f"task {task_id} is still {target.info.status}; its diff is ready when it ends"
                )
            diff = ""
        return diff, target.info.files, target.info.attempt

    async def logs(self, task_id: str, attempt: int | None = None) -> list[TaskLog]:
        self._state(task_id)
        if attempt is not None:
            self.attempt_state(task_id, attempt)
        self.journal.flush()
        store = self.journal.require_store()
        return await self.journal.db(store.load_logs, task_id, attempt)

    async def wait(self, task_id: str) -> Task:
        """Wait until every attempt of a task has ended."""
        state = self._state(task_id)
        runners = [a.runner for a in state.attempts if a.runner is not None]
        if runners:
            await asyncio.gather(*runners, return_exceptions=True)
        return state.task()

    # --- applying ------------------------------------------------------------------

    async def preview(
        self, task_id: str, attempt: int | None, current: Callable[[str], CurrentFile]
    ) -> tuple[int, ApplyPlan]:
        """What getDiff shows: see :func:`errand.engine.review.preview`."""
        target = self.attempt_state(task_id, attempt)
        return target.info.attempt, await review.preview(self._state(task_id), target, current)

    async def plan_apply(
        self,
        task_id: str,
        attempt: int | None,
        files: list[str] | None,
        current: Callable[[str], CurrentFile],
    ) -> ApplyPlan:
        target = self.attempt_state(task_id, attempt)
        return await review.plan(self._state(task_id), target, files, current)

    async def mark_applied(self, task_id: str) -> None:
        state = self._tasks.get(task_id)
        if state is None:
            return  # discarded while its edit was being applied
        state.record.applied = True
        state.touch()
        await self.journal.save_task(state)
        self.journal.changed(state)

    async def create_branch(
        self, task_id: str, attempt: int | None, branch: str | None
    ) -> BranchResult:
        target = self.attempt_state(task_id, attempt)
        return await review.branch(self._state(task_id), target, branch)

    # --- changing ------------------------------------------------------------------

    async def delegate(self, params: DelegateParams, default_folder: Path | None) -> str:
        """Validate everything first; a delegation that fails leaves nothing behind."""
        self._context()
        folder = _check_delegation(params, default_folder)
        stamp = now_iso()
        task_id = secrets.token_hex(4)
        while task_id in self._tasks:
            task_id = secrets.token_hex(4)
        record = TaskRecord(
            task_id=task_id,
            title=make_title(params.prompt),
            mode=params.mode,
            created_at=stamp,
            updated_at=stamp,
            prompts=[params.prompt],
            attempt_count=params.attempts,
            repository=str(folder),
        )
        state = TaskState(record=record)
        for n in range(1, params.attempts + 1):
            state.attempts.append(AttemptState(info=Attempt(attempt=n, status="queued")))
        self._tasks[task_id] = state
        try:
            await self.journal.save_task(state)
            self.journal.changed(state)
        except BaseException:
            del self._tasks[task_id]
            self.journal.submit(self.journal.require_store().delete_task, task_id)
            self.journal.removed(state)
            raise
        self._spawn(self._prepare(state, folder))
        for attempt in state.attempts:
            self._start(state, attempt)
        return task_id

    def _start(self, state: TaskState, attempt: AttemptState) -> None:
        run = AttemptRun(self._context(), state, attempt)
        attempt.runner = asyncio.create_task(
            run(), name=f"errand-{state.task_id}-{attempt.info.attempt}"
        )

    async def _prepare(self, state: TaskState, folder: Path) -> None:
        """Snapshot right away, so the task starts from what the user sees now."""
        try:
            snapshot = await asyncio.to_thread(take_snapshot, folder, self.paths)
            state.record.snapshot = snapshot
            state.record.repository = str(snapshot.repo_root)
            await self.journal.save_task(state)
        except Exception as exc:
            log.exception("snapshot failed for %s", state.task_id)
            state.record.problem = f"could not snapshot the workspace: {exc}"
            for attempt in state.attempts:
                if attempt.runner is not None:
                    attempt.runner.cancel()  # queued attempts fail at once
        finally:
            state.prepared.set()

    async def cancel(self, task_id: str) -> None:
        """Stop the task's running attempts. One that is already recording its result
        is left to finish (and waited for): its work is done."""
        state = self._state(task_id)
        active = [a for a in state.attempts if a.active]
        for attempt in active:
            if not attempt.finishing and attempt.runner is not None:
                attempt.runner.cancel()
        runners = [a.runner for a in active if a.runner is not None]
        if runners:
            await asyncio.gather(*runners, return_exceptions=True)

    async def follow_up(self, task_id: str, prompt: str) -> str:
        """Continue a finished task in the same copy with the same conversation."""
        self._context()
        if not prompt.strip():
            raise BadArguments("prompt is blank; say what the follow-up should do")
        state = self._ended(task_id)
        await self._continue(state, state.attempts[default_attempt(state.infos()) - 1], prompt)
        return task_id

    async def resume(self, task_id: str) -> str:
        """Continue the attempts that were interrupted (their server or daemon died), each
        in its own copy with its own conversation, where they stopped."""
        self._context()
        state = self._ended(task_id)
        stopped = [a for a in state.attempts if a.info.reason == INTERRUPTED]
        if not stopped:
            raise EngineError(
                f"task {task_id} has no interrupted attempt to resume; errand.followUp "
                "continues a finished one"
            )
        for attempt in stopped:
            await self._continue(state, attempt, None)
        return task_id

    def _ended(self, task_id: str) -> TaskState:
        state = self._state(task_id)
        if not state.ended:
            status = state.summary().status
            raise EngineError(f"task {task_id} is still {status}; wait or cancel it")
        return state

    async def _continue(self, state: TaskState, attempt: AttemptState, prompt: str | None) -> None:
        ref = attempt.host_ref
        if attempt.host is None or ref is None or not Path(ref.path).is_dir():
            raise EngineError(
                f"task {state.task_id}'s copy is gone (it was cancelled or cleaned up); "
                "delegate a new task instead"
            )
        if not attempt.conversation:
            await self._reload(state, attempt)
        if not attempt.conversation and prompt is not None:
            raise EngineError(f"task {state.task_id} has no recorded conversation to continue")
        close_dangling_calls(attempt.conversation)
        if prompt is not None:
            attempt.conversation.append(UserMsg(prompt))
            state.record.prompts.append(prompt)
        info = attempt.info
        info.status, info.report, info.reason, info.finished_at = "queued", None, None, None
        state.record.applied = False
        state.touch()
        await self.journal.save_task(state)
        self.journal.changed(state)
        self._start(state, attempt)

    async def _reload(self, state: TaskState, attempt: AttemptState) -> None:
        """The conversation and commands of an attempt from an earlier server run."""
        store = self.journal.require_store()
        number = attempt.info.attempt
        data = await self.journal.db(store.load_conversation, state.task_id, number)
        attempt.conversation = decode_items(data) if data else []
        rows: list[CommandRecord] = await self.journal.db(store.load_chunks, state.task_id, number)
        attempt.chunk_seq = len(rows)
        attempt.commands = rows

    async def discard(self, task_id: str) -> None:
        self._context()
        state = self._state(task_id)
        await self.cancel(task_id)
        for attempt in state.attempts:
            if attempt.host is not None:
                await attempt.host.discard()
                attempt.host, attempt.host_ref = None, None
        snapshot = state.record.snapshot
        if snapshot is not None:
            refs = [SNAPSHOT_REF_PREFIX + snapshot.commit]
            await asyncio.to_thread(delete_refs, snapshot.mirror, refs)
        await self.journal.db(self.journal.require_store().delete_task, task_id)
        del self._tasks[task_id]
        self._spawn(self._collect_garbage())
        self.journal.removed(state)

    async def _collect_garbage(self) -> None:
        """Unmount idle copies, remove orphaned ones and bases that no copy uses."""
        if self._hosts is None:
            return
        attempts = [a for s in self._tasks.values() for a in s.attempts]
        live: list[HostRef] = [a.host_ref for a in attempts if a.host_ref is not None]
        running = [
            a.host_ref
            for a in attempts
            if a.host_ref is not None and a.info.status not in TERMINAL_STATUSES
        ]
        await self._hosts.collect_garbage(live, running)

    # --- helpers -------------------------------------------------------------------

    def _state(self, task_id: str) -> TaskState:
        try:
            return self._tasks[task_id]
        except KeyError:
            raise UnknownTask(
                f"no task with id {task_id!r}; errand.listTasks shows the existing ones"
            ) from None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _check_delegation(params: DelegateParams, default_folder: Path | None) -> Path:
    """The folder to work on, once every argument is known to be usable."""
    if not params.prompt.strip():
        raise BadArguments("prompt is blank; say what the task should do")
    if re.search("[\ud800-\udfff]", params.prompt):
        raise BadArguments("prompt contains a lone surrogate, which is not valid Unicode")
    if not 1 <= params.attempts <= MAX_ATTEMPTS:
        raise BadArguments(f"attempts must be between 1 and {MAX_ATTEMPTS}, not {params.attempts}")
    try:
        folder = _folder(params.workspace) if params.workspace else default_folder
        usable = folder is not None and folder.is_dir()
    except (OSError, ValueError, RuntimeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        shown = params.workspace or str(default_folder)
        raise BadArguments(f"workspace {shown[:200]!r} can't be used: {reason[:200]}") from None
    if folder is None:
        raise BadArguments("no workspace folder: open a folder in the editor or pass `workspace`")
    if not usable:
        raise BadArguments(f"workspace folder {str(folder)[:200]} does not exist")
    return folder


def _folder(value: str) -> Path:
    if value.startswith("file://"):
        return Path(unquote(urlparse(value).path))
    return Path(value).expanduser()
