"""TaskEngine: the queue, the lifecycle of tasks and attempts, cancellation, storage.

The engine lives on one asyncio loop and never blocks it: git and file work go to
worker threads, SQLite writes go to one store thread. Clients (the LSP server, the
CLI) subscribe through :class:`EngineListener`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import msgspec

from errand.agent.evidence import checks as check_rules
from errand.agent.evidence.agents_md import AgentsDoc, load_agents_md, user_instructions
from errand.agent.evidence.citations import resolve_citations
from errand.agent.loop import AgentLimits, AgentProgress, LimitsExceeded, NoAnswer, run_agent
from errand.agent.prompts import system_prompt
from errand.agent.tools import CommandRecord, Toolbox
from errand.config.paths import DataPaths
from errand.config.repo import RepoConfig, RepoConfigError, SetupConfig, load_repo_config
from errand.config.settings import Settings
from errand.engine import verify
from errand.engine.logbatch import LogBatcher
from errand.engine.store import ChunkRow, CopyRow, SnapshotRow, Store
from errand.hosts.quota import DiskQuota, DiskQuotaExceeded, within_quota
from errand.models import Model, ModelError
from errand.models.base import Item, SystemMsg, UserMsg, decode_items, encode_items
from errand.sandbox import Limits, Sandbox, SandboxSpec, SandboxUnavailable, open_sandbox
from errand.wire.protocol import (
    MAX_ATTEMPTS,
    TERMINAL_STATUSES,
    Alert,
    Attempt,
    Check,
    DelegateParams,
    FileStat,
    LogKind,
    Status,
    Task,
    TaskLog,
    TaskSummary,
)
from errand.workspace import results
from errand.workspace import snapshot as snapshots
from errand.workspace.apply import ApplyPlan, ApplyRefused, CurrentFile, plan_apply
from errand.workspace.branch import BranchError, BranchResult, create_branch
from errand.workspace.copies.base import CopyProvider, TaskCopy
from errand.workspace.copies.choice import choose_provider
from errand.workspace.copies.gc import collect_garbage
from errand.workspace.results import FileChange
from errand.workspace.snapshot import Snapshot

log = logging.getLogger(__name__)
T = TypeVar("T")


SANDBOX_ENV = {
    # Edits land within the same second as the previous run: a same-size change would
    # otherwise be masked by a stale timestamp-validated .pyc.
    "PYTHONDONTWRITEBYTECODE": "1",
}


class EngineError(Exception):
    """A request the engine can't carry out; the message is for a person."""


class BadArguments(EngineError):
    """The request's arguments are wrong: out of range, blank, or naming something
    that does not exist. InvalidParams on the wire."""


class UnknownTask(BadArguments):
    pass


class EngineListener(Protocol):
    def task_changed(self, summary: TaskSummary, removed: bool = False) -> None: ...

    def task_log(self, entry: TaskLog) -> None: ...


ModelFactory = Callable[[Settings], Model]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def default_branch_name(task: Task) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", task.title.lower()).strip("-")[:40].strip("-")
    return f"errand/{slug or 'task'}-{task.task_id}"


def make_title(prompt: str) -> str:
    line = next((line.strip() for line in prompt.splitlines() if line.strip()), "task")
    return line if len(line) <= 72 else line[:71].rstrip() + "…"


def aggregate_status(statuses: list[Status]) -> Status:
    order: tuple[Status, ...] = ("running", "preparing", "queued")
    for status in order:
        if status in statuses:
            return status
    ended: tuple[Status, ...] = ("completed", "cancelled")
    for status in ended:
        if status in statuses:
            return status
    return "failed"


@dataclass(slots=True)
class AttemptState:
    info: Attempt
    copy: TaskCopy | None = None
    result_tree: str | None = None
    conversation: list[Item] = field(default_factory=list)
    chunk_seq: int = 0
    runner: asyncio.Task[None] | None = None
    finishing: bool = False
    """The attempt's work is done and its result is being recorded."""
    sandbox: Sandbox | None = None
    commands: list[CommandRecord] = field(default_factory=list)
    check_extra: list[str] = field(default_factory=list)
    setup_outputs: dict[str, str] = field(default_factory=dict)

    def next_chunk_id(self) -> str:
        self.chunk_seq += 1
        return f"c{self.info.attempt}-{self.chunk_seq}"


@dataclass(slots=True)
class TaskState:
    task: Task
    folder: Path
    snapshot: Snapshot | None = None
    attempts: list[AttemptState] = field(default_factory=list)
    prepared: asyncio.Event = field(default_factory=asyncio.Event)
    snapshot_error: str | None = None

    def summary(self) -> TaskSummary:
        fields = {f: getattr(self.task, f) for f in TaskSummary.__struct_fields__}
        return TaskSummary(**fields)


