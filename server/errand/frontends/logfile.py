"""Logging setup: stderr and a rotating file in errand's data folder, never stdout.

Whatever a client sends can end up in a log record (a refused argument, an error
message quoting it). So every record is cut to :data:`MAX_RECORD` characters,
traceback included, the file is written with ``backslashreplace`` (a lone surrogate
can't make a record fail), and rotation counts the bytes a record takes: the file
never grows past :data:`MAX_BYTES`.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_BYTES = 5 * 1024 * 1024
"""Size of ``errand.log`` before it is rotated."""
BACKUPS = 3
MAX_RECORD = 8 * 1024
"""Characters of one formatted record, traceback included."""


class CappedFormatter(logging.Formatter):
    """Cuts each formatted record to ``MAX_RECORD`` characters."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if len(text) <= MAX_RECORD:
            return text
        return f"{text[:MAX_RECORD]}… [{len(text) - MAX_RECORD} more characters cut]"


class RotatingLog(logging.handlers.RotatingFileHandler):
    """Rolls over by the bytes a record takes in the file, not its characters, so
    that the file stays within ``maxBytes``."""

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        if Path(self.baseFilename).exists() and not Path(self.baseFilename).is_file():
            return False
        if self.stream is None:
            self.stream = self._open()
        if self.maxBytes <= 0:
            return False
        size = len((self.format(record) + self.terminator).encode("utf-8", "backslashreplace"))
        self.stream.seek(0, 2)
        position = self.stream.tell()
        return position > 0 and position + size > self.maxBytes


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
        file_handler = RotatingLog(
            data_dir / "errand.log",
            maxBytes=MAX_BYTES,
            backupCount=BACKUPS,
            encoding="utf-8",
            errors="backslashreplace",
        )
    except OSError as exc:
        path = None
        stderr = True
        print(f"errand: can't write the log in {data_dir}: {exc}", file=sys.stderr)
    else:
        file_handler.setFormatter(CappedFormatter(FORMAT))
        root.addHandler(file_handler)
    if stderr:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(CappedFormatter(FORMAT))
        console.setLevel(logging.DEBUG if verbose else logging.WARNING)
        root.addHandler(console)
    # pygls logs every message body at INFO; keep that out unless asked for.
    logging.getLogger("pygls").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("openai").setLevel(logging.WARNING)
    return path
