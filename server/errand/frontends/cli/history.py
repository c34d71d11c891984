"""The CLI commands over past and running tasks: ``tasks``, ``show``, ``diff``,
``apply``, ``cancel``, ``discard``, ``resume`` and ``schema``.

They use the data folder's daemon when one runs. Without one, the commands that only
show open the store read-only: they change nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from errand.daemon.api import EngineAPI
from errand.frontends.cli.console import render_task
from errand.frontends.cli.engines import with_engine
from errand.wire.daemon import PlanParams
from errand.workspace.apply import conflict_lines, plan_files, refusal, write_plan


def cmd_tasks(args: argparse.Namespace) -> int:
    async def body(api: EngineAPI) -> int:
        tasks = await api.list_tasks()
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
    async def body(api: EngineAPI) -> int:
        task = await api.get_task(args.task_id)
        render_task(task, (await api.get_diff(args.task_id, None)).diff)
        return 0

    return asyncio.run(with_engine(args, body, read_only=True))


def cmd_diff(args: argparse.Namespace) -> int:
    async def body(api: EngineAPI) -> int:
        sys.stdout.write((await api.get_diff(args.task_id, args.attempt)).diff)
        return 0

    return asyncio.run(with_engine(args, body, read_only=True))


def cmd_apply(args: argparse.Namespace) -> int:
    async def body(api: EngineAPI) -> int:
        ask = PlanParams(task_id=args.task_id, attempt=args.attempt, files=args.files or None)
        planned = await api.plan(ask)
        plan, root = planned.plan, Path(planned.repository)
        refused = refusal(plan)
        if refused is not None:
            print(f"errand: not applied: {refused}")
            for conflict in conflict_lines(plan):
                print(f"  {conflict}")
            return 1
        await asyncio.to_thread(write_plan, root, plan)
        await api.applied(args.task_id)
        files = plan_files(plan)
        print(f"applied {len(files)} file(s): {', '.join(files)}")
        if plan.merged:
            print(f"merged with your changes: {', '.join(plan.merged)}")
        return 0

    return asyncio.run(with_engine(args, body, read_only=False))


def cmd_cancel(args: argparse.Namespace) -> int:
    async def body(api: EngineAPI) -> int:
        await api.cancel(args.task_id)
        print(f"cancelled {args.task_id}")
        return 0

    return asyncio.run(with_engine(args, body, read_only=False))


def cmd_discard(args: argparse.Namespace) -> int:
    async def body(api: EngineAPI) -> int:
        await api.discard(args.task_id)
        print(f"discarded {args.task_id}")
        return 0

    return asyncio.run(with_engine(args, body, read_only=False))


def cmd_resume(args: argparse.Namespace) -> int:
    """Resumed work goes on in the daemon (started when none runs), not in this command."""

    async def body(api: EngineAPI) -> int:
        await api.resume(args.task_id)
        print(f"resumed {args.task_id}; `errand show {args.task_id}` shows how it goes")
        return 0

    return asyncio.run(with_engine(args, body, read_only=False, daemon=True))


def cmd_schema(args: argparse.Namespace) -> int:
    from errand.wire.schema import render_schema, write_schema

    if args.write:
        print(write_schema())
    else:
        sys.stdout.write(render_schema())
    return 0