class TaskEngine:
    def __init__(
        self,
        settings: Settings,
        *,
        model_factory: ModelFactory,
        copies: CopyProvider | None = None,
        listener: EngineListener | None = None,
    ) -> None:
        self.settings = settings
        self._model_factory = model_factory
        self.paths = DataPaths(settings.data_dir)
        self._copies = copies or choose_provider(self.paths)
        self._listeners: list[EngineListener] = [listener] if listener else []
        self._tasks: dict[str, TaskState] = {}
        self._slots = asyncio.Semaphore(settings.max_parallel)
        self._io = ThreadPoolExecutor(max_workers=8, thread_name_prefix="errand-io")
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="errand-db")
        self._store: Store | None = None
        self._batcher = LogBatcher(self._emit_log_now)
        self._background: set[asyncio.Task[Any]] = set()

    # --- lifecycle -----------------------------------------------------------------

    def add_listener(self, listener: EngineListener) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        """Clean up after a crashed server, open the store, load past tasks, and mark
        interrupted ones as failed."""
        await self._reap_leftovers()
        db_path = self.paths.store
        self._store = await self._db(Store, db_path)
        stored = await self._db(self._store.load_tasks)
        for item in stored:
            task = item.task
            snapshot = None
            if item.snapshot is not None:
                s = item.snapshot
                snapshot = Snapshot(
                    Path(s.repo_root), Path(s.mirror), s.commit, s.tree, s.head, s.subdir
                )
            state = TaskState(task=task, folder=Path(task.repository or "."), snapshot=snapshot)
            state.prepared.set()
            for stored_attempt in item.attempts:
                info = stored_attempt.attempt
                if info.status not in TERMINAL_STATUSES:
                    info.status = "failed"
                    info.reason = "interrupted"
                    info.finished_at = now_iso()
                    await self._db(self._store.save_attempt, task.task_id, info)
                copy = None
                if stored_attempt.copy is not None:
                    c = stored_attempt.copy
                    copy = TaskCopy(Path(c.path), Path(c.index), c.kind)
                state.attempts.append(
                    AttemptState(
                        info=info,
                        copy=copy,
                        result_tree=stored_attempt.result_tree,
                        chunk_seq=stored_attempt.chunk_seq,
                    )
                )
            task.attempts = [a.info for a in state.attempts]
            if task.status not in TERMINAL_STATUSES:
                task.status = "failed"
                task.reason = "interrupted"
                task.updated_at = now_iso()
                await self._db(self._store.save_task, task, None)
            self._tasks[task.task_id] = state
        log.info("engine started: %d tasks loaded from %s", len(self._tasks), db_path)
        await self._collect_garbage()

    async def _reap_leftovers(self) -> None:
        """Commands and containers a killed server left behind: per-command cgroups of
        dead servers are emptied when they are detected, labelled containers of dead
        servers are removed."""
        from errand.sandbox import cgroup

        await self._in_thread(cgroup.detect)
        if self.settings.sandbox == "docker":
            from errand.sandbox import docker

            removed = await docker.reap_orphans()
            if removed:
                log.info("removed %d container(s) left by a crashed server", removed)

    async def shutdown(self) -> None:
        for state in self._tasks.values():
            for attempt in state.attempts:
                if attempt.runner is not None and not attempt.runner.done():
                    attempt.runner.cancel()
        runners = [
            a.runner for s in self._tasks.values() for a in s.attempts if a.runner is not None
        ]
        if runners:
            await asyncio.gather(*runners, return_exceptions=True)
        self._batcher.flush()
        if self._store is not None:
            await self._db(self._store.close)
        self._io.shutdown(wait=False)
        self._db_thread.shutdown(wait=True)

    # --- commands ------------------------------------------------------------------

    async def delegate(self, params: DelegateParams, default_folder: Path | None) -> str:
        """Validate everything first; a delegation that fails leaves nothing behind."""
        if not params.prompt.strip():
            raise BadArguments("prompt is blank; say what the task should do")
        if re.search("[\ud800-\udfff]", params.prompt):
            raise BadArguments("prompt contains a lone surrogate, which is not valid Unicode")
        if not 1 <= params.attempts <= MAX_ATTEMPTS:
            raise BadArguments(
                f"attempts must be between 1 and {MAX_ATTEMPTS}, not {params.attempts}"
            )
        try:
            folder = _folder(params.workspace) if params.workspace else default_folder
            usable = folder is not None and folder.is_dir()
        except (OSError, ValueError, RuntimeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            shown = params.workspace or str(default_folder)
            raise BadArguments(f"workspace {shown[:200]!r} can't be used: {reason[:200]}") from None
        if folder is None:
            raise BadArguments(
                "no workspace folder: open a folder in the editor or pass `workspace`"
            )
        if not usable:
            raise BadArguments(f"workspace folder {str(folder)[:200]} does not exist")
        stamp = now_iso()
        task_id = secrets.token_hex(4)
        while task_id in self._tasks:
            task_id = secrets.token_hex(4)
        task = Task(
            task_id=task_id,
            title=make_title(params.prompt),
            mode=params.mode,
            status="queued",
            created_at=stamp,
            updated_at=stamp,
            attempt_count=params.attempts,
            prompt=params.prompt,
            repository=str(folder),
        )
        state = TaskState(task=task, folder=folder)
        for n in range(1, params.attempts + 1):
            state.attempts.append(AttemptState(info=Attempt(attempt=n, status="queued")))
        task.attempts = [a.info for a in state.attempts]
        self._tasks[task_id] = state
        try:
            await self._persist_task(state)
            self._changed(state)
        except BaseException:
            del self._tasks[task_id]
            if self._store is not None:
                self._db_submit(self._store.delete_task, task_id)
            for listener in self._listeners:
                listener.task_changed(state.summary(), True)
            raise
        self._spawn(self._prepare(state))
        for attempt in state.attempts:
            attempt.runner = asyncio.create_task(
                self._run_attempt(state, attempt), name=f"errand-{task_id}-{attempt.info.attempt}"
            )
        return task_id

    def list_tasks(self) -> list[TaskSummary]:
        return [state.summary() for state in self._tasks.values()]

    def get_task(self, task_id: str) -> Task:
        return self._state(task_id).task

    def attempt_state(self, task_id: str, attempt: int | None) -> AttemptState:
        state = self._state(task_id)
        number = attempt if attempt is not None else self._default_attempt(state)
        if not 1 <= number <= len(state.attempts):
            raise BadArguments(
                f"task {task_id} has {len(state.attempts)} attempt(s); "
                f"attempt {number} does not exist"
            )
        return state.attempts[number - 1]

    async def get_diff(self, task_id: str, attempt: int | None) -> tuple[str, list[FileStat], int]:
        target = self.attempt_state(task_id, attempt)
        diff = await self._db(self._require_store().load_diff, task_id, target.info.attempt)
        if diff is None:
            if target.info.status not in TERMINAL_STATUSES:
                raise EngineError(
                    f"task {task_id} is still {target.info.status}; its diff is ready when it ends"
                )
            diff = ""
        return diff, target.info.files, target.info.attempt

    async def file_changes(self, task_id: str, attempt: int | None) -> list[FileChange]:
        """Base and new text of every changed text file of an attempt."""
        state = self._state(task_id)
        target = self.attempt_state(task_id, attempt)
        if state.snapshot is None or target.result_tree is None:
            return []
        return await self._in_thread(_load_changes, state.snapshot, target)

    async def plan_apply(
        self,
        task_id: str,
        attempt: int | None,
        files: list[str] | None,
        current: Callable[[str], CurrentFile],
    ) -> ApplyPlan:
        state = self._state(task_id)
        target = self.attempt_state(task_id, attempt)
        if target.info.status != "completed":
            raise EngineError(
                f"attempt {target.info.attempt} of task {task_id} is {target.info.status}; "
                "only a completed attempt can be applied"
            )
        if state.snapshot is None or target.result_tree is None:
            raise EngineError(f"task {task_id} has no recorded result to apply")
        snapshot, result_tree = state.snapshot, target.result_tree
        changes = await self._in_thread(_load_changes, snapshot, target)
        binaries = [f for f in target.info.files if f.binary]

        def base_blob(path: str) -> bytes | None:
            return results.read_blob(snapshot.mirror, snapshot.tree, path)

        def new_blob(path: str) -> bytes | None:
            return results.read_blob(snapshot.mirror, result_tree, path)

        try:
            return await self._in_thread(
                plan_apply,
                snapshot.repo_root,
                changes,
                binaries,
                files,
                current,
                base_blob,
                new_blob,
            )
        except ApplyRefused as exc:
            raise EngineError(str(exc)) from None

    async def create_branch(
        self, task_id: str, attempt: int | None, branch: str | None
    ) -> BranchResult:
        """Commit an attempt's changes onto HEAD as a new local branch."""
        state = self._state(task_id)
        target = self.attempt_state(task_id, attempt)
        if target.info.status != "completed":
            raise EngineError(
                f"attempt {target.info.attempt} of task {task_id} is {target.info.status}; "
                "only a completed attempt can become a branch"
            )
        snapshot, result_tree = state.snapshot, target.result_tree
        if snapshot is None or result_tree is None:
            raise EngineError(f"task {task_id} has no recorded result")
        if not target.info.files:
            raise EngineError(f"attempt {target.info.attempt} of task {task_id} changed no files")
        name = branch or default_branch_name(state.task)
        try:
            return await self._in_thread(
                lambda: create_branch(
                    repo_root=snapshot.repo_root,
                    mirror=snapshot.mirror,
                    snapshot_commit=snapshot.commit,
                    result_tree=result_tree,
                    head=snapshot.head,
                    branch=name,
                    message=f"{state.task.title}\n\n{target.info.report or ''}".strip() + "\n",
                )
            )
        except BranchError as exc:
            raise EngineError(str(exc)) from None

    async def mark_applied(self, task_id: str) -> None:
        state = self._tasks.get(task_id)
        if state is None:
            return  # discarded while its edit was being applied
        state.task.applied = True
        state.task.updated_at = now_iso()
        await self._persist_task(state)
        self._changed(state)

    async def cancel(self, task_id: str) -> None:
        """Stop the task's running attempts. One that is already recording its result
        is left to finish (and waited for): its work is done."""
        state = self._state(task_id)
        active = [a for a in state.attempts if a.runner is not None and not a.runner.done()]
        for attempt in active:
            if not attempt.finishing and attempt.runner is not None:
                attempt.runner.cancel()
        runners = [a.runner for a in active if a.runner is not None]
        if runners:
            await asyncio.gather(*runners, return_exceptions=True)

    async def follow_up(self, task_id: str, prompt: str) -> str:
        """Continue a finished task in the same copy with the same conversation."""
        if not prompt.strip():
            raise EngineError("prompt is empty; say what the follow-up should do")
        state = self._state(task_id)
        if state.task.status not in TERMINAL_STATUSES:
            raise EngineError(f"task {task_id} is still {state.task.status}; wait or cancel it")
        attempt = state.attempts[self._default_attempt(state) - 1]
        if attempt.copy is None or not attempt.copy.path.is_dir():
            raise EngineError(
                f"task {task_id}'s copy is gone (it was cancelled or cleaned up); "
                "delegate a new task instead"
            )
        if not attempt.conversation:
            attempt.conversation = await self.load_conversation(task_id, attempt.info.attempt)
            rows = await self.chunks(task_id, attempt.info.attempt)
            attempt.commands = [
                CommandRecord(
                    r.chunk_id,
                    r.command,
                    r.exit_code,
                    r.duration_ms,
                    r.output,
                    r.timed_out,
                    r.started_at,
                )
                for r in rows
            ]
        if not attempt.conversation:
            raise EngineError(f"task {task_id} has no recorded conversation to continue")
        attempt.conversation.append(UserMsg(prompt))
        attempt.info.status = "queued"
        attempt.info.report = None
        attempt.info.reason = None
        state.task.reason = None
        state.task.applied = False
        state.task.prompt = f"{state.task.prompt}\n\nFollow-up: {prompt}"
        self._refresh(state)
        await self._persist_task(state)
        self._changed(state)
        attempt.runner = asyncio.create_task(
            self._run_attempt(state, attempt), name=f"errand-{task_id}-{attempt.info.attempt}"
        )
        return task_id

    async def discard(self, task_id: str) -> None:
        state = self._state(task_id)
        await self.cancel(task_id)
        for attempt in state.attempts:
            if attempt.copy is not None:
                await self._in_thread(self._copies.remove, attempt.copy)
                attempt.copy = None
        if state.snapshot is not None:
            refs = [snapshots.SNAPSHOT_REF_PREFIX + state.snapshot.commit]
            await self._in_thread(snapshots.delete_refs, state.snapshot.mirror, refs)
        await self._db(self._require_store().delete_task, task_id)
        del self._tasks[task_id]
        self._spawn(self._collect_garbage())
        summary = state.summary()
        for listener in self._listeners:
            listener.task_changed(summary, True)

    async def logs(self, task_id: str, attempt: int | None = None) -> list[TaskLog]:
        self._state(task_id)
        if attempt is not None:
            self.attempt_state(task_id, attempt)
        self._batcher.flush()
        return await self._db(self._require_store().load_logs, task_id, attempt)

    async def chunks(self, task_id: str, attempt: int) -> list[ChunkRow]:
        self._state(task_id)
        return await self._db(self._require_store().load_chunks, task_id, attempt)

    async def wait(self, task_id: str) -> Task:
        """Wait until every attempt of a task has ended."""
        state = self._state(task_id)
        runners = [a.runner for a in state.attempts if a.runner is not None]
        if runners:
            await asyncio.gather(*runners, return_exceptions=True)
        return state.task

    # --- the work ------------------------------------------------------------------

    async def _prepare(self, state: TaskState) -> None:
        """Snapshot right away, so the task starts from what the user sees now."""
        try:
            state.snapshot = await self._in_thread(
                snapshots.take_snapshot, state.folder, self.paths
            )
            state.task.repository = str(state.snapshot.repo_root)
            await self._persist_task(state)
        except Exception as exc:
            log.exception("snapshot failed for %s", state.task.task_id)
            state.snapshot_error = f"snapshot failed: {exc}"
            state.task.reason = f"could not snapshot the workspace: {exc}"
            for attempt in state.attempts:
                if attempt.runner is not None:
                    attempt.runner.cancel()  # queued attempts fail at once
        finally:
            state.prepared.set()

    async def _run_attempt(self, state: TaskState, attempt: AttemptState) -> None:
        """One attempt, from its queue slot to its recorded result.

        Slots are taken in queue order (the semaphore wakes waiters first come, first
        served) and held until the result is recorded: recording a large copy's diff is
        work too, and ``maxParallel`` counts it."""
        try:
            await self._slots.acquire()
        except asyncio.CancelledError:
            await self._finish_attempt(state, attempt, *self._cancelled(state))
            return
        try:
            status, reason, keep = await self._attempt_outcome(state, attempt)
            attempt.finishing = True
            await self._finish_attempt(state, attempt, status, reason, keep_result=keep)
        finally:
            attempt.finishing = False
            self._slots.release()

    def _cancelled(self, state: TaskState) -> tuple[Status, str]:
        if state.snapshot_error is not None:
            return "failed", state.snapshot_error
        return "cancelled", "cancelled by the user"

    async def _attempt_outcome(
        self, state: TaskState, attempt: AttemptState
    ) -> tuple[Status, str | None, bool]:
        """Run the attempt; return its status, the reason when it did not complete, and
        whether its copy's result is worth recording."""
        info = attempt.info
        try:
            await self._set_attempt(state, attempt, "preparing")
            await state.prepared.wait()
            if state.snapshot is None:
                raise EngineError(state.task.reason or "the workspace could not be snapshotted")
            info.started_at = now_iso()
            if attempt.copy is None:
                dest = self.paths.copy(state.task.task_id, info.attempt)
                attempt.copy = await self._in_thread(self._copies.create, state.snapshot, dest)
                info.workspace_kind = attempt.copy.kind
                info.workspace_reason = attempt.copy.reason
                await self._persist_attempt(state, attempt)
            else:
                await self._in_thread(self._copies.reopen, attempt.copy)
            copy = attempt.copy
            quota = DiskQuota(
                self.settings.max_disk_bytes,
                lambda: self._in_thread(self._copies.disk_usage, copy),
            )
            info.report = await within_quota(self._work_in_copy(state, attempt), quota)
            return "completed", None, True
        except asyncio.CancelledError:
            return *self._cancelled(state), True
        except DiskQuotaExceeded as exc:
            return "failed", f"{exc}; no diff was recorded and the copy was removed", False
        except SandboxUnavailable as exc:
            return "failed", f"sandbox unavailable: {exc}", True
        except TimeoutError:
            return "failed", f"time limit reached ({self.settings.max_wall_seconds}s)", True
        except (LimitsExceeded, NoAnswer, ModelError, EngineError, RepoConfigError) as exc:
            return "failed", str(exc), True
        except Exception as exc:
            log.exception("attempt %s/%s crashed", state.task.task_id, info.attempt)
            return "failed", f"internal error: {type(exc).__name__}: {exc}", True

    async def _work_in_copy(self, state: TaskState, attempt: AttemptState) -> str:
        """Setup (on a fresh attempt), then the agent in its sandbox; returns the report."""
        assert attempt.copy is not None and state.snapshot is not None
        info = attempt.info
        fresh = not attempt.conversation
        config, instructions = await self._in_thread(
            _repository_rules, attempt.copy.path, state.snapshot.subdir
        )
        attempt.check_extra = [*instructions.check_commands, *config.checks.commands]
        if fresh:
            info.alerts, info.warnings = [], []
            if config.setup.script:
                await self._run_setup(state, attempt, config.setup)
            prompt = state.task.prompt
            if instructions.text:
                prompt = f"{prompt}\n\n{user_instructions(instructions)}"
            attempt.conversation = [SystemMsg(system_prompt(state.task.mode)), UserMsg(prompt)]
        attempt.sandbox = await open_sandbox(
            self.settings.sandbox,
            SandboxSpec(
                root=attempt.copy.path,
                writable=state.task.mode == "code",
                env=SANDBOX_ENV,
                limits=Limits(timeout_s=float(self.settings.command_timeout_seconds)),
            ),
        )
        info.sandbox = attempt.sandbox.name
        _set_alerts(
            info, verify.merge(info.alerts, verify.sandbox_alerts(attempt.sandbox.warnings))
        )
        await self._set_attempt(state, attempt, "running")
        return await self._agent(state, attempt)

    async def _agent(self, state: TaskState, attempt: AttemptState) -> str:
        assert attempt.copy is not None and attempt.sandbox is not None
        info = attempt.info
        # Making a client loads TLS certificates (tens of ms): not on the event loop.
        model = await self._in_thread(self._model_factory, self.settings)
        toolbox = Toolbox(
            attempt.sandbox,
            attempt.copy.path,
            writable=state.task.mode == "code",
            recorder=_Recorder(self, state, attempt),
            next_chunk_id=attempt.next_chunk_id,
            max_timeout_s=float(self.settings.command_timeout_seconds),
        )
        progress = AgentProgress(
            steps=info.steps,
            input_tokens=info.usage.input_tokens,
            output_tokens=info.usage.output_tokens,
            cached_tokens=info.usage.cached_tokens,
        )
        limits = AgentLimits(
            max_steps=self.settings.max_steps,
            max_wall_s=float(self.settings.max_wall_seconds),
            max_tokens=self.settings.max_tokens,
            context_chars=self.settings.context_tokens * 3,
        )

        def on_text(text: str) -> None:
            self._log(state, attempt, "message", text=text)

        def on_step(p: AgentProgress) -> None:
            info.steps = p.steps
            info.usage = self.settings.prices.usage(
                p.input_tokens, p.output_tokens, p.cached_tokens
            )
            self._touch(state)

        try:
            async with asyncio.timeout(self.settings.max_wall_seconds):
                return await run_agent(
                    model,
                    toolbox,
                    attempt.conversation,
                    limits,
                    progress,
                    on_text=on_text,
                    on_step=on_step,
                )
        finally:
            await model.close()

    async def _run_setup(self, state: TaskState, attempt: AttemptState, setup: SetupConfig) -> None:
        """Run the repository's setup script in the copy, with network and secrets if
        the config allows them. The agent's sandbox, opened after, has neither."""
        assert attempt.copy is not None and setup.script is not None
        secrets = {name: os.environ[name] for name in setup.secrets if name in os.environ}
        for name in setup.secrets:
            if name not in secrets:
                _set_alerts(attempt.info, [*attempt.info.alerts, verify.missing_secret(name)])
        sandbox = await open_sandbox(
            self.settings.sandbox,
            SandboxSpec(
                root=attempt.copy.path,
                writable=True,
                network=setup.network,
                env={**SANDBOX_ENV, **secrets},
                limits=Limits(timeout_s=float(setup.timeout_seconds)),
            ),
        )
        recorder = _Recorder(self, state, attempt, setup=True)
        chunk_id = attempt.next_chunk_id()
        command = setup.script
        try:
            recorder.command_started(chunk_id, command)
            started = time.time()
            result = await sandbox.run(
                command,
                timeout_s=float(setup.timeout_seconds),
                on_output=lambda text: recorder.command_output(chunk_id, text),
            )
        finally:
            await sandbox.close()
        recorder.command_finished(
            CommandRecord(
                chunk_id=chunk_id,
                command=command,
                exit_code=result.exit_code,
                duration_ms=result.duration_ms,
                output=result.output,
                timed_out=result.timed_out,
                started_at=started,
            )
        )
        if result.exit_code != 0:
            raise EngineError(
                f"setup script failed with exit code {result.exit_code} (log: {chunk_id})"
            )

    def _report_alerts(self, state: TaskState, attempt: AttemptState) -> list[Alert]:
        info = attempt.info
        if info.report is None or attempt.copy is None or state.snapshot is None:
            return []
        outputs = {c.chunk_id: c.output for c in attempt.commands}
        outputs.update(attempt.setup_outputs)
        info.citations = resolve_citations(
            info.report,
            copy_root=attempt.copy.path,
            repo_root=state.snapshot.repo_root,
            chunks=outputs,
        )
        return verify.report_alerts(info.report, info.citations, info.checks, attempt.check_extra)

    async def _finish_attempt(
        self,
        state: TaskState,
        attempt: AttemptState,
        status: Status,
        reason: str | None,
        *,
        keep_result: bool = True,
    ) -> None:
        info = attempt.info
        diff: str | None = None
        if attempt.sandbox is not None:
            await attempt.sandbox.close()
            attempt.sandbox = None
        if attempt.copy is not None and state.snapshot is not None and keep_result:
            try:
                result = await self._in_thread(results.record_result, state.snapshot, attempt.copy)
                attempt.result_tree = result.tree
                diff = result.diff
                info.files = result.files
                info.diff_stat = result.stat
            except Exception as exc:
                log.exception("recording the result failed")
                status = "failed"
                reason = f"could not record the diff: {exc}"
        info.checks = _checks(attempt.commands, attempt.check_extra)
        if status == "completed":
            try:
                found = await self._in_thread(self._report_alerts, state, attempt)
            except Exception:
                log.exception("checking the report failed")
                found = [verify.UNCHECKED]
            _set_alerts(info, verify.merge([a for a in info.alerts if a not in found], found))
        if attempt.copy is not None and status != "cancelled":
            try:
                info.workspace_bytes = await self._in_thread(self._copies.disk_usage, attempt.copy)
                await self._in_thread(self._copies.release, attempt.copy)
            except OSError as exc:
                log.warning("could not measure or release copy %s: %s", attempt.copy.path, exc)
        info.status = status
        info.reason = reason
        info.finished_at = now_iso()
        self._batcher.flush()
        if (status == "cancelled" or not keep_result) and attempt.copy is not None:
            await self._in_thread(self._copies.remove, attempt.copy)
            attempt.copy = None
            await self._db(self._require_store().forget_copy, state.task.task_id, info.attempt)
        await self._persist_attempt(state, attempt, diff=diff if diff is not None else "")
        self._log(state, attempt, "status", status=status, text=reason)
        self._refresh(state)
        await self._persist_task(state)
        self._changed(state)

    async def _collect_garbage(self) -> None:
        """Unmount idle copies, remove orphaned ones and bases that no copy uses."""
        attempts = [a for s in self._tasks.values() for a in s.attempts if a.copy is not None]
        live = [a.copy.path for a in attempts if a.copy is not None]
        mounted = [
            a.copy.path
            for a in attempts
            if a.copy is not None and a.info.status not in TERMINAL_STATUSES
        ]
        try:
            await self._in_thread(lambda: collect_garbage(self.paths, live, mounted=mounted))
        except OSError as exc:
            log.warning("garbage collection failed: %s", exc)

    # --- state helpers -------------------------------------------------------------

    async def _set_attempt(self, state: TaskState, attempt: AttemptState, status: Status) -> None:
        attempt.info.status = status
        self._log(state, attempt, "status", status=status)
        self._refresh(state)
        await self._persist_attempt(state, attempt)
        await self._persist_task(state)
        self._changed(state)

    def _refresh(self, state: TaskState) -> None:
        task = state.task
        infos = [a.info for a in state.attempts]
        task.status = aggregate_status([i.status for i in infos])
        best = self._default_attempt(state)
        chosen = infos[best - 1]
        task.diff_stat = msgspec.structs.replace(chosen.diff_stat)
        task.checks_passed = sum(c.passed for c in chosen.checks)
        task.checks_failed = sum(not c.passed for c in chosen.checks)
        if task.status == "failed":
            task.reason = task.reason or next((i.reason for i in infos if i.reason), None)
        elif task.status == "cancelled":
            task.reason = "cancelled by the user"
        task.updated_at = now_iso()

    def _default_attempt(self, state: TaskState) -> int:
        """The first completed attempt, else the first one."""
        for a in state.attempts:
            if a.info.status == "completed":
                return a.info.attempt
        return 1

    def _touch(self, state: TaskState) -> None:
        state.task.updated_at = now_iso()

    def _changed(self, state: TaskState) -> None:
        summary = state.summary()
        for listener in self._listeners:
            listener.task_changed(summary)

    def _log(
        self,
        state: TaskState,
        attempt: AttemptState,
        kind: LogKind,
        **fields: Any,
    ) -> None:
        entry = TaskLog(
            task_id=state.task.task_id,
            attempt=attempt.info.attempt,
            kind=kind,
            **fields,
        )
        self._batcher.add(entry)

    def _emit_log_now(self, entries: list[TaskLog]) -> None:
        for entry in entries:
            for listener in self._listeners:
                listener.task_log(entry)
        if self._store is not None:
            self._db_submit(self._store.append_logs, entries)

    def _state(self, task_id: str) -> TaskState:
        try:
            return self._tasks[task_id]
        except KeyError:
            raise UnknownTask(
                f"no task with id {task_id!r}; errand.listTasks shows the existing ones"
            ) from None

    def _require_store(self) -> Store:
        if self._store is None:
            raise EngineError("the engine has not started")
        return self._store

    async def _persist_task(self, state: TaskState) -> None:
        snap = state.snapshot
        row = (
            SnapshotRow(
                repo_root=str(snap.repo_root),
                mirror=str(snap.mirror),
                commit=snap.commit,
                tree=snap.tree,
                head=snap.head,
                subdir=snap.subdir,
            )
            if snap
            else None
        )
        await self._db(self._require_store().save_task, state.task, row)

    async def _persist_attempt(
        self, state: TaskState, attempt: AttemptState, diff: str | None = None
    ) -> None:
        copy = attempt.copy
        await self._db(
            self._require_store().save_attempt,
            state.task.task_id,
            attempt.info,
            result_tree=attempt.result_tree,
            diff=diff,
            conversation=encode_items(attempt.conversation) if attempt.conversation else None,
            copy=CopyRow(str(copy.path), str(copy.index), copy.kind) if copy else None,
            chunk_seq=attempt.chunk_seq,
        )

    def record_command(
        self, state: TaskState, attempt: AttemptState, record: CommandRecord, *, setup: bool = False
    ) -> None:
        if setup:
            attempt.setup_outputs[record.chunk_id] = record.output
        else:
            attempt.commands.append(record)
            attempt.info.checks = _checks(attempt.commands, attempt.check_extra)
        self._db_submit(
            self._require_store().save_chunk,
            state.task.task_id,
            attempt.info.attempt,
            ChunkRow(
                record.chunk_id,
                record.command,
                record.exit_code,
                record.duration_ms,
                record.timed_out,
                record.started_at,
                record.output,
            ),
        )
        self._db_submit(
            self._require_store().save_attempt,
            state.task.task_id,
            attempt.info,
            chunk_seq=attempt.chunk_seq,
        )

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_thread, lambda: fn(*args, **kwargs))

    def _db_submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        future = self._db_thread.submit(fn, *args, **kwargs)
        future.add_done_callback(_log_failure)

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._io, lambda: fn(*args))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def conversation(self, task_id: str, attempt: int) -> list[Item]:
        return self.attempt_state(task_id, attempt).conversation

    async def load_conversation(self, task_id: str, attempt: int) -> list[Item]:
        data = await self._db(self._require_store().load_conversation, task_id, attempt)
        return decode_items(data) if data else []


