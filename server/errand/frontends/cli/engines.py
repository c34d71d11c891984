"""How a CLI command reaches errand's engine: the data folder's daemon when one runs,
else an engine in this process (read-only for commands that only show)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable

from errand.config.paths import DataPaths
from errand.config.settings import Settings, settings_env
from errand.daemon import client as daemon_client
from errand.daemon.api import EngineAPI, InProcess
from errand.daemon.lifecycle import DaemonError
from errand.engine.engine import TaskEngine
from errand.engine.errors import EngineError
from errand.engine.owner import DataFolderBusy
from errand.frontends.cli.options import load_settings, model_factory


async def open_engine(settings: Settings, *, read_only: bool, daemon: bool = False) -> EngineAPI:
    """The daemon when one runs (started when none does and ``daemon``), else an
    engine in this process."""
    if settings.daemon != "off" or daemon:
        paths = DataPaths(settings.data_dir)
        env = settings_env(settings)
        client = await daemon_client.connect(paths, "cli", start=daemon, env=env)
        if client is not None:
            return client
    engine = TaskEngine(settings, model_factory=model_factory)
    await engine.start(read_only=read_only)
    return InProcess(engine)


async def with_engine(
    args: argparse.Namespace,
    fn: Callable[[EngineAPI], Awaitable[int]],
    *,
    read_only: bool,
    daemon: bool = False,
) -> int:
    """Run ``fn`` on the engine; errors the user can act on are said in one line."""
    try:
        api = await open_engine(load_settings(args), read_only=read_only, daemon=daemon)
    except (DataFolderBusy, DaemonError) as exc:
        print(f"errand: {exc}", file=sys.stderr)
        return 2
    try:
        return await fn(api)
    except EngineError as exc:
        print(f"errand: {exc}", file=sys.stderr)
        return 2
    finally:
        await api.close()
