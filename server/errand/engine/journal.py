"""Where the engine says what happened: to its listeners, and to the store.

Every change of a task reaches the listeners (the front ends) at once and the store
through its one worker thread; command output is batched first (see
:class:`~errand.engine.logbatch.LogBatcher`). Must be used from the event loop's
thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from errand.agent.tools import CommandRecord
from errand.engine.logbatch import LogBatcher
from errand.engine.state import AttemptState, TaskState
from errand.engine.store import Store
from errand.models.base import encode_items
from errand.wire.protocol import LogKind, TaskLog, TaskSummary

log = logging.getLogger(__name__)
T = TypeVar("T")


class EngineListener(Protocol):
    def task_changed(self, summary: TaskSummary, removed: bool = False) -> None: ...

    def task_log(self, entry: TaskLog) -> None: ...


class Journal:
    def __init__(self) -> None:
        self.listeners: list[EngineListener] = []
        self.store: Store | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="errand-db")
        self._batcher = LogBatcher(self._emit)

    # --- the store's thread --------------------------------------------------------

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, lambda: fn(*args, **kwargs))

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Write without waiting; a failure is logged."""
        self._thread.submit(fn, *args, **kwargs).add_done_callback(_log_failure)

    def require_store(self) -> Store:
        if self.store is None:
            raise RuntimeError("the engine has not started")
        return self.store

    async def close(self) -> None:
        self._batcher.flush()
        if self.store is not None:
            await self.db(self.store.close)
        self._thread.shutdown(wait=True)

    # --- what the listeners hear ---------------------------------------------------

    def changed(self, state: TaskState) -> None:
        summary = state.summary()
        for listener in self.listeners:
            listener.task_changed(summary)

    def removed(self, state: TaskState) -> None:
        summary = state.summary()
        for listener in self.listeners:
            listener.task_changed(summary, True)

    def log(self, state: TaskState, attempt: AttemptState, kind: LogKind, **fields: Any) -> None:
        entry = TaskLog(task_id=state.task_id, attempt=attempt.info.attempt, kind=kind, **fields)
        self._batcher.add(entry)

    def flush(self) -> None:
        self._batcher.flush()

    def _emit(self, entries: list[TaskLog]) -> None:
        for entry in entries:
            for listener in self.listeners:
                listener.task_log(entry)
        if self.store is not None:
            self.submit(self.store.append_logs, entries)

    # --- records -------------------------------------------------------------------

    async def save_task(self, state: TaskState) -> None:
        await self.db(self.require_store().save_task, state.record)

    async def save_attempt(
        self, state: TaskState, attempt: AttemptState, *, diff: str | None = None
    ) -> None:
        conversation = encode_items(attempt.conversation) if attempt.conversation else None
        await self.db(
            self.require_store().save_attempt,
            state.task_id,
            attempt.record(),
            diff=diff,
            conversation=conversation,
        )

    def save_progress(self, state: TaskState, attempt: AttemptState) -> None:
        """Write the attempt and its conversation so far, without waiting."""
        conversation = encode_items(attempt.conversation)
        store = self.require_store()
        self.submit(store.save_attempt, state.task_id, attempt.record(), conversation=conversation)

    def save_command(self, state: TaskState, attempt: AttemptState, record: CommandRecord) -> None:
        store = self.require_store()
        self.submit(store.save_chunk, state.task_id, attempt.info.attempt, record)
        self.submit(store.save_attempt, state.task_id, attempt.record())


def _log_failure(future: Future[Any]) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("store write failed: %s", exc, exc_info=exc)