class _Recorder:
    """Feeds the toolbox's command events into the engine's log and store."""

    def __init__(
        self, engine: TaskEngine, state: TaskState, attempt: AttemptState, *, setup: bool = False
    ) -> None:
        self._engine = engine
        self._state = state
        self._attempt = attempt
        self._setup = setup

    def command_started(self, chunk_id: str, command: str) -> None:
        self._engine._log(
            self._state, self._attempt, "commandStarted", chunk_id=chunk_id, command=command
        )

    def command_output(self, chunk_id: str, text: str) -> None:
        self._engine._log(self._state, self._attempt, "output", chunk_id=chunk_id, text=text)

    def command_finished(self, record: CommandRecord) -> None:
        self._engine._log(
            self._state,
            self._attempt,
            "commandFinished",
            chunk_id=record.chunk_id,
            command=record.command,
            exit_code=record.exit_code,
            duration_ms=record.duration_ms,
        )
        self._engine.record_command(self._state, self._attempt, record, setup=self._setup)

    def files_changed(self, summary: str) -> None:
        self._engine._log(
            self._state, self._attempt, "message", command="apply_patch", text=summary
        )


def _set_alerts(info: Attempt, alerts: list[Alert]) -> None:
    info.alerts = alerts
    info.warnings = verify.warning_texts(alerts)


