"""Run every benchmark and print the figures of issues 6 and 11 with their targets.

Each benchmark prints its own table (with the baseline measured in the same run) as it
goes; the summary at the end collects one figure from each. Takes a few minutes.

Run: .venv/bin/python bench/run_all.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_daemon
import bench_idle_rss
import bench_log_latency
import bench_parallel
import bench_step_overhead
import bench_task_ready
from common import make_repo, table, verdict

from errand.config.settings import Settings

HERE = Path(__file__).resolve().parent


def edits_ms() -> float:
    """bench_edits.py prints its own table; take the build_workspace_edit wall time."""
    out = subprocess.run(
        [sys.executable, str(HERE / "bench_edits.py")], capture_output=True, text=True, check=True
    ).stdout
    print(out, end="")
    match = re.search(r"^build_workspace_edit\s+([0-9.]+)", out, re.MULTILINE)
    if match is None:
        raise RuntimeError("could not read bench_edits.py's result")
    return float(match.group(1))


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (noisier)")
    args = parser.parse_args()
    runs = 8 if args.quick else 20
    started = time.monotonic()
    load = os.getloadavg()
    print(
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
        "at the start (other work on the machine shows up in every figure)"
    )

    shared = Path(tempfile.mkdtemp(prefix="errand-bench-repo-"))
    try:
        print("generating a 10000-file repository...", file=sys.stderr)
        repo = make_repo(shared / "repo", 10_000)
        section("task ready (bench_task_ready.py)")
        ready = bench_task_ready.measure(runs, 10_000, repo)
        section("32 tasks at once (bench_parallel.py)")
        parallel = bench_parallel.measure(32, Settings().max_parallel, 10_000, repo)
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    section("diff -> WorkspaceEdit (bench_edits.py)")
    edits = edits_ms()
    section("idle server RSS (bench_idle_rss.py)")
    rss = bench_idle_rss.measure()
    section("engine overhead per agent step (bench_step_overhead.py)")
    step = bench_step_overhead.measure(50)
    section("sandbox output -> errand/taskLog (bench_log_latency.py)")
    log = bench_log_latency.measure(200)
    section("latency the daemon front end adds (bench_daemon.py)")
    daemon = bench_daemon.measure(calls=300 if args.quick else 1000)

    ratio = ready["worktree_add_p50_ms"] / ready["task_ready_p50_ms"]
    rows = [
        ["task ready p50, 10k files, warm base", f"{ready['task_ready_p50_ms']:.1f} ms",
         f"{ratio:.0f}x vs worktree", "<= 20 ms, >= 40x",
         verdict(ready["task_ready_p50_ms"] <= 20 and ratio >= 40)],
        ["32 tasks x 5 commands: listTasks p99", f"{parallel['during_p99']:.1f} ms",
         "all complete" if parallel["all_complete"] else "NOT all complete", "<= 50 ms",
         verdict(bool(parallel["all_complete"]) and parallel["during_p99"] <= 50)],
        ["diff -> WorkspaceEdit, 500 files", f"{edits:.1f} ms", "", "<= 200 ms",
         verdict(edits <= 200)],
        ["idle server RSS", f"{rss['idle_rss_mb']:.1f} MB",
         f"{rss['after_tasks_rss_mb']:.1f} MB after 10 tasks", "<= 80 MB",
         verdict(rss["idle_rss_mb"] <= 80)],
        ["engine overhead per agent step", f"{step['step_overhead_p50_ms']:.2f} ms", "",
         "<= 5 ms", verdict(step["step_overhead_p50_ms"] <= 5)],
        ["sandbox output -> taskLog p50", f"{log['log_latency_p50_ms']:.1f} ms", "",
         "<= 20 ms", verdict(log["log_latency_p50_ms"] <= 20)],
        ["daemon front end: added listTasks p50", f"{daemon['list_added_p50_ms']:+.2f} ms",
         f"{daemon['list_daemon_p50_ms']:.1f} vs {daemon['list_off_p50_ms']:.1f} ms in-process",
         "< 2 ms", verdict(daemon["list_added_p50_ms"] < 2)],
        ["daemon front end: added taskLog p50", f"{daemon['log_added_p50_ms']:+.2f} ms",
         f"{daemon['log_daemon_p50_ms']:.1f} vs {daemon['log_off_p50_ms']:.1f} ms in-process",
         "< 2 ms", verdict(daemon["log_added_p50_ms"] < 2)],
    ]  # fmt: skip
    section(f"summary ({time.monotonic() - started:.0f} s)")
    print(table(["figure", "measured", "note", "target", "verdict"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
