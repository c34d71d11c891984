"""Benchmark: task ready, from ``errand.delegate`` to the first command able to run.

Generates a 10k-file repository (with a few uncommitted changes), starts ``errand serve``
over stdio the way an editor does, warms the base with one task, then delegates tasks
one after another, editing a file before each (so every snapshot is a new tree).
"Ready" is when the client receives the attempt's ``running`` status: the snapshot is
taken, the copy exists and the sandbox is open. The scripted model then asks for
``true``; "first command" is when its ``commandStarted`` reaches the client.

The baseline, measured in the same run on the same repository, is ``git worktree add``,
run between every fourth task so that both see the same machine conditions. The
components (snapshot, overlay copy, full checkout, one bubblewrap command) are timed
in-process as well, to show where the time goes.

Run: .venv/bin/python bench/bench_task_ready.py [--runs N] [--files N]
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
    make_repo,
    median,
    percentile,
    server_env,
    shell,
    start_server,
    table,
    verdict,
)

from errand.config.paths import DataPaths
from errand.sandbox import SandboxSpec, open_sandbox
from errand.workspace.copies.checkout import CheckoutCopies
from errand.workspace.copies.choice import choose_provider
from errand.workspace.copies.mounts import mounts_under, unmount
from errand.workspace.snapshot import take_snapshot

TARGET_MS = 20.0
TARGET_RATIO = 40.0


async def served(
    repo: Path, data_dir: Path, runs: int, worktree_every: int
) -> tuple[list[float], list[float], list[float]]:
    """Delegate ``runs`` tasks one after another (after one that warms the base), with a
    ``git worktree add`` between every ``worktree_every`` of them, so that errand and the
    baseline are measured under the same conditions."""
    scenario = {"name": "ready", "turns": [shell("true"), {"content": "done"}]}
    replay = Replay([scenario], data_dir.parent)
    server = await start_server(repo, server_env(data_dir, replay.url, "ready"))
    edited = repo / "pkg0" / "sub0" / "mod_0.py"
    ready: list[float] = []
    first: list[float] = []
    baseline: list[float] = []
    try:
        for n in range(runs + 1):
            if n > 0 and n % worktree_every == 0:
                baseline.append(await asyncio.to_thread(worktree_add, repo, data_dir.parent, n))
            # The user keeps editing: every snapshot is a new tree.
            edited.write_text(f"edited = {n}\n", encoding="utf-8")
            sent = time.perf_counter()
            task_id = (await server.command("errand.delegate", {"prompt": f"task {n}"}))["taskId"]
            await server.wait_for(lambda t=task_id: server.ended(t))
            running = server.status_log(task_id, "running")
            started = server.log_of(task_id, "commandStarted")
            if (
                running is None
                or started is None
                or server.status_log(task_id, "completed") is None
            ):
                raise RuntimeError(f"task {task_id} did not complete: {server.logs[-3:]}")
            if n > 0:  # the first task builds the base
                ready.append((running.at - sent) * 1000)
                first.append((started.at - sent) * 1000)
            await server.command("errand.discard", {"taskId": task_id})
    finally:
        await server.stop()
        replay.stop()
    return ready, first, baseline


def worktree_add(repo: Path, where: Path, n: int) -> float:
    """Milliseconds of one ``git worktree add`` (then removed again)."""
    target = where / f"wt{n}"
    started = time.perf_counter()
    git(repo, "worktree", "add", "--quiet", "--detach", str(target))
    elapsed = (time.perf_counter() - started) * 1000
    git(repo, "worktree", "remove", "--force", str(target))
    return elapsed


def components(repo: Path, data_dir: Path, runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"snapshot": [], "overlay copy": [], "checkout copy": []}
    manager = choose_provider(DataPaths(data_dir), prefer="overlay")
    checkout = CheckoutCopies()
    snapshot = take_snapshot(repo, DataPaths(data_dir))
    manager.remove(manager.create(snapshot, data_dir / "copies" / "warm"))
    made = []
    for n in range(runs):
        started = time.perf_counter()
        snapshot = take_snapshot(repo, DataPaths(data_dir))
        times["snapshot"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        made.append(manager.create(snapshot, data_dir / "copies" / f"o{n}"))
        times["overlay copy"].append((time.perf_counter() - started) * 1000)
    for copy in made:
        manager.remove(copy)
    for n in range(min(3, runs)):
        started = time.perf_counter()
        copy = checkout.create(snapshot, data_dir / "copies" / f"c{n}")
        times["checkout copy"].append((time.perf_counter() - started) * 1000)
        checkout.remove(copy)

    async def bwrap_true() -> list[float]:
        sandbox = await open_sandbox("bwrap", SandboxSpec(root=repo))
        samples = []
        try:
            for _ in range(runs):
                started = time.perf_counter()
                await sandbox.run("true")
                samples.append((time.perf_counter() - started) * 1000)
        finally:
            await sandbox.close()
        return samples

    times["bwrap command `true`"] = asyncio.run(bwrap_true())
    return times


def measure(runs: int, files: int, repo: Path | None = None) -> dict[str, float]:
    """``repo``: a repository made by :func:`common.make_repo` to reuse (one of its files
    is edited between tasks)."""
    tmp = Path(tempfile.mkdtemp(prefix="errand-bench-ready-"))
    try:
        if repo is None:
            print(f"generating a {files}-file repository...", file=sys.stderr)
            repo = make_repo(tmp / "repo", files)
        print(
            f"delegating {runs} tasks to errand serve, with git worktree add between...",
            file=sys.stderr,
        )
        ready, first, baseline = asyncio.run(served(repo, tmp / "data", runs, 4))
        print("timing the components in-process...", file=sys.stderr)
        parts = components(repo, tmp / "parts", max(5, runs // 2))
    finally:
        for point in mounts_under(tmp):
            unmount(point)
        shutil.rmtree(tmp, ignore_errors=True)

    base = median(baseline)
    ready_p50 = median(ready)
    rows: list[list[object]] = [
        ["task ready (delegate -> running)", ready_p50, percentile(ready, 90), base,
         f"{base / ready_p50:.0f}x faster"],
        ["first command started", median(first), percentile(first, 90), base,
         f"{base / median(first):.0f}x faster"],
        ["git worktree add (baseline)", base, percentile(baseline, 90), base, "1x"],
    ]  # fmt: skip
    for name, samples in parts.items():
        rows.append([f"  part: {name}", median(samples), percentile(samples, 90), "", ""])
    print(table(["measure (ms)", "p50", "p90", "baseline", "ratio"], rows))
    ok = ready_p50 <= TARGET_MS and base / ready_p50 >= TARGET_RATIO
    print(
        f"target: p50 <= {TARGET_MS:.0f} ms and >= {TARGET_RATIO:.0f}x faster than "
        f"git worktree add -> {verdict(ok)}"
    )
    return {
        "task_ready_p50_ms": ready_p50,
        "worktree_add_p50_ms": base,
        "snapshot_p50_ms": median(parts["snapshot"]),
        "overlay_copy_p50_ms": median(parts["overlay copy"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    measure(args.runs, args.files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