def _checks(commands: list[CommandRecord], extra: list[str]) -> list[Check]:
    return [
        Check(
            command=c.command,
            exit_code=c.exit_code,
            passed=c.exit_code == 0,
            duration_ms=c.duration_ms,
            chunk_id=c.chunk_id,
        )
        for c in commands
        if check_rules.is_check(c.command, extra)
    ]


def _repository_rules(copy_root: Path, subdir: str) -> tuple[RepoConfig, AgentsDoc]:
    config = load_repo_config(copy_root)
    cwd = copy_root / subdir if subdir else copy_root
    return config, load_agents_md(copy_root, cwd)


def _load_changes(snapshot: Snapshot, attempt: AttemptState) -> list[FileChange]:
    assert attempt.result_tree is not None
    text_files = [f for f in attempt.info.files if not f.binary]
    specs: list[tuple[str, str]] = []
    for f in text_files:
        specs.append((snapshot.tree, f.old_path or f.path))
        specs.append((attempt.result_tree, f.path))
    blobs = results.read_blobs(snapshot.mirror, specs)
    changes: list[FileChange] = []
    for i, f in enumerate(text_files):
        base, new = blobs[2 * i], blobs[2 * i + 1]
        changes.append(
            FileChange(
                path=f.path,
                change=f.change,
                old_path=f.old_path,
                base_text=_text(base) if f.change != "added" else None,
                new_text=_text(new) if f.change != "deleted" else None,
            )
        )
    return changes


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", "surrogateescape")


def _folder(value: str) -> Path:
    if value.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(value).path))
    return Path(value).expanduser()


def _log_failure(future: Any) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("store write failed: %s", exc, exc_info=exc)
