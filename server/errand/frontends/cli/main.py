"""The ``errand`` command: ``serve`` (LSP on stdio), ``run``, ``demo``, ``tasks``,
``show``, ``diff``, ``apply`` and ``schema``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from errand import __version__
from errand.config.settings import Settings
from errand.engine.engine import TaskEngine
from errand.engine.errors import EngineError
from errand.models import Model, create_model
from errand.wire.protocol import DelegateParams
from errand.workspace.apply import read_current, write_plan


def model_factory(settings: Settings) -> Model:
    return create_model(
        settings.api, settings.model, base_url=settings.base_url, api_key=settings.api_key
    )


def load_settings(args: argparse.Namespace) -> Settings:
    settings, problems = Settings.from_env()
    overrides = {
        key: getattr(args, key)
        for key in ("model", "api", "sandbox", "data_dir", "max_steps", "max_parallel")
        if getattr(args, key, None) is not None
    }
    settings, more = settings.with_values(overrides, source="command line")
    for problem in problems + more:
        print(f"errand: {problem}", file=sys.stderr)
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    result: int = args.func(args)
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="errand",
        description="Delegate coding tasks to sandboxed background agents.",
    )
    parser.add_argument("--version", action="version", version=f"errand {__version__}")
    sub = parser.add_subparsers(dest="command")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", dest="data_dir", help="errand's data folder")
        p.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")

    def model_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", help="model name (ERRAND_MODEL)")
        p.add_argument("--api", choices=["responses", "chat"], help="OpenAI API (ERRAND_API)")
        p.add_argument(
            "--sandbox", choices=["bwrap", "docker", "none"], help="sandbox (ERRAND_SANDBOX)"
        )
        p.add_argument("--max-steps", dest="max_steps", type=int, help="agent steps per attempt")
        p.add_argument(
            "--max-parallel", dest="max_parallel", type=int, help="attempts running at once"
        )

    p = sub.add_parser("serve", help="speak LSP on stdio (for editors)")
    common(p)
    model_options(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("run", help="run a task in the current repository and stream it")
    p.add_argument("prompt", help="what the agent should do")
    p.add_argument("--repo", default=".", help="folder inside the git repository (default: .)")
    p.add_argument("--mode", choices=["code", "ask"], default="code")
    p.add_argument("--attempts", type=int, default=1, help="parallel attempts (1-4)")
    p.add_argument("--quiet-output", action="store_true", help="don't stream command output")
    common(p)
    model_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="run a recorded session on a sample repository")
    p.add_argument("--keep", action="store_true", help="keep the sample repository")
    common(p)
    p.add_argument(
        "--sandbox", choices=["bwrap", "docker", "none"], help="sandbox (default: bwrap)"
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("tasks", help="list tasks")
    common(p)
    p.set_defaults(func=cmd_tasks)

    p = sub.add_parser("show", help="show a task: summary, checks and diff")
    p.add_argument("task_id")
    common(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("diff", help="print a task's diff")
    p.add_argument("task_id")
    p.add_argument("--attempt", type=int)
    common(p)
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("apply", help="apply a task's diff to the working tree")
    p.add_argument("task_id")
    p.add_argument("--attempt", type=int)
    p.add_argument("files", nargs="*", help="only these files")
    common(p)
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("schema", help="print or write the wire protocol's JSON Schema")
    p.add_argument("--write", action="store_true", help="write the checked-in copy")
    p.set_defaults(func=cmd_schema)
    return parser


def _setup_logging(settings: Settings, args: argparse.Namespace) -> None:
    from errand.frontends.logfile import setup

    setup(settings.data_dir, verbose=getattr(args, "verbose", False))


# --- serve -----------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from errand.frontends.lsp.server import create_server

    settings = load_settings(args)
    _setup_logging(settings, args)
    server = create_server(settings, model_factory)
    server.start_io()
    return 0


# --- run / demo ------------------------------------------------------------------------


async def _run_task(settings: Settings, params: DelegateParams, folder: Path, quiet: bool) -> int:
    from errand.frontends.cli.console import ConsoleListener, render_task

    listener = ConsoleListener(show_output=not quiet)
    engine = TaskEngine(settings, model_factory=model_factory, listener=listener)
    await engine.start()
    try:
        task_id = await engine.delegate(params, folder)
        try:
            task = await engine.wait(task_id)
        except asyncio.CancelledError:
            await engine.cancel(task_id)
            raise
        diff, _, _ = await engine.get_diff(task_id, None)
        render_task(task, diff)
        default_dir = settings.data_dir == Settings().data_dir
        data = "" if default_dir else f" --data-dir {settings.data_dir}"
        print(f"\nerrand show {task_id}{data} · errand apply {task_id}{data}")
        return 0 if task.status == "completed" else 1
    finally:
        await engine.shutdown()


def cmd_run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    _setup_logging(settings, args)
    if not (os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL")):
        print(
            "errand: set OPENAI_API_KEY (and OPENAI_BASE_URL for a non-OpenAI server); "
            "`errand demo` runs without one",
            file=sys.stderr,
        )
        return 2
    params = DelegateParams(prompt=args.prompt, mode=args.mode, attempts=args.attempts)
    try:
        return asyncio.run(
            _run_task(settings, params, Path(args.repo).resolve(), args.quiet_output)
        )
    except EngineError as exc:
        print(f"errand: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nerrand: cancelled", file=sys.stderr)
        return 130


def cmd_demo(args: argparse.Namespace) -> int:
    """A recorded session on a sample repository. The model is scripted and in-process
    (no API key, no network); the engine, sandbox, commands, checks and diff are real."""
    from errand.frontends import demo
    from errand.frontends.cli.console import ConsoleListener, render_task

    base = Path(tempfile.mkdtemp(prefix="errand-demo-"))
    repo = demo.create_repository(base / "textkit")
    settings, _ = Settings.from_env()
    overrides: dict[str, object] = {
        "data_dir": args.data_dir or str(base / "data"),
        "model": demo.MODEL,
    }
    if args.sandbox:
        overrides["sandbox"] = args.sandbox
    settings, problems = settings.with_values(overrides, source="demo")
    for problem in problems:
        print(f"errand: {problem}", file=sys.stderr)
    _setup_logging(settings, args)
    print(f"errand demo: sample repository with a failing test at {repo}")
    print(
        "errand demo: a SCRIPTED model plays a recorded session; it is not a real model. "
        "Commands, sandbox, checks and diff are real.\n"
    )
    print(f"› task: {demo.PROMPT}\n")

    async def run() -> int:
        engine = TaskEngine(settings, model_factory=demo.model_factory, listener=ConsoleListener())
        await engine.start()
        try:
            task_id = await engine.delegate(DelegateParams(prompt=demo.PROMPT), repo)
            task = await engine.wait(task_id)
            diff, _, _ = await engine.get_diff(task_id, None)
            render_task(task, diff)
            print(f"\nerrand apply {task_id} --data-dir {settings.data_dir}")
            return 0 if task.status == "completed" else 1
        finally:
            await engine.shutdown()

    code = asyncio.run(run())
    print(f"\nThe sample repository is unchanged until you apply: {repo}")
    return code


# --- inspection ------------------------------------------------------------------------


async def _with_engine(
    args: argparse.Namespace, fn: Callable[[TaskEngine], Awaitable[int]], *, read_only: bool
) -> int:
    """Run ``fn`` on an engine over the data folder. A read-only one changes nothing in
    the store: it shows a live server's running tasks as running."""
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

    return asyncio.run(_with_engine(args, body, read_only=True))


