"""Benchmark: the latency errand's daemon front end adds, against the in-process engine.

Starts two ``errand serve`` front ends over stdio on the same repository, with the same
scripted model (one replay server) and the same machine, at the same time:

* (a) ``ERRAND_DAEMON=off``: the engine runs inside the serve process (the baseline);
* (b) ``ERRAND_DAEMON=auto``: serve is a front end of errand's daemon, which it starts
  detached on first use, with a private ``XDG_RUNTIME_DIR`` (mode 0700) for the socket
  and a data folder of its own.

Each front end first gets ``--tasks`` finished tasks in its store. Then:

* **listTasks**: ``errand.listTasks`` round trips at the client, ``--calls`` per front
  end, alternating a/b and b/a call by call so that machine noise hits both;
* **taskLog**: the method of ``bench_log_latency.py``: the scripted model runs a command
  in the bubblewrap sandbox that prints the wall-clock time every 20 ms; a line's
  latency is the arrival of its ``errand/taskLog`` ``output`` notification at the client
  minus the time printed in it. ``--rounds`` rounds, each one such task on each front
  end (order alternating), ``--lines`` lines per front end in all.

The figure is (b) - (a): the latency the daemon front end adds (target: under 2 ms at
p50 for both). At the end the daemon is stopped (``errand daemon stop --force`` with
the same environment) and the bench waits for its process to be gone.

Run: .venv/bin/python bench/bench_daemon.py [--tasks N] [--calls N] [--lines N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_log_latency import latencies, script
from common import (
    Replay,
    Server,
    git,
    median,
    percentile,
    server_env,
    shell,
    start_server,
    table,
    verdict,
)

from errand.workspace.copies.mounts import mounts_under, unmount

TARGET_ADDED_MS = 2.0
MODEL = "bench-daemon"
"""Names no scenario: each task's prompt picks its scenario by ``match``."""
FILLER = "bench-daemon filler task"
CLOCK = "bench-daemon clock task"
WARMUP = 20
"""listTasks calls per front end left out of the figures (first connections, caches)."""


def scenarios(lines_per_task: int) -> list[dict[str, object]]:
    return [
        {"name": "filler", "match": FILLER, "turns": [shell("true"), {"content": "done"}]},
        {
            "name": "clock",
            "match": CLOCK,
            "turns": [shell(script(lines_per_task)), {"content": "done"}],
        },
    ]


def errand_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "errand", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def daemon_pid(env: dict[str, str]) -> int | None:
    """The pid ``errand daemon status`` prints (``pid N · ...``), or None."""
    status = errand_cli(env, "daemon", "status")
    words = status.stdout.split()
    if status.returncode != 0 or len(words) < 2 or words[0] != "pid":
        return None
    return int(words[1])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (its parent, our serve front end, is gone) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_daemon(env: dict[str, str], pid: int | None) -> None:
    """``errand daemon stop --force``, then wait for the daemon (ours) to be gone."""
    pid = pid or daemon_pid(env)
    stopped = errand_cli(env, "daemon", "stop", "--force")
    if stopped.returncode != 0:
        print(f"errand daemon stop: {stopped.stdout}{stopped.stderr}", file=sys.stderr)
    if pid is None:
        return
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        print(f"the daemon (pid {pid}) did not stop; killing it", file=sys.stderr)
        os.kill(pid, signal.SIGKILL)


async def list_latency(server: Server) -> float:
    sent = time.perf_counter()
    await server.command("errand.listTasks")
    return (time.perf_counter() - sent) * 1000


async def clock_task(server: Server) -> list[float]:
    """One clock task; the latency of each line it printed, in ms."""
    task_id = (await server.command("errand.delegate", {"prompt": CLOCK}))["taskId"]
    await server.wait_for(lambda: server.ended(task_id))
    samples: list[float] = []
    for entry in server.logs:
        p = entry.params
        if p["taskId"] == task_id and p["kind"] == "output":
            samples += latencies(p.get("text") or "", entry.wall)
    return samples


