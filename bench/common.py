"""Shared helpers for the bench scripts: a generated repository, percentiles, tables.

Every bench script runs as ``.venv/bin/python bench/<name>.py`` and imports this file
as a sibling module.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}

_WORDS = ("value", "result", "items", "index", "count", "name", "path", "data", "config")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def make_repo(path: Path, files: int = 10_000, *, seed: int = 7) -> Path:
    """A committed repository of ``files`` small source files in nested folders, plus a
    few uncommitted changes (one edit, one staged file, one untracked file), the way a
    user's working tree usually looks."""
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        folder = path / f"pkg{i % 40}" / f"sub{(i // 40) % 12}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = [
            f"{rng.choice(_WORDS)}_{n} = {rng.choice(_WORDS)}({rng.randint(0, 999)})"
            for n in range(rng.randint(10, 80))
        ]
        (folder / f"mod_{i}.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (path / ".gitignore").write_text("*.log\nbuild/\n", encoding="utf-8")
    git(path, "init", "-q", "--initial-branch=main")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "generated")
    (path / "pkg0" / "sub0" / "mod_0.py").write_text("edited = True\n", encoding="utf-8")
    (path / "staged.py").write_text("staged = 1\n", encoding="utf-8")
    git(path, "add", "staged.py")
    (path / "untracked.py").write_text("untracked = 1\n", encoding="utf-8")
    # A real index is written long after most of its files: refresh it a second later,
    # as the user's next `git status` would, so that git does not see thousands of
    # "racily clean" entries (files as new as the index) that a real repository lacks.
    time.sleep(1.1)
    git(path, "update-index", "-q", "--refresh", "--force-write-index")
    return path


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100)."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with right-aligned numbers."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


# --- driving `errand serve` over stdio ------------------------------------------------


def plain(value: Any) -> Any:
    """pygls hands custom notification params over as attribute objects; make them
    plain JSON-like values again."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return [plain(v) for v in value]
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if hasattr(value, "__dict__"):
        return {k: plain(v) for k, v in vars(value).items()}
    return value


@dataclass
class Received:
    at: float
    """``time.perf_counter()`` when the client read the notification."""
    wall: float
    """``time.time()`` at the same moment."""
    params: dict[str, Any]


@dataclass
class Server:
    """An ``errand serve`` child process and the LSP client that drives it."""

    client: LanguageClient
    pid: int
    logs: list[Received] = field(default_factory=list)
    changes: list[Received] = field(default_factory=list)
    event: asyncio.Event = field(default_factory=asyncio.Event)

    async def command(self, name: str, args: Any = None) -> Any:
        result = await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=[args or {}])
        )
        return plain(result)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not get there in time")
            self.event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event.wait(), 0.5)

    def status_log(self, task_id: str, status: str) -> Received | None:
        for entry in self.logs:
            p = entry.params
            if p["taskId"] == task_id and p["kind"] == "status" and p.get("status") == status:
                return entry
        return None

    def log_of(self, task_id: str, kind: str) -> Received | None:
        return next(
            (e for e in self.logs if e.params["taskId"] == task_id and e.params["kind"] == kind),
            None,
        )

    def ended(self, task_id: str) -> bool:
        return any(
            self.status_log(task_id, s) is not None for s in ("completed", "failed", "cancelled")
        )

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.client.shutdown_async(None), 15)
            self.client.exit(None)
        except Exception:  # noqa: BLE001 - best effort
            pass
        await self.client.stop()


async def start_server(folder: Path, env: dict[str, str]) -> Server:
    client = LanguageClient("errand-bench", "1")
    holder: list[Server] = []

    @client.feature("errand/taskLog")
    def task_log(params: Any) -> None:
        server = holder[0]
        server.logs.append(Received(time.perf_counter(), time.time(), plain(params)))
        server.event.set()

    @client.feature("errand/taskChanged")
    def task_changed(params: Any) -> None:
        server = holder[0]
        server.changes.append(Received(time.perf_counter(), time.time(), plain(params)))
        server.event.set()

    @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def progress_create(params: types.WorkDoneProgressCreateParams) -> None:
        return None

    @client.feature(types.PROGRESS)
    def progress(params: types.ProgressParams) -> None:
        return None

    await client.start_io(
        sys.executable, "-m", "errand.frontends.cli.main", "serve", env={**os.environ, **env}
    )
    process = client._server  # pygls keeps the child process here
    assert process is not None
    if process.stderr is not None:  # drain it, or a chatty server would block on it
        asyncio.get_running_loop().create_task(_drain(process.stderr))
    holder.append(Server(client, process.pid))
    await client.initialize_async(
        types.InitializeParams(
            process_id=os.getpid(),
            root_uri=folder.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=folder.as_uri(), name=folder.name)],
            capabilities=types.ClientCapabilities(
                window=types.WindowClientCapabilities(work_done_progress=True)
            ),
        )
    )
    client.initialized(types.InitializedParams())
    return holder[0]


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


def server_env(data_dir: Path, url: str, model: str, **extra: str) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": url,
        "OPENAI_API_KEY": "sk-bench-not-a-secret",
        "ERRAND_MODEL": model,
        "ERRAND_API": "chat",
        "ERRAND_SANDBOX": "bwrap",
        "ERRAND_DATA_DIR": str(data_dir),
        "ERRAND_DAEMON": "off",
        **extra,
    }


def shell(command: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "shell", "arguments": {"command": command}}]}


def rss_kib(pid: int) -> int:
    """Resident set size of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


class Replay:
    """The scripted model server in a process of its own, so that its work does not
    compete with the bench's client for the interpreter lock. It is test support
    (``tests/support/replay/``), so its process gets the tests folder on its path."""

    def __init__(self, scenarios: list[dict[str, Any]], folder: Path) -> None:
        path = folder / "scenarios.json"
        path.write_text(json.dumps(scenarios), encoding="utf-8")
        tests = Path(__file__).resolve().parent.parent / "tests"
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "support.replay", str(path)],
            env={**os.environ, "PYTHONPATH": str(tests)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stderr is not None
        line = self._proc.stderr.readline()
        if " on " not in line:
            self.stop()
            raise RuntimeError(f"the replay server did not start: {line}")
        self.url = line.split(" on ", 1)[1].split(" ", 1)[0]

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(10)
