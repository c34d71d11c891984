"""What a front end asks of errand, wherever the engine runs.

:class:`EngineAPI` is the one interface the front ends (the LSP server, the CLI) use.
:class:`InProcess` answers it with an engine in the same process (``ERRAND_DAEMON=off``,
and inside the daemon itself); :class:`errand.daemon.client.DaemonClient` answers it
with the daemon's engine, over its socket.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from errand.engine.engine import TaskEngine
from errand.engine.journal import EngineListener
from errand.wire import daemon as d
from errand.wire.protocol import (
    CreateBranchParams,
    CreateBranchResult,
    DelegateParams,
    Task,
    TaskLog,
    TaskSummary,
)
from errand.workspace.apply import read_current


class EngineAPI(Protocol):
    def add_listener(self, listener: EngineListener) -> None: ...

    async def delegate(self, params: DelegateParams) -> str:
        """``params.workspace`` names the folder: a front end fills in its default."""
        ...

    async def list_tasks(self) -> list[TaskSummary]: ...

    async def get_task(self, task_id: str) -> Task: ...

    async def get_diff(self, task_id: str, attempt: int | None) -> d.DiffResult: ...

    async def plan(self, params: d.PlanParams) -> d.PlanResult: ...

    async def applied(self, task_id: str) -> None: ...

    async def logs(self, task_id: str, attempt: int | None) -> list[TaskLog]: ...

    async def cancel(self, task_id: str) -> None: ...

    async def discard(self, task_id: str) -> None: ...

    async def follow_up(self, task_id: str, prompt: str) -> str: ...

    async def resume(self, task_id: str) -> str: ...

    async def create_branch(self, params: CreateBranchParams) -> CreateBranchResult: ...

    async def wait(self, task_id: str) -> Task: ...

    async def close(self) -> None: ...


class InProcess:
    """The engine's own answers, in this process."""

    def __init__(self, engine: TaskEngine) -> None:
        self.engine = engine

    def add_listener(self, listener: EngineListener) -> None:
        self.engine.add_listener(listener)

    async def delegate(self, params: DelegateParams) -> str:
        return await self.engine.delegate(params, None)

    async def list_tasks(self) -> list[TaskSummary]:
        return self.engine.list_tasks()

    async def get_task(self, task_id: str) -> Task:
        return self.engine.get_task(task_id)

    async def get_diff(self, task_id: str, attempt: int | None) -> d.DiffResult:
        diff, files, number = await self.engine.get_diff(task_id, attempt)
        return d.DiffResult(diff=diff, files=files, attempt=number)

    async def plan(self, params: d.PlanParams) -> d.PlanResult:
        task = self.engine.get_task(params.task_id)
        root = Path(task.repository or ".")
        current = read_current(root, params.opened)
        if params.preview:
            number, plan = await self.engine.preview(params.task_id, params.attempt, current)
        else:
            plan = await self.engine.plan_apply(
                params.task_id, params.attempt, params.files, current
            )
            number = self.engine.attempt_state(params.task_id, params.attempt).info.attempt
        return d.PlanResult(attempt=number, repository=str(root), plan=plan)

    async def applied(self, task_id: str) -> None:
        await self.engine.mark_applied(task_id)

    async def logs(self, task_id: str, attempt: int | None) -> list[TaskLog]:
        return await self.engine.logs(task_id, attempt)

    async def cancel(self, task_id: str) -> None:
        await self.engine.cancel(task_id)

    async def discard(self, task_id: str) -> None:
        await self.engine.discard(task_id)

    async def follow_up(self, task_id: str, prompt: str) -> str:
        return await self.engine.follow_up(task_id, prompt)

    async def resume(self, task_id: str) -> str:
        return await self.engine.resume(task_id)

    async def create_branch(self, params: CreateBranchParams) -> CreateBranchResult:
        made = await self.engine.create_branch(params.task_id, params.attempt, params.branch)
        return CreateBranchResult(branch=made.branch, commit=made.commit)

    async def wait(self, task_id: str) -> Task:
        return await self.engine.wait(task_id)

    async def close(self) -> None:
        await self.engine.shutdown()
