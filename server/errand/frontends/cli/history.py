"""The CLI commands over past and running tasks: ``tasks``, ``show``, ``diff``,
``apply``, and ``schema``.

The read-only ones open the store read-only: they change nothing, so a live server's
running tasks show as running.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from errand.engine.engine import TaskEngine
from errand.engine.errors import EngineError
from errand.frontends.cli.console import render_task
from errand.frontends.cli.options import load_settings, model_factory
from errand.workspace.apply import read_current, write_plan


async def with_engine(
    args: argparse.Namespace, fn: Callable[[TaskEngine], Awaitable[int]], *, read_only: bool
) -> int:
    settings = load_settings(args)
    engine = TaskEngine(settings, model_factory=model_factory)
    await engine.start(read_only=read_only)
    try:
        return await fn(engine)
    except EngineError as exc:
        print(f"errand: {exc}", file=sys.stderr)
        return 2
    finally:
        await engine.shutdown()


def cmd_tasks(args: argparse.Namespace) -> int:
    async def body(engine: TaskEngine) -> int:
        tasks = engine.list_tasks()
        if not tasks:
            print("no tasks")
        for t in tasks:
            stat = t.diff_stat
            print(
                f"{t.task_id}  {t.status:<9}  +{stat.added:<4} −{stat.removed:<4} "
                f"{t.created_at[:19].replace('T', ' ')}  {t.title}"
            )
        return 0

    return asyncio.run(with_engine(args, body, read_only=True))


def cmd_show(args: argparse.Namespace) -> int:
    async def body(engine: TaskEngine) -> int:
        task = engine.get_task(args.task_id)
        diff, _, _ = await engine.get_diff(args.task_id, None)
        render_task(task, diff)
        return 0

    return asyncio.run(with_engine(args, body, read_only=True))


def cmd_diff(args: argparse.Namespace) -> int:
    async def body(engine: TaskEngine) -> int:
        diff, _, _ = await engine.get_diff(args.task_id, args.attempt)
        sys.stdout.write(diff)
        return 0

    return asyncio.run(with_engine(args, body, read_only=True))


def cmd_apply(args: argparse.Namespace) -> int:
    async def body(engine: TaskEngine) -> int:
        task = engine.get_task(args.task_id)
        root = Path(task.repository or ".")
        plan = await engine.plan_apply(
            args.task_id, args.attempt, args.files or None, read_current(root)
        )
        refusal = plan.refusal()
        if refusal is not None:
            print(f"errand: not applied: {refusal}")
            for conflict in plan.conflict_lines():
                print(f"  {conflict}")
            return 1
        await asyncio.to_thread(write_plan, root, plan)
        await engine.mark_applied(args.task_id)
        print(f"applied {len(plan.files)} file(s): {', '.join(plan.files)}")
        if plan.merged:
            print(f"merged with your changes: {', '.join(plan.merged)}")
        return 0

    return asyncio.run(with_engine(args, body, read_only=False))


def cmd_schema(args: argparse.Namespace) -> int:
    from errand.wire.schema import render_schema, write_schema

    if args.write:
        print(write_schema())
    else:
        sys.stdout.write(render_schema())
    return 0
