"""Coalesce command output into few notifications.

A chatty command can print thousands of lines a second; clients get at most one
``output`` entry per chunk every ``interval`` seconds (or when a batch grows past
``max_bytes``). Other entries flush what is pending first, so order is preserved.
Must be used from the event loop's thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec

from errand.wire.protocol import TaskLog

Sink = Callable[[list[TaskLog]], None]


class LogBatcher:
    def __init__(self, sink: Sink, *, interval: float = 0.01, max_bytes: int = 64 * 1024) -> None:
        self._sink = sink
        self._interval = interval
        self._max_bytes = max_bytes
        self._pending: list[TaskLog] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None

    def add(self, entry: TaskLog) -> None:
        if entry.kind != "output":
            self._pending.append(entry)
            self.flush()
            return
        last = self._pending[-1] if self._pending else None
        if (
            last is not None
            and last.kind == "output"
            and last.task_id == entry.task_id
            and last.attempt == entry.attempt
            and last.chunk_id == entry.chunk_id
        ):
            self._pending[-1] = msgspec.structs.replace(
                last, text=(last.text or "") + (entry.text or "")
            )
        else:
            self._pending.append(entry)
        self._size += len(entry.text or "")
        if self._size >= self._max_bytes:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(self._interval, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        batch, self._pending, self._size = self._pending, [], 0
        self._sink(batch)
