"""End to end: `errand serve` as a subprocess, driven over stdio by a real LSP client,
with the scripted model server as the only stand-in. Real git, real bubblewrap."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException

from support.lsp_harness import delegate, server_env, start_client, stop_client
from support.repos import git, make_repo, tree_fingerprint
from support.scenarios import EXPECTED_AFTER, FIX_SCENARIO, REPO

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="function")]


async def test_delegate_stream_diff_apply(tmp_path: Path, replay: Any) -> None:
    repo = make_repo(tmp_path / "repo", REPO)
    (repo / "scratch.txt").write_text("untracked but visible\n")
    before = tree_fingerprint(repo)
    server = replay(FIX_SCENARIO)
    client, lsp = await start_client(folder=repo, env=server_env(tmp_path, server.url, "fix-add"))
    try:
        task_id = await delegate(client, "Fix add so the test passes")
        assert await client.wait_status(task_id, {"completed", "failed"}) == "completed"

        # The user's tree, index, refs and hooks are byte-for-byte untouched.
        assert tree_fingerprint(repo) == before

        # Streamed log: commands started, output, finished with exit codes.
        logs = [entry for entry in client.task_logs if entry["taskId"] == task_id]
        kinds = {entry["kind"] for entry in logs}
        assert {"commandStarted", "output", "commandFinished", "status"} <= kinds
        finished = [e for e in logs if e["kind"] == "commandFinished"]
        assert [e["exitCode"] for e in finished] == [1, 0], logs
        assert [e["chunkId"] for e in finished] == ["c1-1", "c1-2"]

        # Work-done progress was created, begun and ended.
        await client.wait_for(
            lambda: any(p[0] == "progress" and p[2]["kind"] == "end" for p in client.progress),
            10,
            "the progress to end",
        )
        tokens = [p for p in client.progress if p[0] == "progress"]
        progress_kinds = [p[2]["kind"] for p in tokens]
        assert "begin" in progress_kinds and progress_kinds[-1] == "end"

        listed = await client.command("errand.listTasks")
        summary = next(t for t in listed["tasks"] if t["taskId"] == task_id)
        assert summary["status"] == "completed"
        assert summary["diffStat"] == {"files": 4, "added": 5, "removed": 3}
        for key in ("title", "mode", "createdAt", "updatedAt", "attemptCount"):
            assert key in summary

        task = (await client.command("errand.getTask", {"taskId": task_id}))["task"]
        assert task["prompt"] == "Fix add so the test passes"
        (attempt,) = task["attempts"]
        assert attempt["attempt"] == 1 and attempt["status"] == "completed"
        assert attempt["report"].startswith("Fixed `add`")
        assert [(c["exitCode"], c["passed"], c["chunkId"]) for c in attempt["checks"]] == [
            (1, False, "c1-1"),
            (0, True, "c1-2"),
        ]
        assert attempt["usage"]["inputTokens"] > 0
        assert attempt["sandbox"] == "bwrap"

        diff = await client.command("errand.getDiff", {"taskId": task_id})
        assert "-    return a - b\n+    return a + b" in diff["diff"]
        assert "rename from notes/old.txt" in diff["diff"]
        ops = diff["edit"]["documentChanges"]
        assert {op.get("kind") for op in ops} >= {"create", "delete", "rename"}

        result = await client.command("errand.apply", {"taskId": task_id})
        assert result["applied"] is True, result
        assert len(client.apply_requests) == 1
        for name, text in EXPECTED_AFTER.items():
            assert (repo / name).read_text(encoding="utf-8") == text
        assert not (repo / "junk.txt").exists()
        assert not (repo / "notes/old.txt").exists()
        assert (repo / "scratch.txt").read_text() == "untracked but visible\n"
        # The user's git state is still theirs: nothing staged, no commit.
        assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"
        assert git(repo, "diff", "--cached", "--name-only") == ""
    finally:
        await stop_client(lsp)


async def test_uncommitted_changes_reach_the_copy(tmp_path: Path, replay: Any) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "committed\n", ".gitignore": "*.log\n"})
    (repo / "a.txt").write_text("unstaged edit\n")
    (repo / "staged.txt").write_text("staged\n")
    git(repo, "add", "staged.txt")
    (repo / "new.txt").write_text("untracked\n")
    (repo / "ignored.log").write_text("ignored\n")
    server = replay(
        {
            "name": "look",
            "turns": [
                {
                    "tool_calls": [
                        {
                            "name": "shell",
                            "arguments": {"command": "cat a.txt staged.txt new.txt; ls"},
                        }
                    ]
                },
                {"content": "Looked."},
            ],
        }
    )
    client, lsp = await start_client(folder=repo, env=server_env(tmp_path, server.url, "look"))
    try:
        task_id = await delegate(client, "look around", mode="ask")
        assert await client.wait_status(task_id, {"completed", "failed"}) == "completed"
        output = "".join(e.get("text") or "" for e in client.task_logs if e["kind"] == "output")
        assert "unstaged edit\nstaged\nuntracked\n" in output
        assert "ignored.log" not in output
        diff = await client.command("errand.getDiff", {"taskId": task_id})
        assert diff["diff"] == ""
    finally:
        await stop_client(lsp)


async def test_stale_apply_is_refused_and_writes_nothing(tmp_path: Path, replay: Any) -> None:
    repo = make_repo(tmp_path / "repo", REPO)
    server = replay(FIX_SCENARIO)
    client, lsp = await start_client(folder=repo, env=server_env(tmp_path, server.url, "fix-add"))
    try:
        task_id = await delegate(client, "Fix add")
        assert await client.wait_status(task_id, {"completed", "failed"}) == "completed"
        (repo / "calc.py").write_text("def add(a, b):\n    return b - a  # user edit\n")
        before = tree_fingerprint(repo)
        preview = await client.command("errand.getDiff", {"taskId": task_id})
        assert [c.split(":")[0] for c in preview["conflicts"]] == ["calc.py"]
        (detail,) = preview["conflictDetails"]
        assert detail["path"] == "calc.py" and "overlap" in detail["reason"]
        assert preview["conflicts"] == [f"calc.py: {detail['reason']}"]
        edited = {
            op["textDocument"]["uri"] for op in preview["edit"]["documentChanges"] if "edits" in op
        }
        assert (repo / "calc.py").as_uri() not in edited
        result = await client.command("errand.apply", {"taskId": task_id})
        assert result["applied"] is False
        assert any("calc.py" in c for c in result["conflicts"])
        assert [c["path"] for c in result["conflictDetails"]] == ["calc.py"]
        assert "nothing was written" in result["reason"]
        assert client.apply_requests == []
        assert tree_fingerprint(repo) == before

        # Applying only the untouched files works.
        result = await client.command(
            "errand.apply", {"taskId": task_id, "files": ["docs/usage.md"]}
        )
        assert result["applied"] is True
        assert (repo / "docs/usage.md").read_text(encoding="utf-8") == EXPECTED_AFTER[
            "docs/usage.md"
        ]
        assert (repo / "calc.py").read_text().endswith("# user edit\n")
    finally:
        await stop_client(lsp)


async def test_apply_merges_user_edits_made_meanwhile(tmp_path: Path, replay: Any) -> None:
    files = dict(REPO)
    files["calc.py"] = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"
    repo = make_repo(tmp_path / "repo", files)
    server = replay(FIX_SCENARIO)
    client, lsp = await start_client(folder=repo, env=server_env(tmp_path, server.url, "fix-add"))
    try:
        task_id = await delegate(client, "Fix add")
        assert await client.wait_status(task_id, {"completed", "failed"}) == "completed"
        user_version = files["calc.py"] + "\n\ndef mul(a, b):\n    return a * b\n"
        (repo / "calc.py").write_text(user_version)
        preview = await client.command("errand.getDiff", {"taskId": task_id})
        assert preview["merged"] == ["calc.py"] and preview["conflicts"] == []
        result = await client.command("errand.apply", {"taskId": task_id})
        assert result["applied"] is True, result
        assert result["merged"] == ["calc.py"]
        assert (repo / "calc.py").read_text() == user_version.replace(
            "    return a - b\n\n\ndef sub", "    return a + b\n\n\ndef sub"
        )
    finally:
        await stop_client(lsp)


async def test_create_branch_holds_head_plus_only_the_task_changes(
    tmp_path: Path, replay: Any
) -> None:
    repo = make_repo(tmp_path / "repo", REPO)
    (repo / "wip.txt").write_text("my uncommitted work\n")
    server = replay(FIX_SCENARIO)
    client, lsp = await start_client(folder=repo, env=server_env(tmp_path, server.url, "fix-add"))
    try:
        task_id = await delegate(client, "Fix add")
        assert await client.wait_status(task_id, {"completed", "failed"}) == "completed"
        before = tree_fingerprint(repo)
        made = await client.command("errand.createBranch", {"taskId": task_id})
        assert made["branch"] == f"errand/fix-add-{task_id}"
        assert git(repo, "rev-parse", f"refs/heads/{made['branch']}").strip() == made["commit"]
        assert (
            git(repo, "rev-parse", f"{made['commit']}^").strip()
            == git(repo, "rev-parse", "HEAD").strip()
        )
        changed = git(repo, "diff", "--name-status", "HEAD", made["commit"]).split("\n")
        assert sorted(filter(None, changed)) == sorted(
            ["M\tcalc.py", "A\tdocs/usage.md", "D\tjunk.txt", "R062\tnotes/old.txt\tnotes/new.txt"]
        )
        assert git(repo, "show", f"{made['commit']}:calc.py") == EXPECTED_AFTER["calc.py"]
        # The working tree, index and current branch are as they were (only the new
        # branch's ref and objects were added).
        assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
        after = tree_fingerprint(repo)
        touched = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        assert all(k.startswith(".git/") for k in touched), touched
        assert not any(k.startswith(".git/index") for k in touched)
        with pytest.raises(JsonRpcException) as info:
            await client.command(
                "errand.createBranch", {"taskId": task_id, "branch": made["branch"]}
            )
        assert "already exists" in str(info.value.message)
    finally:
        await stop_client(lsp)


async def test_bad_input_gets_invalid_params_and_server_survives(
    tmp_path: Path, replay: Any
) -> None:
    repo = make_repo(tmp_path / "repo", REPO)
    server = replay(FIX_SCENARIO)
    client, lsp = await start_client(folder=repo, env=server_env(tmp_path, server.url, "fix-add"))
    try:
        cases: list[tuple[str, list[Any], str]] = [
            ("errand.delegate", [{}], "prompt"),
            ("errand.delegate", [{"prompt": 42}], "Expected `str`"),
            ("errand.delegate", [{"prompt": "x", "mode": "yolo"}], "mode"),
            ("errand.delegate", [{"prompt": "x", "bogus": 1}], "bogus"),
            ("errand.delegate", ["not an object"], "Expected `object`"),
            ("errand.getTask", [{"taskId": "nope"}], "no task with id 'nope'"),
            ("errand.getTask", [{}], "taskId"),
            ("errand.getDiff", [{"taskId": 5}], "Expected `str`"),
            ("errand.cancel", [{"taskId": "nope"}], "no task"),
            ("errand.apply", [{"taskId": "nope", "files": "a"}], "Expected `array"),
            ("errand.listTasks", [{}, {}], "one argument object"),
        ]
        for command, arguments, fragment in cases:
            with pytest.raises(JsonRpcException) as info:
                await client.command(command, raw=arguments)
            assert info.value.code == -32602, (command, arguments, info.value)
            assert fragment in str(info.value.message), (command, info.value.message)
        # Out-of-range attempts: a refusal a person can act on, not a crash.
        with pytest.raises(JsonRpcException) as info:
            await client.command("errand.delegate", {"prompt": "x", "attempts": 9})
        assert "attempts must be between 1 and 4" in str(info.value.message)
        listed = await client.command("errand.listTasks")
        assert listed == {"tasks": []}
    finally:
        await stop_client(lsp)


async def test_malformed_tool_arguments_get_a_tool_error(tmp_path: Path, replay: Any) -> None:
    repo = make_repo(tmp_path / "repo", REPO)
    server = replay(
        {
            "name": "malformed",
            "turns": [
                {"tool_calls": [{"name": "shell", "arguments": '{"command": "ls"'}]},
                {"tool_calls": [{"name": "no_such_tool", "arguments": {}}]},
                {"content": "Gave up politely."},
            ],
        }
    )
    client, lsp = await start_client(folder=repo, env=server_env(tmp_path, server.url, "malformed"))
    try:
        task_id = await delegate(client, "do something")
        assert await client.wait_status(task_id, {"completed", "failed"}) == "completed"
        tool_messages = [
            m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"
        ]
        assert tool_messages[0].startswith("error: bad arguments (not valid JSON)")
        assert "unknown tool 'no_such_tool'" in tool_messages[1]
    finally:
        await stop_client(lsp)


def _sandboxed_pids(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline and "pytest" not in cmdline:
            pids.append(int(entry.name))
    return pids


async def test_cancel_kills_sandboxed_processes_and_frees_copy(tmp_path: Path, replay: Any) -> None:
    repo = make_repo(tmp_path / "repo", REPO)
    marker = f"errand-cancel-{os.getpid()}"
    server = replay(
        {
            "name": "slow",
            "turns": [
                {
                    "tool_calls": [
                        {
                            "name": "shell",
                            "arguments": {
                                "command": f"(sleep 300; echo {marker}) & sleep 301 # {marker}"
                            },
                        }
                    ]
                },
                {"content": "never reached"},
            ],
        }
    )
    client, lsp = await start_client(folder=repo, env=server_env(tmp_path, server.url, "slow"))
    try:
        task_id = await delegate(client, "be slow")
        await client.wait_for(
            lambda: any(e["kind"] == "commandStarted" for e in client.task_logs),
            what="the command to start",
        )
        await client.wait_for(lambda: bool(_sandboxed_pids(marker)), 10, "sandboxed processes")
        # The event loop is free while the command runs.
        started = time.monotonic()
        listed = await client.command("errand.listTasks")
        assert time.monotonic() - started < 5
        assert listed["tasks"][0]["status"] == "running"

        await client.command("errand.cancel", {"taskId": task_id})
        assert await client.wait_status(task_id, {"cancelled"}) == "cancelled"
        await client.wait_for(lambda: not _sandboxed_pids(marker), 10, "processes to die")
        assert not list((tmp_path / "data" / "copies").glob(f"{task_id}-*/"))
        task = (await client.command("errand.getTask", {"taskId": task_id}))["task"]
        assert task["reason"] == "cancelled by the user"
    finally:
        await stop_client(lsp)


async def test_restart_keeps_history_and_marks_interrupted(tmp_path: Path, replay: Any) -> None:
    repo = make_repo(tmp_path / "repo", REPO)
    slow = {
        "name": "slow",
        "turns": [
            {"tool_calls": [{"name": "shell", "arguments": {"command": "sleep 120"}}]},
            {"content": "never"},
        ],
    }
    server = replay(FIX_SCENARIO, slow)
    env = server_env(tmp_path, server.url, "fix-add")
    client, lsp = await start_client(folder=repo, env=env)
    try:
        done_id = await delegate(client, "Fix add")
        assert await client.wait_status(done_id, {"completed", "failed"}) == "completed"
    finally:
        await stop_client(lsp)

    client, lsp = await start_client(folder=repo, env={**env, "ERRAND_MODEL": "slow"})
    running_id = await delegate(client, "be slow")
    await client.wait_status(running_id, {"running"})
    await client.wait_for(
        lambda: any(
            e["kind"] == "commandStarted" and e["taskId"] == running_id for e in client.task_logs
        ),
        what="the slow command",
    )
    process = lsp._server  # the `errand serve` subprocess
    assert process is not None
    os.kill(process.pid, signal.SIGKILL)
    await asyncio.sleep(0.2)
    await lsp.stop()

    client, lsp = await start_client(folder=repo, env=env)
    try:
        listed = await client.command("errand.listTasks")
        by_id = {t["taskId"]: t for t in listed["tasks"]}
        assert by_id[done_id]["status"] == "completed"
        assert by_id[running_id]["status"] == "failed"
        assert by_id[running_id]["reason"] == "interrupted"
        diff = await client.command("errand.getDiff", {"taskId": done_id})
        assert "+    return a + b" in diff["diff"]
        log = await client.command("errand.getLog", {"taskId": done_id})
        finished = [e for e in log["entries"] if e["kind"] == "commandFinished"]
        assert [(e["chunkId"], e["exitCode"]) for e in finished] == [("c1-1", 1), ("c1-2", 0)]
        assert any(e["kind"] == "output" and "FAILED" in e["text"] for e in log["entries"])
        result = await client.command("errand.apply", {"taskId": done_id})
        assert result["applied"] is True
        assert (repo / "calc.py").read_text() == EXPECTED_AFTER["calc.py"]
        await client.command("errand.discard", {"taskId": done_id})
        listed = await client.command("errand.listTasks")
        assert done_id not in {t["taskId"] for t in listed["tasks"]}
        assert client.task_changes[-1]["removed"] is True
    finally:
        await stop_client(lsp)


async def test_unusable_data_folder_is_reported_and_the_server_keeps_answering(
    tmp_path: Path, replay: Any
) -> None:
    repo = make_repo(tmp_path / "repo", REPO)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be\n")
    server = replay(FIX_SCENARIO)
    env = server_env(tmp_path, server.url, "fix-add", ERRAND_DATA_DIR=str(blocker / "data"))
    client, lsp = await start_client(folder=repo, env=env)
    try:
        for _ in range(2):
            with pytest.raises(JsonRpcException) as info:
                await client.command("errand.listTasks")
            assert info.value.code == -32803
            assert "errand could not start" in str(info.value.message)
            assert str(blocker) in str(info.value.message)
        assert any(p[0] == "message" and "could not start" in p[1] for p in client.progress)
    finally:
        await stop_client(lsp)
