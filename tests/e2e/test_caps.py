"""Caps an attempt can't get around, end to end: the disk it may fill, and the queue
slot it holds until its result is recorded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from support.lsp_harness import delegate, server_env, start_client, stop_client
from support.repos import make_repo

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="function")]

MIB = 1 << 20


async def test_an_attempt_that_fills_its_copy_is_ended(tmp_path: Path, replay: Any) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    fill = "for i in 1 2 3 4 5 6; do head -c 20M /dev/zero > big$i.bin; done; echo wrote; sleep 60"
    server = replay(
        {
            "name": "fill",
            "turns": [
                {"tool_calls": [{"name": "shell", "arguments": {"command": fill}}]},
                {"content": "Done."},
            ],
        }
    )
    env = server_env(tmp_path, server.url, "fill", ERRAND_MAX_DISK_BYTES=str(50 * MIB))
    client, lsp = await start_client(folder=repo, env=env)
    try:
        started = time.monotonic()
        task_id = await delegate(client, "fill the disk")
        assert await client.wait_status(task_id, {"completed", "failed"}, 60) == "failed"
        # Ended by the quota, well before the command's own end (sleep 60).
        assert time.monotonic() - started < 30
        task = (await client.command("errand.getTask", {"taskId": task_id}))["task"]
        (attempt,) = task["attempts"]
        assert attempt["reason"].startswith("disk quota exceeded: the attempt wrote "), attempt
        assert "over its 50.0 MiB cap (ERRAND_MAX_DISK_BYTES)" in attempt["reason"]
        assert attempt["workspaceBytes"] > 50 * MIB
        assert attempt["files"] == []
        # The copy is gone, and nothing of it reached errand's mirror.
        data = tmp_path / "data"
        assert list((data / "copies").iterdir()) == []
        mirror_bytes = sum(p.stat().st_size for p in (data / "repos").rglob("*") if p.is_file())
        assert mirror_bytes < 5 * MIB
        # The command started, was killed with the attempt, and the log says why.
        logs = [e for e in client.task_logs if e["taskId"] == task_id]
        assert [e["kind"] for e in logs].count("commandStarted") == 1
        assert logs[-1]["kind"] == "status" and logs[-1]["status"] == "failed"
        assert logs[-1]["text"] == attempt["reason"]
        assert task["reason"] == attempt["reason"]
    finally:
        await stop_client(lsp)


async def test_a_slot_is_held_until_the_result_is_recorded(tmp_path: Path, replay: Any) -> None:
    """With one slot, the second attempt starts only once the first has ended, after a
    result large enough that recording it takes a while."""
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    big = "head -c 150M /dev/urandom > big.bin && echo made"
    server = replay(
        {
            "name": "big",
            "turns": [
                {"tool_calls": [{"name": "shell", "arguments": {"command": big}}]},
                {"content": "Made a big file."},
            ],
        }
    )
    env = server_env(tmp_path, server.url, "big", ERRAND_MAX_PARALLEL="1")
    client, lsp = await start_client(folder=repo, env=env)
    try:
        task_id = await delegate(client, "make a big file", attempts=2)
        assert await client.wait_status(task_id, {"completed", "failed"}, 120) == "completed"
        statuses = [
            (e["attempt"], e["status"])
            for e in client.task_logs
            if e["taskId"] == task_id and e["kind"] == "status"
        ]
        first_end = statuses.index((1, "completed"))
        second_start = statuses.index((2, "preparing"))
        assert first_end < second_start, statuses
        task = (await client.command("errand.getTask", {"taskId": task_id}))["task"]
        assert [a["status"] for a in task["attempts"]] == ["completed", "completed"]
        assert all(a["diffStat"]["files"] == 1 for a in task["attempts"])
    finally:
        await stop_client(lsp)
