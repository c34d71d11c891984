"""``python -m support.replay SCENARIO... [--port N]`` (with ``tests/`` on
``PYTHONPATH``): serve until killed."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from support.replay.scenario import ScenarioError
from support.replay.server import ReplayServer


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the scenarios on 127.0.0.1; print the base URL on stderr; stop on SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m support.replay",
        description="Serve scripted model turns over the OpenAI HTTP API (not a real model).",
    )
    parser.add_argument("scenarios", nargs="+", type=Path, help="scenario files or folders")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    args = parser.parse_args(argv)
    try:
        server = ReplayServer(list(args.scenarios), port=args.port).start()
    except (ScenarioError, OSError) as exc:
        print(f"errand replay: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"replay model server on {server.url} (scripted, not a real model)", file=sys.stderr)
    sys.stderr.flush()
    try:
        stop.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
