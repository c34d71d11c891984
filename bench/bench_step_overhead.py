"""Benchmark: what the engine itself costs per agent step, without model or command time.

Runs one task in-process on a :class:`errand.engine.engine.TaskEngine` (real store, real bubblewrap
sandbox, a listener that encodes every notification as the LSP server would). The model
is an in-process script that asks for ``true`` at every step and answers at the end; it
notes when each request enters and leaves it. Every sandbox command is timed as well.
The engine's overhead per step is the time between one model answer and the next
request, less the command's own time.

The baseline, from the same run, is the command itself (``true`` in bubblewrap): the
cheapest thing a step can do.

Run: .venv/bin/python bench/bench_step_overhead.py [--steps N]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
from common import git, median, percentile, table, verdict

from errand.config.settings import Settings
from errand.engine.engine import TaskEngine
from errand.hosts import local as host_module
from errand.models.base import (
    AssistantMsg,
    Item,
    ModelTurn,
    TextSink,
    ToolCall,
    ToolSpec,
    TurnUsage,
)
from errand.wire import protocol
from errand.wire.protocol import DelegateParams, TaskLog, TaskSummary

TARGET_MS = 5.0


class ScriptedModel:
    """The only stand-in: asks for ``true`` ``steps`` times, then answers."""

    name = "scripted"

    def __init__(self, steps: int, marks: list[tuple[float, float]]) -> None:
        self._steps = steps
        self._marks = marks

    async def complete(
        self, items: list[Item], tools: list[ToolSpec], on_text: TextSink | None = None
    ) -> ModelTurn:
        entered = time.perf_counter()
        n = len(self._marks)
        if n < self._steps:
            call = ToolCall(id=f"call_{n}", name="shell", arguments='{"command": "true"}')
            message = AssistantMsg(tool_calls=[call])
        else:
            message = AssistantMsg(text="done")
        turn = ModelTurn(message=message, usage=TurnUsage(input_tokens=10, output_tokens=2))
        self._marks.append((entered, time.perf_counter()))
        return turn

    async def close(self) -> None:
        return None


class EncodingListener:
    """Does what the LSP server does with each event: encode it for the wire."""

    def __init__(self) -> None:
        self.count = 0

    def task_changed(self, summary: TaskSummary, removed: bool = False) -> None:
        msgspec.json.encode(protocol.to_wire(summary))
        self.count += 1

    def task_log(self, entry: TaskLog) -> None:
        msgspec.json.encode(protocol.to_wire(entry))
        self.count += 1


async def run(repo: Path, data_dir: Path, steps: int) -> tuple[list[float], list[float], int]:
    marks: list[tuple[float, float]] = []
    commands: list[float] = []
    real_open = getattr(host_module, "open_sandbox")  # noqa: B009 - patched below

    async def timed_open(name: str, spec: Any) -> Any:
        sandbox = await real_open(name, spec)
        real_run = sandbox.run

        async def run_timed(command: str, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await real_run(command, **kwargs)
            finally:
                commands.append(time.perf_counter() - started)

        setattr(sandbox, "run", run_timed)  # noqa: B010 - time every command
        return sandbox

    setattr(host_module, "open_sandbox", timed_open)  # noqa: B010
    settings = Settings(data_dir=data_dir, sandbox="bwrap", max_steps=steps + 10)
    listener = EncodingListener()
    engine = TaskEngine(
        settings, model_factory=lambda s: ScriptedModel(steps, marks), listener=listener
    )
    await engine.start()
    try:
        task_id = await engine.delegate(
            DelegateParams(prompt="bench", workspace=str(repo)), default_folder=None
        )
        task = await engine.wait(task_id)
        if task.status != "completed":
            raise RuntimeError(f"the task ended {task.status}: {task.reason}")
    finally:
        await engine.shutdown()
        setattr(host_module, "open_sandbox", real_open)  # noqa: B010
    overheads = [(marks[i + 1][0] - marks[i][1] - commands[i]) * 1000 for i in range(len(commands))]
    return overheads, [c * 1000 for c in commands], listener.count


async def adapter_cpu(folder: Path, turns: int = 20) -> list[float]:
    """Client-side CPU of one real Chat adapter turn (the ``openai`` package building the
    request, httpx, parsing the streamed reply), against the replay server running in
    another process: what the event loop spends per model turn besides the engine."""
    from common import Replay

    from errand.agent.prompts import system_prompt
    from errand.agent.tools import APPLY_PATCH, SHELL
    from errand.models import create_model
    from errand.models.base import SystemMsg, ToolResult, UserMsg

    items: list[Item] = [SystemMsg(system_prompt("code")), UserMsg("fix the failing test")]
    for i in range(10):
        call = ToolCall(id=f"call_{i}", name="shell", arguments='{"command": "pytest -q"}')
        items += [AssistantMsg(tool_calls=[call]), ToolResult(f"call_{i}", "shell", "ok\n" * 20)]
    scenario = {"name": "one", "turns": [{"content": "done"}] * 12}
    replay = Replay([scenario], folder)
    model = create_model("chat", "one", base_url=replay.url, api_key="sk-bench")
    samples = []
    try:
        for _ in range(turns):
            started = time.process_time()
            await model.complete(items, [SHELL, APPLY_PATCH])
            samples.append((time.process_time() - started) * 1000)
    finally:
        await model.close()
        replay.stop()
    return samples[2:]


def measure(steps: int = 50) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="errand-bench-step-"))
    try:
        repo = tmp / "repo"
        repo.mkdir()
        for i in range(10):
            (repo / f"m{i}.py").write_text(f"x = {i}\n")
        git(repo, "init", "-q")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "one")
        overheads, commands, events = asyncio.run(run(repo, tmp / "data", steps))
        adapter = asyncio.run(adapter_cpu(tmp))
    finally:
        from errand.workspace.copies.mounts import mounts_under, unmount

        for point in mounts_under(tmp):
            unmount(point)
        shutil.rmtree(tmp, ignore_errors=True)
    over, cmd = median(overheads), median(commands)
    rows = [
        ["engine overhead per step", over, percentile(overheads, 90), cmd, f"{over / cmd:.2f}x"],
        ["command `true` in bwrap (baseline)", cmd, percentile(commands, 90), cmd, "1x"],
        ["(model time) Chat adapter CPU per turn", median(adapter), percentile(adapter, 90), cmd,
         f"{median(adapter) / cmd:.2f}x"],
    ]  # fmt: skip
    print(f"{len(overheads)} steps, {events} events encoded for the client")
    print(table(["measure (ms)", "p50", "p90", "baseline", "ratio"], rows))
    print(f"target: <= {TARGET_MS:.0f} ms per step -> {verdict(over <= TARGET_MS)}")
    return {
        "step_overhead_p50_ms": over,
        "command_p50_ms": cmd,
        "adapter_cpu_p50_ms": median(adapter),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    measure(args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