async def run(
    repo: Path, tmp: Path, tasks: int, calls: int, lines: int, rounds: int
) -> dict[str, list[float]]:
    per_task = max(1, lines // rounds)
    runtime = tmp / "run"  # the daemon's socket folder: private to this run
    runtime.mkdir(mode=0o700)
    os.chmod(runtime, 0o700)
    replay = Replay(scenarios(per_task), tmp)
    env_off = server_env(tmp / "data-off", replay.url, MODEL)
    env_daemon = server_env(
        tmp / "data-daemon",
        replay.url,
        MODEL,
        ERRAND_DAEMON="auto",
        XDG_RUNTIME_DIR=str(runtime),
        ERRAND_DAEMON_IDLE_SECONDS="300",  # it goes on its own should this bench die
    )
    servers: list[Server] = []
    pid: int | None = None
    try:
        off = await start_server(repo, env_off)
        servers.append(off)
        daemon = await start_server(repo, env_daemon)
        servers.append(daemon)
        pair = (off, daemon)
        await asyncio.gather(*(s.command("errand.listTasks") for s in pair))  # both ready
        pid = daemon_pid(env_daemon)
        if pid is None or pid == daemon.pid:
            raise RuntimeError("front end (b) did not start a daemon of its own")
        print(
            f"(a) errand serve pid {off.pid}, in-process engine; (b) errand serve pid "
            f"{daemon.pid}, front end of the daemon pid {pid}",
            file=sys.stderr,
        )

        print(f"filling each store with {tasks} finished tasks...", file=sys.stderr)
        for server in pair:
            ids = [
                (await server.command("errand.delegate", {"prompt": f"{FILLER} {n}"}))["taskId"]
                for n in range(tasks)
            ]
            await server.wait_for(lambda s=server, ids=ids: all(s.ended(t) for t in ids))
        for server in pair:
            listed = (await server.command("errand.listTasks"))["tasks"]
            if len(listed) != tasks:
                raise RuntimeError(f"listTasks gave {len(listed)} tasks, not {tasks}")

        print(f"{calls} errand.listTasks calls per front end, interleaved...", file=sys.stderr)
        samples: dict[str, list[float]] = {"list_off": [], "list_daemon": []}
        for n in range(calls + WARMUP):
            order = pair if n % 2 == 0 else pair[::-1]
            for server in order:
                took = await list_latency(server)
                if n >= WARMUP:
                    samples["list_off" if server is off else "list_daemon"].append(took)
                await asyncio.sleep(0.001)

        print(f"{rounds} rounds of a {per_task}-line clock task on each...", file=sys.stderr)
        samples["log_off"], samples["log_daemon"] = [], []
        for n in range(rounds):
            order = pair if n % 2 == 0 else pair[::-1]
            for server in order:
                got = await clock_task(server)
                if len(got) < per_task:
                    raise RuntimeError(f"only {len(got)} of {per_task} lines reached the client")
                samples["log_off" if server is off else "log_daemon"] += got
    finally:
        for server in servers:
            await server.stop()
        try:
            stop_daemon(env_daemon, pid)
        finally:
            replay.stop()
    return samples


def measure(
    tasks: int = 20, calls: int = 1000, lines: int = 400, rounds: int = 8
) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="errand-bench-daemon-"))
    try:
        repo = tmp / "repo"
        repo.mkdir()
        for i in range(20):
            (repo / f"m{i}.py").write_text(f"x = {i}\n")
        git(repo, "init", "-q")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "one")
        s = asyncio.run(run(repo, tmp, tasks, calls, lines, rounds))
    finally:
        for point in mounts_under(tmp):
            unmount(point)
        shutil.rmtree(tmp, ignore_errors=True)

    r = {
        "list_off_p50_ms": median(s["list_off"]),
        "list_off_p99_ms": percentile(s["list_off"], 99),
        "list_daemon_p50_ms": median(s["list_daemon"]),
        "list_daemon_p99_ms": percentile(s["list_daemon"], 99),
        "log_off_p50_ms": median(s["log_off"]),
        "log_off_p99_ms": percentile(s["log_off"], 99),
        "log_daemon_p50_ms": median(s["log_daemon"]),
        "log_daemon_p99_ms": percentile(s["log_daemon"], 99),
    }
    r["list_added_p50_ms"] = r["list_daemon_p50_ms"] - r["list_off_p50_ms"]
    r["list_added_p99_ms"] = r["list_daemon_p99_ms"] - r["list_off_p99_ms"]
    r["log_added_p50_ms"] = r["log_daemon_p50_ms"] - r["log_off_p50_ms"]
    r["log_added_p99_ms"] = r["log_daemon_p99_ms"] - r["log_off_p99_ms"]

    def rows(kind: str, what: str) -> list[list[object]]:
        off, on = s[f"{kind}_off"], s[f"{kind}_daemon"]
        return [
            [f"{what}, in-process engine (baseline)", len(off), r[f"{kind}_off_p50_ms"],
             percentile(off, 90), r[f"{kind}_off_p99_ms"], "+0"],
            [f"{what}, daemon front end", len(on), r[f"{kind}_daemon_p50_ms"],
             percentile(on, 90), r[f"{kind}_daemon_p99_ms"],
             f"{r[f'{kind}_added_p50_ms']:+.2f} ms"],
        ]  # fmt: skip

    print(
        f"{tasks} tasks in each store; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}; the added latency is (b) - (a) in the same run"
    )
    headers = ["measure (ms)", "samples", "p50", "p90", "p99", "added p50"]
    print(
        table(
            headers,
            rows("list", "errand.listTasks round trip") + rows("log", "output -> errand/taskLog"),
        )
    )
    for name, key in (("listTasks", "list"), ("taskLog", "log")):
        added = r[f"{key}_added_p50_ms"]
        print(
            f"latency the daemon front end adds to {name}: p50 {added:+.2f} ms, p99 "
            f"{r[f'{key}_added_p99_ms']:+.2f} ms; target: p50 < {TARGET_ADDED_MS:.0f} ms "
            f"-> {verdict(added < TARGET_ADDED_MS)}"
        )
    return r


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20, help="finished tasks in each store")
    parser.add_argument("--calls", type=int, default=1000, help="listTasks calls per front end")
    parser.add_argument("--lines", type=int, default=400, help="clock lines per front end")
    parser.add_argument("--rounds", type=int, default=8, help="clock tasks per front end")
    args = parser.parse_args()
    measure(args.tasks, args.calls, args.lines, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