def cmd_show(args: argparse.Namespace) -> int:
    from errand.frontends.cli.console import render_task

    async def body(engine: TaskEngine) -> int:
        task = engine.get_task(args.task_id)
        diff, _, _ = await engine.get_diff(args.task_id, None)
        render_task(task, diff)
        return 0

    return asyncio.run(_with_engine(args, body, read_only=True))


def cmd_diff(args: argparse.Namespace) -> int:
    async def body(engine: TaskEngine) -> int:
        diff, _, _ = await engine.get_diff(args.task_id, args.attempt)
        sys.stdout.write(diff)
        return 0

    return asyncio.run(_with_engine(args, body, read_only=True))


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
            for conflict in plan.conflicts:
                print(f"  {conflict}")
            return 1
        await asyncio.to_thread(write_plan, root, plan)
        await engine.mark_applied(args.task_id)
        print(f"applied {len(plan.files)} file(s): {', '.join(plan.files)}")
        if plan.merged:
            print(f"merged with your changes: {', '.join(plan.merged)}")
        return 0

    return asyncio.run(_with_engine(args, body, read_only=False))


def cmd_schema(args: argparse.Namespace) -> int:
    from errand.wire.schema import render_schema, write_schema

    if args.write:
        print(write_schema())
    else:
        sys.stdout.write(render_schema())
    return 0


if __name__ == "__main__":
    sys.exit(main())
