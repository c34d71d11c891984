"""``errand daemon``: run the data folder's daemon, or ask it how it is, or stop it."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from errand.config.paths import DataPaths
from errand.daemon import client as daemon_client
from errand.daemon import server
from errand.daemon.lifecycle import socket_path
from errand.engine.errors import EngineError
from errand.frontends.cli.options import load_settings, model_factory, setup_logging


def cmd_daemon(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    if args.action == "run":
        setup_logging(settings, args)
        return server.serve(settings, model_factory)
    paths = DataPaths(settings.data_dir)

    async def ask() -> int:
        client = await daemon_client.probe(paths)
        if client is None:
            print(f"no errand daemon runs for {settings.data_dir} (socket {socket_path(paths)})")
            return 1 if args.action == "status" else 0
        try:
            if args.action == "status":
                s = await client.status()
                started = time.strftime(
                    "%Y-%m-%d %H:%M:%S", time.localtime(time.time() - s.uptime_s)
                )
                print(f"pid {s.pid} · errand {s.version} · up {s.uptime_s:.0f}s (since {started})")
                print(f"socket {s.socket}")
                print(f"data folder {s.data_dir}")
                others = s.clients - 1  # this command is one of them
                print(f"{others} front end(s) connected · {s.running_attempts} attempt(s) running")
                return 0
            pid = (await client.status()).pid
            await client.stop(force=args.force)
            print(f"errand daemon (pid {pid}) stopped")
            return 0
        except EngineError as exc:
            print(f"errand: {exc}", file=sys.stderr)
            return 2
        finally:
            await client.close()

    return asyncio.run(ask())
