"""Standard ``$/progress`` for each running task, when the client supports it.

One token per task (``errand-<taskId>``), created with ``window/workDoneProgress/create``;
``begin`` when the task is first seen running, ``report`` on each change, ``end`` when it
ends. Cancelling the progress cancels the task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from lsprotocol import types
from pygls.progress import Progress

from errand.wire.protocol import TERMINAL_STATUSES, TaskSummary

log = logging.getLogger(__name__)
Spawn = Callable[[Coroutine[Any, Any, None]], None]


class TaskProgress:
    def __init__(self, progress: Progress, spawn: Spawn) -> None:
        self._progress = progress
        self._spawn = spawn
        self._tokens: dict[str, str] = {}

    def update(self, summary: TaskSummary) -> None:
        token = self._tokens.get(summary.task_id)
        if summary.status in TERMINAL_STATUSES:
            if token is not None:
                del self._tokens[summary.task_id]
                end = types.WorkDoneProgressEnd(message=f"{summary.title}: {summary.status}")
                self._progress.end(token, end)
            return
        message = f"{summary.status} · +{summary.diff_stat.added} −{summary.diff_stat.removed}"
        if token is None:
            token = f"errand-{summary.task_id}"
            self._tokens[summary.task_id] = token
            self._spawn(self._begin(token, summary, message))
        elif token in self._progress.tokens:
            self._progress.report(token, types.WorkDoneProgressReport(message=message))

    async def _begin(self, token: str, summary: TaskSummary, message: str) -> None:
        try:
            await self._progress.create_async(token)
        except Exception as exc:  # noqa: BLE001 - progress is optional; the client may refuse
            log.info("client refused progress token %s: %s", token, exc)
            return
        begin = types.WorkDoneProgressBegin(
            title=f"errand: {summary.title}", message=message, cancellable=True
        )
        self._progress.begin(token, begin)

    def task_of(self, token: str) -> str | None:
        """The task a progress token belongs to."""
        return next((task for task, known in self._tokens.items() if known == token), None)
