"""Benchmark: resident memory of an idle ``errand serve``.

Starts the server over stdio as an editor does, waits until it is idle, and reads its
resident set size (VmRSS) from /proc. Then runs ten scripted tasks to completion and
reads it again once idle, to show what finished tasks keep. The baseline, measured in
the same run, is a bare Python interpreter of the same build that only sleeps.

Run: .venv/bin/python bench/bench_idle_rss.py
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Replay, git, rss_kib, server_env, shell, start_server, table, verdict

TARGET_MB = 80.0


def bare_python_kib() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(1.0)
        return rss_kib(proc.pid)
    finally:
        proc.kill()
        proc.wait()


async def serve(repo: Path, data_dir: Path) -> tuple[int, int]:
    scenario = {"name": "small", "turns": [shell("echo hello"), {"content": "done"}]}
    replay = Replay([scenario], data_dir.parent)
    server = await start_server(repo, server_env(data_dir, replay.url, "small"))
    try:
        await server.command("errand.listTasks")
        await asyncio.sleep(2.0)
        idle = rss_kib(server.pid)
        ids = [
            (await server.command("errand.delegate", {"prompt": f"task {n}"}))["taskId"]
            for n in range(10)
        ]
        await server.wait_for(lambda: all(server.ended(t) for t in ids))
        await asyncio.sleep(2.0)
        after = rss_kib(server.pid)
    finally:
        await server.stop()
        replay.stop()
    return idle, after


def measure() -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="errand-bench-rss-"))
    try:
        repo = tmp / "repo"
        repo.mkdir()
        (repo / "a.py").write_text("print('a')\n")
        git(repo, "init", "-q")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "one")
        idle, after = asyncio.run(serve(repo, tmp / "data"))
        bare = bare_python_kib()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    idle_mb, after_mb, bare_mb = idle / 1024, after / 1024, bare / 1024
    rows = [
        ["errand serve, idle after start", idle_mb, bare_mb, f"{idle_mb / bare_mb:.1f}x"],
        ["errand serve, idle after 10 tasks", after_mb, bare_mb, f"{after_mb / bare_mb:.1f}x"],
        ["bare python -c sleep (baseline)", bare_mb, bare_mb, "1x"],
    ]
    print(table(["measure (MB RSS)", "value", "baseline", "ratio"], rows))
    print(
        f"target: idle RSS <= {TARGET_MB:.0f} MB -> after start {verdict(idle_mb <= TARGET_MB)}"
        f", after tasks {verdict(after_mb <= TARGET_MB)}"
    )
    return {"idle_rss_mb": idle_mb, "after_tasks_rss_mb": after_mb, "bare_python_mb": bare_mb}


def main() -> int:
    measure()
    return 0


if __name__ == "__main__":
    sys.exit(main())
