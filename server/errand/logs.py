"""Logging setup: stderr and a rotating file in errand's data folder, never stdout."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup(data_dir: Path, *, verbose: bool = False, stderr: bool = True) -> Path | None:
    """Log to ``<data_dir>/errand.log`` and to stderr. Returns the log file, or None
    when the data folder is unusable (then stderr only; the caller reports why)."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    path: Path | None = data_dir / "errand.log"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            data_dir / "errand.log", maxBytes=5 * 1024 * 1024, backupCount=3, encoding="utf-8"
        )
    except OSError as exc:
        path = None
        stderr = True
        print(f"errand: can't write the log in {data_dir}: {exc}", file=sys.stderr)
    else:
        file_handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(file_handler)
    if stderr:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter(FORMAT))
        console.setLevel(logging.DEBUG if verbose else logging.WARNING)
        root.addHandler(console)
    # pygls logs every message body at INFO; keep that out unless asked for.
    logging.getLogger("pygls").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("openai").setLevel(logging.WARNING)
    return path
