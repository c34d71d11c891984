"""End to end through the LSP server: the agent's evidence, instructions, modes,
follow-ups, best-of-N, both OpenAI APIs, model failures and limits."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.lsp_harness import ErrandClient, delegate, server_env, start_client, stop_client
from support.repos import make_repo
from support.scenarios import FIX_SCENARIO, REPO

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="function")]


def shell(command: str) -> dict[str, Any]:
    return {"name": "shell", "arguments": {"command": command}}


def patch(text: str) -> dict[str, Any]:
    return {"name": "apply_patch", "arguments": {"patch": text}}


FIX_ADD = """*** Begin Patch
*** Update File: calc.py
@@ def add(a, b):
-    return a - b
+    return a + b
*** End Patch
"""


async def run_task(
    tmp_path: Path,
    replay: Any,
    scenario: dict[str, Any],
    *,
    files: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    expect: str = "completed",
    **delegate_args: Any,
) -> tuple[ErrandClient, Any, dict[str, Any], Path, Any]:
    repo = make_repo(tmp_path / "repo", files or REPO)
    server = replay(scenario)
    client, lsp = await start_client(
        folder=repo, env={**server_env(tmp_path, server.url, scenario["name"]), **(env or {})}
    )
    task_id = await delegate(client, delegate_args.pop("prompt", "do the task"), **delegate_args)
    status = await client.wait_status(task_id, {"completed", "failed", "cancelled"})
    task = (await client.command("errand.getTask", {"taskId": task_id}))["task"]
    assert status == expect, task
    return client, lsp, task, repo, server


async def test_model_that_lies_about_tests_is_flagged(tmp_path: Path, replay: Any) -> None:
    scenario = {
        "name": "liar",
        "turns": [
            {"tool_calls": [shell("python3 -m unittest")]},
            {"content": "Done. All tests pass now."},
        ],
    }
    _, lsp, task, _, _ = await run_task(tmp_path, replay, scenario)
    try:
        (attempt,) = task["attempts"]
        assert [c["passed"] for c in attempt["checks"]] == [False]
        assert any("python3 -m unittest" in w and "c1-1" in w for w in attempt["warnings"]), (
            attempt["warnings"]
        )
        # The same warning, typed: a client links it to the failing run without parsing.
        (claim,) = [a for a in attempt["alerts"] if a["kind"] == "claim"]
        assert claim["chunkId"] == "c1-1" and claim["text"] in attempt["warnings"]
        assert task["checksFailed"] == 1
    finally:
        await stop_client(lsp)


async def test_honest_report_has_no_warnings_and_citations_resolve(
    tmp_path: Path, replay: Any
) -> None:
    _, lsp, task, repo, _ = await run_task(tmp_path, replay, FIX_SCENARIO)
    try:
        (attempt,) = task["attempts"]
        assert attempt["warnings"] == [] and attempt["alerts"] == []
        kinds = {(c["kind"], c["resolved"]) for c in attempt["citations"]}
        assert kinds == {("file", True), ("chunk", True)}
        file_citation = next(c for c in attempt["citations"] if c["kind"] == "file")
        assert file_citation["path"] == "calc.py"
        assert (file_citation["startLine"], file_citation["endLine"]) == (1, 2)
        assert file_citation["uri"] == (repo / "calc.py").as_uri()
    finally:
        await stop_client(lsp)


async def test_bad_citation_comes_back_unresolved(tmp_path: Path, replay: Any) -> None:
    scenario = {
        "name": "cites",
        "turns": [
            {"tool_calls": [shell("cat calc.py")]},
            {
                "content": "`add` lives here 【F:calc.py†L1-L2】 and output 【c1-1†L1-L2】; "
                "see also 【F:nowhere.py†L3-L9】 and 【F:calc.py†L40-L41】."
            },
        ],
    }
    _, lsp, task, _, _ = await run_task(tmp_path, replay, scenario, mode="ask")
    try:
        (attempt,) = task["attempts"]
        resolved = {c["text"]: c["resolved"] for c in attempt["citations"]}
        assert resolved == {
            "【F:calc.py†L1-L2】": True,
            "【c1-1†L1-L2】": True,
            "【F:nowhere.py†L3-L9】": False,
            "【F:calc.py†L40-L41】": False,
        }
        assert any(w.startswith("2 citation(s) did not resolve") for w in attempt["warnings"])
        cited = [
            (a["path"], a["startLine"], a["endLine"])
            for a in attempt["alerts"]
            if a["kind"] == "citation"
        ]
        assert cited == [("nowhere.py", 3, 9), ("calc.py", 40, 41)]
    finally:
        await stop_client(lsp)


async def test_ask_mode_is_read_only(tmp_path: Path, replay: Any) -> None:
    scenario = {
        "name": "asker",
        "turns": [
            {"tool_calls": [shell("touch new.txt; mkdir d; cat calc.py; echo hacked > calc.py")]},
            {"content": "`add` subtracts 【F:calc.py†L1-L2】."},
        ],
    }
    client, lsp, task, _, server = await run_task(
        tmp_path, replay, scenario, mode="ask", prompt="what does add do?"
    )
    try:
        (attempt,) = task["attempts"]
        assert task["mode"] == "ask"
        finished = [e for e in client.task_logs if e["kind"] == "commandFinished"]
        assert finished[0]["exitCode"] != 0
        output = "".join(e.get("text") or "" for e in client.task_logs if e["kind"] == "output")
        assert "Read-only file system" in output
        assert "return a - b" in output  # the file is unchanged
        assert attempt["diffStat"] == {"files": 0, "added": 0, "removed": 0}
        diff = await client.command("errand.getDiff", {"taskId": task["taskId"]})
        assert diff["diff"] == ""
        tools = {t["function"]["name"] for t in server.requests[0]["tools"]}
        assert tools == {"shell"}
        assert attempt["report"].startswith("`add` subtracts")
    finally:
        await stop_client(lsp)


async def test_follow_up_continues_the_same_copy_and_conversation(
    tmp_path: Path, replay: Any
) -> None:
    add_test = """*** Begin Patch
