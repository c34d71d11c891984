"""Benchmark: from output produced in the sandbox to ``errand/taskLog`` at the client.

Starts ``errand serve`` over stdio and has the scripted model run one command in the
bubblewrap sandbox that prints the wall-clock time 200 times, 20 ms apart. The client
notes the wall-clock time at which each ``output`` notification arrives; the latency of
a line is arrival minus the time printed in it (same machine, same clock).

The baseline, measured in the same run, is the same command run directly as a child
process whose pipe the bench reads: the cost of a pipe and a process, without errand.

Run: .venv/bin/python bench/bench_log_latency.py [--lines N]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import (
    Replay,
    git,
    median,
    percentile,
    server_env,
    shell,
    start_server,
    table,
    verdict,
)

TARGET_MS = 20.0


def script(lines: int) -> str:
    return f"for i in $(seq {lines}); do date +%s.%N; sleep 0.02; done"


def latencies(text: str, arrived: float) -> list[float]:
    out = []
    for line in text.splitlines():
        try:
            out.append((arrived - float(line)) * 1000)
        except ValueError:
            continue
    return out


async def through_errand(repo: Path, data_dir: Path, lines: int) -> list[float]:
    scenario = {"name": "clock", "turns": [shell(script(lines)), {"content": "done"}]}
    replay = Replay([scenario], data_dir.parent)
    server = await start_server(repo, server_env(data_dir, replay.url, "clock"))
    try:
        task_id = (await server.command("errand.delegate", {"prompt": "clock"}))["taskId"]
        await server.wait_for(lambda: server.ended(task_id))
    finally:
        await server.stop()
        replay.stop()
    samples: list[float] = []
    for entry in server.logs:
        p = entry.params
        if p["taskId"] == task_id and p["kind"] == "output":
            samples += latencies(p.get("text") or "", entry.wall)
    return samples


async def direct(lines: int) -> list[float]:
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", script(lines), stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    samples: list[float] = []
    while line := await proc.stdout.readline():
        samples += latencies(line.decode(), time.time())
    await proc.wait()
    return samples


def measure(lines: int = 200) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="errand-bench-log-"))
    try:
        repo = tmp / "repo"
        repo.mkdir()
        (repo / "a.txt").write_text("a\n")
        git(repo, "init", "-q")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "one")
        errand = asyncio.run(through_errand(repo, tmp / "data", lines))
        base = asyncio.run(direct(lines))
    finally:
        from errand.workspace.copies.mounts import mounts_under, unmount

        for point in mounts_under(tmp):
            unmount(point)
        shutil.rmtree(tmp, ignore_errors=True)
    if len(errand) < lines:
        raise RuntimeError(f"only {len(errand)} of {lines} lines reached the client")
    p50, b50 = median(errand), median(base)
    rows = [
        ["sandbox output -> errand/taskLog", p50, percentile(errand, 90),
         percentile(errand, 99), b50, f"+{p50 - b50:.1f} ms"],
        ["plain pipe from a child (baseline)", b50, percentile(base, 90),
         percentile(base, 99), b50, "+0"],
    ]  # fmt: skip
    print(f"{len(errand)} lines through errand, {len(base)} through the plain pipe")
    print(table(["measure (ms)", "p50", "p90", "p99", "baseline", "difference"], rows))
    print(f"target: p50 <= {TARGET_MS:.0f} ms -> {verdict(p50 <= TARGET_MS)}")
    return {"log_latency_p50_ms": p50, "pipe_p50_ms": b50}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200)
    args = parser.parse_args()
    measure(args.lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
