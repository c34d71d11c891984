"""The CLI commands that run tasks: ``serve`` (an LSP server on stdio), ``run`` and
``demo``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

import msgspec

from errand.config.settings import Settings
from errand.daemon.api import EngineAPI, InProcess
from errand.daemon.lifecycle import DaemonError
from errand.engine.attempt import ModelFactory
from errand.engine.engine import TaskEngine
from errand.engine.errors import EngineError
from errand.engine.owner import DataFolderBusy
from errand.frontends.cli.console import ConsoleListener, render_task
from errand.frontends.cli.engines import open_engine
from errand.frontends.cli.options import load_settings, model_factory, setup_logging
from errand.wire.protocol import DelegateParams


def cmd_serve(args: argparse.Namespace) -> int:
    from errand.frontends.lsp.server import create_server

    settings = load_settings(args)
    setup_logging(settings, args)
    server = create_server(settings, model_factory)
    server.start_io()
    return 0


async def run_task(
    settings: Settings,
    params: DelegateParams,
    folder: Path,
    *,
    quiet: bool = False,
    models: ModelFactory = model_factory,
) -> int:
    """Run one task, streaming it to the terminal, and print its result: in the data
    folder's daemon when one runs, else in this process."""
    api: EngineAPI
    if models is model_factory:
        api = await open_engine(settings, read_only=False)
    else:  # the demo's own model: always here
        engine = TaskEngine(settings, model_factory=models)
        await engine.start()
        api = InProcess(engine)
    listener = ConsoleListener(show_output=not quiet)
    api.add_listener(listener)
    try:
        task_id = await api.delegate(msgspec.structs.replace(params, workspace=str(folder)))
        listener.only(task_id)
        try:
            task = await api.wait(task_id)
        except asyncio.CancelledError:
            await api.cancel(task_id)
            raise
        render_task(task, (await api.get_diff(task_id, None)).diff)
        default_dir = settings.data_dir == Settings().data_dir
        data = "" if default_dir else f" --data-dir {settings.data_dir}"
        print(f"\nerrand show {task_id}{data} · errand apply {task_id}{data}")
        return 0 if task.status == "completed" else 1
    finally:
        await api.close()


def cmd_run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    setup_logging(settings, args)
    if not (os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL")):
        print(
            "errand: set OPENAI_API_KEY (and OPENAI_BASE_URL for a non-OpenAI server); "
            "`errand demo` runs without one",
            file=sys.stderr,
        )
        return 2
    params = DelegateParams(prompt=args.prompt, mode=args.mode, attempts=args.attempts)
    folder = Path(args.repo).resolve()
    try:
        return asyncio.run(run_task(settings, params, folder, quiet=args.quiet_output))
    except (EngineError, DataFolderBusy, DaemonError) as exc:
        print(f"errand: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nerrand: cancelled", file=sys.stderr)
        return 130


def cmd_demo(args: argparse.Namespace) -> int:
    """A recorded session on a sample repository. The model is scripted and in-process
    (no API key, no network); the engine, sandbox, commands, checks and diff are real."""
    from errand.frontends import demo

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
    setup_logging(settings, args)
    print(f"errand demo: sample repository with a failing test at {repo}")
    print(
        "errand demo: a SCRIPTED model plays a recorded session; it is not a real model. "
        "Commands, sandbox, checks and diff are real.\n"
    )
    print(f"› task: {demo.PROMPT}\n")
    params = DelegateParams(prompt=demo.PROMPT)
    code = asyncio.run(run_task(settings, params, repo, models=demo.model_factory))
    print(f"\nThe sample repository is unchanged until you apply: {repo}")
    return code