*** Add File: test_more.py
+from calc import add
+
+assert add(1, 1) == 2
*** End Patch
"""
    scenario = {
        "name": "follow",
        "turns": [
            {"tool_calls": [patch(FIX_ADD)]},
            {"content": "Fixed add 【F:calc.py†L1-L2】."},
            {"tool_calls": [patch(add_test)]},
            {"tool_calls": [shell("python3 test_more.py && git status --short")]},
            {"content": "Added a test 【F:test_more.py†L1-L3】."},
        ],
    }
    client, lsp, task, _, server = await run_task(tmp_path, replay, scenario)
    try:
        task_id = task["taskId"]
        assert task["diffStat"]["files"] == 1
        result = await client.command(
            "errand.followUp", {"taskId": task_id, "prompt": "also add a test"}
        )
        assert result == {"taskId": task_id}
        await client.wait_for(
            lambda: any(
                c["task"]["taskId"] == task_id and c["task"]["status"] == "running"
                for c in client.task_changes[-6:]
            ),
            what="the follow-up to run",
        )
        assert await client.wait_status(task_id, {"completed", "failed"}) == "completed"
        task = (await client.command("errand.getTask", {"taskId": task_id}))["task"]
        (attempt,) = task["attempts"]
        assert attempt["report"].startswith("Added a test")
        assert task["diffStat"] == {"files": 2, "added": 4, "removed": 1}
        diff = (await client.command("errand.getDiff", {"taskId": task_id}))["diff"]
        assert "+    return a + b" in diff and "+assert add(1, 1) == 2" in diff
        last = server.requests[-1]["messages"]
        users = [m["content"] for m in last if m["role"] == "user"]
        assert users[0].startswith("do the task") and users[-1] == "also add a test"
        output = "".join(e.get("text") or "" for e in client.task_logs if e["kind"] == "output")
        assert " M calc.py" in output and "?? test_more.py" in output
    finally:
        await stop_client(lsp)


async def test_best_of_two_attempts_with_different_diffs_apply_one(
    tmp_path: Path, replay: Any
) -> None:
    other_fix = FIX_ADD.replace("+    return a + b", "+    return sum((a, b))")
    scenario = {
        "name": "best-of",
        "variants": [
            [{"tool_calls": [patch(FIX_ADD)]}, {"content": "Plain fix."}],
            [
                {"tool_calls": [patch(other_fix)]},
                {"tool_calls": [shell("python3 -m unittest")]},
                {"content": "Fix with sum()."},
            ],
        ],
    }
    client, lsp, task, repo, _ = await run_task(tmp_path, replay, scenario, attempts=2)
    try:
        task_id = task["taskId"]
        assert task["attemptCount"] == 2
        attempts = {a["attempt"]: a for a in task["attempts"]}
        assert {a["status"] for a in attempts.values()} == {"completed"}
        reports = {a["report"] for a in attempts.values()}
        assert reports == {"Plain fix.", "Fix with sum()."}
        diffs = {}
        for n in (1, 2):
            diffs[n] = await client.command("errand.getDiff", {"taskId": task_id, "attempt": n})
            assert diffs[n]["attempt"] == n
        assert diffs[1]["diff"] != diffs[2]["diff"]
        chosen = next(n for n in (1, 2) if "sum((a, b))" in diffs[n]["diff"])
        with_checks = attempts[chosen]
        assert [c["passed"] for c in with_checks["checks"]] == [True]
        result = await client.command("errand.apply", {"taskId": task_id, "attempt": chosen})
        assert result["applied"] is True
        assert (repo / "calc.py").read_text() == "def add(a, b):\n    return sum((a, b))\n"
    finally:
        await stop_client(lsp)


async def test_responses_api_end_to_end(tmp_path: Path, replay: Any) -> None:
    scenario = dict(FIX_SCENARIO, name="fix-add-responses")
    scenario["turns"] = [dict(t, reasoning="thinking about add") for t in FIX_SCENARIO["turns"]]
    _, lsp, task, _, server = await run_task(
        tmp_path, replay, scenario, env={"ERRAND_API": "responses"}
    )
    try:
        (attempt,) = task["attempts"]
        assert attempt["diffStat"]["files"] == 4
        assert attempt["usage"]["inputTokens"] > 0 and attempt["usage"]["outputTokens"] > 0
        assert all("input" in r and r.get("store") is False for r in server.requests)
        # Reasoning items are carried back between steps without server-side storage.
        second = server.requests[1]["input"]
        assert any(item.get("type") == "reasoning" for item in second)
    finally:
        await stop_client(lsp)


async def test_agents_md_reaches_the_model_deeper_last(tmp_path: Path, replay: Any) -> None:
    files = {
        **REPO,
        "AGENTS.md": "Root rule: run `python3 -m unittest` before finishing.\n",
        "pkg/AGENTS.md": "Package rule: prefer small functions.\n",
        "pkg/AGENTS.override.md": "Package override: never use tabs.\n",
        "pkg/mod.py": "x = 1\n",
    }
    scenario = {"name": "rules", "turns": [{"content": "Read the rules."}]}
    repo = make_repo(tmp_path / "repo", files)
    server = replay(scenario)
    client, lsp = await start_client(folder=repo, env=server_env(tmp_path, server.url, "rules"))
    try:
        task_id = await delegate(client, "follow the rules", workspace=str(repo / "pkg"))
        assert await client.wait_status(task_id, {"completed", "failed"}) == "completed"
        user = next(m["content"] for m in server.requests[0]["messages"] if m["role"] == "user")
        assert user.startswith("follow the rules")
        root = user.index("Root rule")
        override = user.index("Package override")
        assert root < override
        assert "prefer small functions" not in user  # the override wins in its folder
    finally:
        await stop_client(lsp)


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP listener on 127.0.0.1 that the setup phase may reach and the agent may not."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            conn.sendall(b"hello-from-host\n")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    sock.close()


async def test_setup_script_gets_network_and_secrets_agent_does_not(
    tmp_path: Path, replay: Any, listener: int
) -> None:
    probe = (
        f"python3 -c \"import socket; s=socket.create_connection(('127.0.0.1', {listener}), 2);"
        ' print(s.recv(64).decode().strip())"'
    )
    files = {
        **REPO,
        ".errand/config.toml": (
            "[setup]\n"
            f"script = '''echo setup-secret=$MY_SETUP_SECRET; {probe}; echo ok > .setup-done'''\n"
            "network = true\n"
            'secrets = ["MY_SETUP_SECRET"]\n'
        ),
    }
    scenario = {
        "name": "setup",
        "turns": [
            {
                "tool_calls": [
                    shell(f"cat .setup-done; echo agent-secret=$MY_SETUP_SECRET; {probe}")
                ]
            },
            {"content": "Checked."},
        ],
    }
    client, lsp, task, _, _ = await run_task(
        tmp_path,
        replay,
        scenario,
        files=files,
        env={"MY_SETUP_SECRET": "s3cr3t-value"},
    )
    try:
        logs = client.task_logs
        started = [e for e in logs if e["kind"] == "commandStarted"]
        assert "MY_SETUP_SECRET" in started[0]["command"]
        by_chunk: dict[str, str] = {}
        for e in logs:
            if e["kind"] == "output":
                by_chunk[e["chunkId"]] = by_chunk.get(e["chunkId"], "") + e["text"]
        setup_out, agent_out = by_chunk["c1-1"], by_chunk["c1-2"]
        assert "setup-secret=s3cr3t-value" in setup_out and "hello-from-host" in setup_out
        assert "ok" in agent_out and "agent-secret=\n" in agent_out
        assert "hello-from-host" not in agent_out
        finished = [e for e in logs if e["kind"] == "commandFinished"]
        assert [e["exitCode"] == 0 for e in finished] == [True, False]
        (attempt,) = task["attempts"]
        assert attempt["checks"] == []  # the setup script is not a check
    finally:
        await stop_client(lsp)


async def test_failing_setup_fails_the_attempt_with_its_log(tmp_path: Path, replay: Any) -> None:
    files = {**REPO, ".errand/config.toml": "[setup]\nscript = 'echo broken; exit 3'\n"}
    scenario = {"name": "never", "turns": [{"content": "never asked"}]}
    _, lsp, task, _, server = await run_task(
        tmp_path, replay, scenario, files=files, expect="failed"
    )
    try:
        assert "setup script failed with exit code 3" in task["reason"]
        assert server.requests == []
    finally:
        await stop_client(lsp)


async def test_usage_and_cost_are_recorded(tmp_path: Path, replay: Any) -> None:
    prices = {"ERRAND_PRICE_INPUT": "2.0", "ERRAND_PRICE_OUTPUT": "8.0"}
    _, lsp, task, _, _ = await run_task(tmp_path, replay, FIX_SCENARIO, env=prices)
    try:
        usage = task["attempts"][0]["usage"]
        expected = (
            (usage["inputTokens"] - usage["cachedTokens"]) * 2.0
            + usage["cachedTokens"] * 2.0
            + usage["outputTokens"] * 8.0
        ) / 1e6
        assert usage["costUsd"] == pytest.approx(expected)
        assert usage["cachedTokens"] > 0
    finally:
        await stop_client(lsp)


@pytest.mark.parametrize(
    ("turns", "env", "expect", "reason"),
    [
        (
            [{"error": {"status": 429, "times": 2, "retry_after_ms": 10}, "content": "Done."}],
            {},
            "completed",
            None,
        ),
        (
            [{"error": {"status": 500, "times": 50, "retry_after_ms": 10}, "content": "x"}],
            {},
            "failed",
            "HTTP 500",
        ),
        ([{"refusal": "I can't help with that."}], {}, "failed", "the model refused"),
        ([{}], {}, "failed", "empty answer"),
        (
            [{"tool_calls": [shell("true")]}] * 4 + [{"content": "done"}],
            {"ERRAND_MAX_STEPS": "2"},
            "failed",
            "step limit reached (2 steps)",
        ),
    ],
    ids=["429-retried", "500-exhausted", "refusal", "empty", "step-limit"],
)
async def test_model_failures_and_limits_end_the_attempt_clearly(
    tmp_path: Path,
    replay: Any,
    turns: list[dict[str, Any]],
    env: dict[str, str],
    expect: str,
    reason: str | None,
) -> None:
    scenario = {"name": "flaky", "turns": turns}
    _, lsp, task, _, _ = await run_task(tmp_path, replay, scenario, env=env, expect=expect)
    try:
        if reason is None:
            assert task["reason"] is None
        else:
            assert reason in task["reason"], task["reason"]
    finally:
        await stop_client(lsp)


async def test_the_none_sandbox_is_flagged_on_the_attempt(tmp_path: Path, replay: Any) -> None:
    from errand.sandbox.none import WARNING

    scenario = {"name": "bare", "turns": [{"tool_calls": [shell("true")]}, {"content": "ok"}]}
    _, lsp, task, _, _ = await run_task(tmp_path, replay, scenario, env={"ERRAND_SANDBOX": "none"})
    try:
        (attempt,) = task["attempts"]
        assert attempt["sandbox"] == "none"
        assert attempt["warnings"] == [WARNING]
    finally:
        await stop_client(lsp)
