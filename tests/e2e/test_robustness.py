"""Bad input never kills, hangs or corrupts `errand serve`: each class of hostile
input is written as raw bytes to the real server over stdio, gets exactly one
answer (or, for a notification, none), and the server answers a normal request
right after."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException

from support.lsp_harness import start_client, stop_client
from support.rawlsp import RawServer, frame
from support.repos import make_repo, tree_fingerprint

pytestmark = pytest.mark.e2e

LINES = "".join(f"line {i}\n" for i in range(1, 9))
FILES = {
    "calc.py": "def add(a, b):\n    return a - b\n",
    "old.txt": LINES + "old\n",
    "junk.txt": "x\n",
}

PATCH = """*** Begin Patch
*** Update File: calc.py
@@ def add(a, b):
-    return a - b
+    return a + b
*** Add File: docs/new.md
+# New
*** Delete File: junk.txt
*** Update File: old.txt
*** Move to: renamed.txt
@@
 line 8
-old
+renamed
*** End Patch
"""

FIX = {
    "name": "fix",
    "turns": [
        {"tool_calls": [{"name": "apply_patch", "arguments": {"patch": PATCH}}]},
        {"content": "Fixed."},
    ],
}


def env(
    tmp_path: Path, url: str = "http://127.0.0.1:9", model: str = "none", **extra: str
) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": url,
        "OPENAI_API_KEY": "sk-test-not-a-secret",
        "ERRAND_MODEL": model,
        "ERRAND_API": "chat",
        "ERRAND_SANDBOX": "bwrap",
        "ERRAND_DATA_DIR": str(tmp_path / "data"),
        **extra,
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", FILES)


@pytest.fixture
def served(tmp_path: Path, repo: Path) -> Any:
    servers: list[RawServer] = []

    def start(**extra: str) -> RawServer:
        server = RawServer(env(tmp_path, **extra), tmp_path / f"stderr-{len(servers)}.log")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def error_of(response: dict[str, Any]) -> tuple[int, str]:
    assert "error" in response, response
    return response["error"]["code"], response["error"]["message"]


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


# --- framing -------------------------------------------------------------------------


def test_oversized_and_broken_frames_are_refused_and_the_stream_resyncs(
    served: Any, repo: Path
) -> None:
    server = served(ERRAND_MAX_FRAME_BYTES="65536")
    # Before initialize: these used to end the server (OverflowError, MemoryError).
    hostile = [
        (b"Content-Length: 100000000000000000000\r\n\r\n", -32600, "100000000000000000000 bytes"),
        (b"Content-Length: 68719476736\r\n\r\n", -32600, "68719476736 bytes refused"),
        (b"Content-Length: 1e9\r\n\r\n", -32600, "not a number"),
        (b"hello there\r\n\r\n", -32600, "not a header line"),
        # The first Content-Length counts; the body is then no JSON.
        (b"Content-Length: 5\r\nContent-Length: x\r\n\r\nhello", -32700, "not valid JSON"),
    ]
    for data, code, fragment in hostile:
        before = len(server.null_id_errors)
        server.send_raw(data)
        errors = server.wait_null_errors(before + 1)
        assert errors[-1]["error"]["code"] == code, errors[-1]
        assert fragment in errors[-1]["error"]["message"], errors[-1]
        # Not initialized yet, but alive: a request is answered.
        assert error_of(server.command("errand.listTasks", {}))[0] == -32002
    # params pygls can't structure: answered, and the server is still not initialized.
    code, message = error_of(server.call("initialize", {"processId": "x", "capabilities": {}}))
    assert code == -32602 and "initialize: invalid params" in message and "process_id" in message
    server.initialize(repo)
    server.assert_alive()

    # An honest frame over the limit is discarded exactly, even when its body looks
    # like frames; the request in it is not answered by id (its id was never read).
    inner = frame(json.dumps({"jsonrpc": "2.0", "id": 5, "method": "shutdown"})) * 2000
    big = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 6,
            "method": "workspace/executeCommand",
            "params": {"x": inner.decode()},
        }
    ).encode()
    assert len(big) > 65536
    before = len(server.null_id_errors)
    server.send_raw(frame(big))
    errors = server.wait_null_errors(before + 1)
    assert "its body was discarded" in errors[-1]["error"]["message"]
    server.assert_alive()
    assert 5 not in server.responses and 6 not in server.responses

    # A 64 MiB header line without a newline is skipped, never held in memory.
    peak = peak_rss_kib(server.proc.pid)
    before = len(server.null_id_errors)
    chunk = b"x" * (1 << 20)
    for _ in range(64):
        server.send_raw(chunk)
    server.assert_alive()
    errors = server.wait_null_errors(before + 1)
    assert "header line is longer than 8 KiB" in errors[-1]["error"]["message"]
    assert peak_rss_kib(server.proc.pid) - peak < 32 * 1024
    server.assert_alive()
    assert len(server.null_id_errors) == before + 1


# --- every request gets exactly one answer --------------------------------------------


def _command(msg_id: int, params: Any) -> str:
    return json.dumps(
        {"jsonrpc": "2.0", "id": msg_id, "method": "workspace/executeCommand", "params": params}
    )


def test_every_request_gets_exactly_one_answer(served: Any, repo: Path) -> None:
    server = served()
    server.initialize(repo)
    list_tasks = '{"command":"errand.listTasks","arguments":'
    cases: list[tuple[str | bytes, int, str]] = [
        (
            _command(1, {"command": "errand.listTasks", "arguments": {"a": 1}}),
            -32602,
            "arguments must be a list",
        ),
        (
            _command(2, {"command": "errand.listTasks", "arguments": "abc"}),
            -32602,
            "arguments must be a list",
        ),
        (
            _command(3, {"command": "errand.listTasks", "arguments": 7}),
            -32602,
            "arguments must be a list",
        ),
        (_command(4, "not an object"), -32600, "params must be an object"),
        (_command(5, 42), -32600, "params must be an object"),
        (_command(6, [1, 2]), -32602, "params must be an object"),
        (_command(7, {"command": 5}), -32602, "params.command must be a string"),
        (_command(8, {"command": "errand.nope"}), -32602, "unknown command 'errand.nope'"),
        (
            _command(9, {"command": "errand.listTasks", "arguments": [{}, {}]}),
            -32602,
            "pass one argument object, not 2 arguments",
        ),
        (
            '{"jsonrpc":"2.0","id":10,"method":"workspace/executeCommand","params":'
            + list_tasks
            + "[" * 990
            + "]" * 990
            + "}}",
            -32602,
            "nested deeper than 128 levels",
        ),
        (
            '{"jsonrpc":"2.0","id":11,"method":"workspace/executeCommand","params":'
            + list_tasks
            + "[" * 20000
            + "]" * 20000
            + "}}",
            -32602,
            "nested deeper than 128 levels",
        ),
        (
            '{"jsonrpc":"2.0","id":12,"method":"workspace/executeCommand","params":'
            '{"command":"errand.getLog","arguments":[{"taskId":"x","attempt":'
            + "7" * 4301
            + "}]}}",
            -32602,
            "errand.getLog: invalid arguments: attempt is an integer of 4301 digits",
        ),
        (
            '{"jsonrpc":"2.0","id":13,"method":"workspace/executeCommand","params":{',
            -32700,
            "not valid JSON",
        ),
        (
            '{"jsonrpc":"2.0","id":14,"method":"initialize","params":{"capabilities":{}}}',
            -32600,
            "already",
        ),
        ('{"jsonrpc":"1.0","id":15,"method":"shutdown"}', -32600, 'jsonrpc must be "2.0"'),
        (
            '{"jsonrpc":"2.0","id":16,"method":"textDocument/hover","params":{}}',
            -32601,
            "unknown method",
        ),
        ('{"jsonrpc":"2.0","id":17,"method":"x","params":{"n":NaN}}', -32700, "NaN"),
        (b'{"jsonrpc":"2.0","id":18,"method":"x","params":"\xff"}', -32700, "UTF-8"),
    ]
    for msg_id, (body, code, fragment) in enumerate(cases, start=1):
        data = body if isinstance(body, bytes) else body.encode()
        assert f'"id": {msg_id},'.encode() in data or f'"id":{msg_id},'.encode() in data
        server.send_raw(frame(data))
        got = error_of(server.wait_response(msg_id))
        assert got[0] == code, (body[:200], got)
        assert fragment in got[1], (body[:200], got)
        server.assert_alive()
    # Without a recoverable id: answered with id null.
    for body in ("{", "[]", '"x"', '{"jsonrpc":"2.0","id":{"a":1},"method":"x"}'):
        before = len(server.null_id_errors)
        server.send_raw(frame(body))
        errors = server.wait_null_errors(before + 1)
        assert errors[-1]["error"]["code"] in (-32700, -32600)
        server.assert_alive()
    # Bad notifications get no answer and change nothing.
    before = len(server.null_id_errors)
    server.send_raw(frame('{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"x":1}}'))
    server.send_raw(frame('{"jsonrpc":"2.0","method":"$/cancelRequest","params":{}}'))
    server.send_raw(frame('{"jsonrpc":"2.0","method":"x","params":{"a":' + "1" * 5000 + "}}"))
    server.assert_alive()
    server.drain(1.0)
    assert len(server.null_id_errors) == before
    # Nothing was answered twice (RawServer fails on a second answer to one id).
    assert not server.stderr_text().count("Traceback")


def test_after_shutdown_requests_are_refused_and_exit_ends(served: Any, repo: Path) -> None:
    server = served()
    server.initialize(repo)
    assert "result" in server.call("shutdown")
    assert error_of(server.command("errand.listTasks", {}))[0] == -32600
    server.notify("exit")
    assert server.proc.wait(20) == 0


# --- clear errors instead of internal errors ------------------------------------------


def test_invalid_arguments_name_the_field_and_leave_nothing_behind(
    served: Any, repo: Path, tmp_path: Path, replay: Any
) -> None:
    model = replay(FIX)
    server = served(OPENAI_BASE_URL=model.url, ERRAND_MODEL="fix")
    server.initialize(repo)
    # Lone surrogates are written in the JSON text, as "\ud800".
    cases: list[tuple[str, dict[str, Any], str]] = [
        (
            "errand.delegate",
            {"prompt": "fix \ud800 it"},
            "prompt contains a lone surrogate (\\ud800), which is not valid Unicode",
        ),
        ("errand.delegate", {"prompt": "x", "mode": "\udc00"}, "mode contains a lone surrogate"),
        (
            "errand.delegate",
            {"prompt": "x", "workspace": "\ud800"},
            "workspace contains a lone surrogate",
        ),
        (
            "errand.delegate",
            {"prompt": "x", "workspace": str(repo / ("d" * 300))},
            "File name too long",
        ),
        (
            "errand.delegate",
            {"prompt": "x", "workspace": "/" + "d/" * 3000},
            "workspace is 6001 characters",
        ),
        ("errand.delegate", {"prompt": "x", "workspace": "a\x00b"}, "workspace contains a NUL"),
        (
            "errand.delegate",
            {"prompt": "x", "attempts": 99},
            "attempts must be between 1 and 4, not 99",
        ),
        (
            "errand.delegate",
            {"prompt": "x", "attempts": 0},
            "attempts must be between 1 and 4, not 0",
        ),
        ("errand.delegate", {"prompt": "   "}, "prompt is blank"),
        ("errand.getTask", {"taskId": "\ud800"}, "taskId contains a lone surrogate"),
        (
            "errand.followUp",
            {"taskId": "abc", "prompt": "\udfff"},
            "prompt contains a lone surrogate",
        ),
        (
            "errand.apply",
            {"taskId": "abc", "files": ["a", "\ud800"]},
            "files[1] contains a lone surrogate",
        ),
        ("errand.getDiff", {"taskId": "abc", "attempt": 2**63}, "attempt must be between 1 and 4"),
        (
            "errand.getLog",
            {"taskId": "abc", "attempt": 2**64 + 1},
            "attempt must be between 1 and 4",
        ),
        (
            "errand.createBranch",
            {"taskId": "abc", "attempt": -(2**63)},
            "attempt must be between 1 and 4",
        ),
        (
            "errand.createBranch",
            {"taskId": "abc", "branch": "a\x00b"},
            "branch is not a valid branch name",
        ),
        (
            "errand.createBranch",
            {"taskId": "abc", "branch": "b\ud800"},
            "branch contains a lone surrogate",
        ),
        (
            "errand.createBranch",
            {"taskId": "abc", "branch": "b" * 100_000},
            "branch is 100000 characters long",
        ),
    ]
    for command, arguments, fragment in cases:
        code, message = error_of(server.command(command, arguments))
        assert code == -32602, (command, arguments, message)
        assert message.startswith(command + ": "), message
        assert fragment in message, message
        server.assert_alive()
    # No ghost task: nothing in memory, nothing announced, nothing stored.
    assert server.command("errand.listTasks", {})["result"] == {"tasks": []}
    assert not [n for n in server.notifications if n["method"] == "errand/taskChanged"]
    server.close()
    again = served(OPENAI_BASE_URL=model.url, ERRAND_MODEL="fix")
    again.initialize(repo, {"maxSteps": 5, "model": "gpt\udc00"})
    assert again.command("errand.listTasks", {})["result"] == {"tasks": []}
    shown = again.wait_notification(
        lambda n: n["method"] == "window/showMessage", what="the options' problem"
    )
    assert "initializationOptions ignored: model contains a lone surrogate" in str(shown)

    # With a real task: an attempt that doesn't exist is InvalidParams, naming the count.
    task_id = again.command("errand.delegate", {"prompt": "fix add"})["result"]["taskId"]
    again.wait_notification(
        lambda n: (
            n["method"] == "errand/taskChanged"
            and n["params"]["task"]["status"] in ("completed", "failed")
        ),
        what="the task to end",
    )
    for command in ("errand.getLog", "errand.getDiff", "errand.apply", "errand.createBranch"):
        code, message = error_of(again.command(command, {"taskId": task_id, "attempt": 3}))
        assert (code, message) == (
            -32602,
            f"{command}: task {task_id} has 1 attempt(s); attempt 3 does not exist",
        ), message
    code, message = error_of(
        again.command("errand.apply", {"taskId": task_id, "files": ["nope.py"]})
    )
    assert code == -32602 and "files not changed by this attempt: nope.py" in message
    code, message = error_of(
        again.command("errand.createBranch", {"taskId": task_id, "branch": "a..b"})
    )
    assert code == -32602 and "branch is not a valid branch name" in message
    code, message = error_of(
        again.command("errand.createBranch", {"taskId": task_id, "branch": "x/" + "é" * 130})
    )
    assert code == -32602 and "is 260 bytes long in UTF-8" in message
    made = again.command("errand.createBranch", {"taskId": task_id, "branch": "fix"})
    assert made["result"]["branch"] == "fix"
    code, message = error_of(
        again.command("errand.createBranch", {"taskId": task_id, "branch": "fix/more"})
    )
    assert code == -32803 and "git refused to create the branch" in message, message
    assert (
        len(again.command("errand.getLog", {"taskId": task_id, "attempt": 1})["result"]["entries"])
        > 0
    )
    again.assert_alive()


def test_a_running_task_s_diff_is_request_failed(served: Any, repo: Path, replay: Any) -> None:
    model = replay(
        {
            "name": "slow",
            "turns": [
                {"tool_calls": [{"name": "shell", "arguments": {"command": "sleep 60"}}]},
                {"content": "never"},
            ],
        }
    )
    server = served(OPENAI_BASE_URL=model.url, ERRAND_MODEL="slow")
    server.initialize(repo)
    task_id = server.command("errand.delegate", {"prompt": "be slow"})["result"]["taskId"]
    server.wait_notification(
        lambda n: n["method"] == "errand/taskLog" and n["params"]["kind"] == "commandStarted",
        what="the command to start",
    )
    code, message = error_of(server.command("errand.getDiff", {"taskId": task_id}))
    assert code == -32803 and "is still running" in message
    assert "result" in server.command("errand.cancel", {"taskId": task_id})


def test_a_bad_answer_to_apply_edit_fails_the_apply(served: Any, repo: Path, replay: Any) -> None:
    model = replay(FIX)
    server = served(OPENAI_BASE_URL=model.url, ERRAND_MODEL="fix")
    server.initialize(repo)
    task_id = server.command("errand.delegate", {"prompt": "fix add"})["result"]["taskId"]
    server.wait_notification(
        lambda n: (
            n["method"] == "errand/taskChanged"
            and n["params"]["task"]["status"] in ("completed", "failed")
        ),
        what="the task to end",
    )
    before = tree_fingerprint(repo)
    answers = [
        ({"result": {}}, "the client's answer is invalid"),
        ({"result": None}, "workspace/applyEdit failed: the client's answer is invalid"),
        (
            {"error": {"code": -32000, "message": "no thanks"}},
            "workspace/applyEdit failed: no thanks",
        ),
    ]
    for answer, fragment in answers:
        server.apply_answer = answer
        result = server.command("errand.apply", {"taskId": task_id})["result"]
        assert result["applied"] is False and fragment in result["reason"], result
        server.assert_alive()
    assert tree_fingerprint(repo) == before


# --- lifecycle ------------------------------------------------------------------------


def test_a_repeated_initialized_is_ignored(
    served: Any, repo: Path, tmp_path: Path, replay: Any
) -> None:
    model = replay(
        {
            "name": "short",
            "turns": [
                {"tool_calls": [{"name": "shell", "arguments": {"command": "sleep 2"}}]},
                {"content": "Done."},
            ],
        }
    )
    server = served(OPENAI_BASE_URL=model.url, ERRAND_MODEL="short")
    server.initialize(repo)
    task_id = server.command("errand.delegate", {"prompt": "wait a bit"})["result"]["taskId"]
    server.wait_notification(
        lambda n: n["method"] == "errand/taskLog" and n["params"]["kind"] == "commandStarted",
        what="the command to start",
    )
    server.notify("initialized", {})
    server.notify("initialized", {})
    server.assert_alive()
    ended = server.wait_notification(
        lambda n: (
            n["method"] == "errand/taskChanged"
            and n["params"]["task"]["status"] in ("completed", "failed", "cancelled")
        ),
        what="the task to end",
    )
    assert ended["params"]["task"]["status"] == "completed", ended
    task = server.command("errand.getTask", {"taskId": task_id})["result"]["task"]
    assert task["status"] == "completed" and task["reason"] is None
    assert server.stderr_text().count("ignored a repeated initialized notification") == 2
    log = (tmp_path / "data" / "errand.log").read_text()
    assert log.count("engine started") == 1


# --- the log can't fill the disk ------------------------------------------------------


def test_malformed_calls_keep_the_log_and_stderr_small(
    served: Any, repo: Path, tmp_path: Path
) -> None:
    server = served()
    server.initialize(repo)
    bad = [
        _command(0, {"command": "errand.delegate", "arguments": [{"prompt": 5}]}),
        _command(0, {"command": "errand.getTask", "arguments": [{"taskId": "nope"}]}),
        _command(0, {"command": "errand.delegate", "arguments": {"x": 1}}),
        _command(0, {"command": "errand.delegate", "arguments": [{"prompt": "\ud800"}]}),
        _command(0, {"command": "errand.nope"}),
        '{"jsonrpc":"2.0","id":0,"method":"workspace/executeCommand","params":{',
        '{"jsonrpc":"2.0","id":0,"method":"nope/nope"}',
    ]
    calls = 3500
    for i in range(calls):
        body = (
            bad[i % len(bad)]
            .replace('"id": 0', f'"id": {i + 1}')
            .replace('"id":0', f'"id":{i + 1}')
        )
        server.send_raw(frame(body))
    huge = "🚀" * 2_000_000  # 8 MB of UTF-8 in one string, in a field that takes an enum
    server.send(
        _command(
            calls + 1, {"command": "errand.delegate", "arguments": [{"prompt": "x", "mode": huge}]}
        )
    )
    for i in range(calls + 1):
        server.wait_response(i + 1, timeout=120)
    code, message = error_of(server.responses[calls + 1])
    assert code == -32602 and len(message) < 2500 and "mode" in message
    server.assert_alive()
    server.close()

    logs = sorted((tmp_path / "data").glob("errand.log*"))
    assert logs
    for path in logs:
        assert path.stat().st_size <= 5 * 1024 * 1024, path
        longest = max(len(line) for line in path.read_text(encoding="utf-8").splitlines())
        assert longest < 10 * 1024, (path, longest)
    assert sum(p.stat().st_size for p in logs) < 8 * 1024 * 1024
    text = "".join(p.read_text(encoding="utf-8") for p in logs)
    assert "Traceback" not in text
    assert text.count(" refused ") >= calls  # one line each
    assert server.stderr_path.stat().st_size < 16 * 1024, server.stderr_text()[:2000]


# --- a second Apply -------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="function")
async def test_a_second_apply_says_nothing_was_left_to_apply(
    tmp_path: Path, repo: Path, replay: Any
) -> None:
    model = replay(FIX)
    client, lsp = await start_client(folder=repo, env=env(tmp_path, model.url, "fix"))
    try:
        result = await client.command("errand.delegate", {"prompt": "fix add"})
        task_id = result["taskId"]
        assert await client.wait_status(task_id, {"completed", "failed"}) == "completed"

        first = await client.command("errand.apply", {"taskId": task_id, "files": ["calc.py"]})
        assert first["applied"] is True and first["files"] == ["calc.py"]
        # The rest is applied, and only the rest.
        second = await client.command("errand.apply", {"taskId": task_id})
        assert second["applied"] is True, second
        assert sorted(second["files"]) == ["docs/new.md", "junk.txt", "renamed.txt"]
        assert (repo / "renamed.txt").read_text() == LINES + "renamed\n"
        before = tree_fingerprint(repo)
        requests = len(client.apply_requests)

        again = await client.command("errand.apply", {"taskId": task_id})
        assert again == {
            "applied": False,
            "conflicts": [],
            "conflictDetails": [],
            "reason": "every change of this attempt is already in the workspace; "
            "nothing was left to apply",
            "files": [],
            "merged": [],
        }
        assert len(client.apply_requests) == requests
        assert tree_fingerprint(repo) == before
        preview = await client.command("errand.getDiff", {"taskId": task_id})
        assert preview["edit"].get("documentChanges", []) == [] and preview["conflicts"] == []
        with pytest.raises(JsonRpcException) as info:
            await client.command("errand.apply", {"taskId": task_id, "attempt": 2})
        assert info.value.code == -32602
    finally:
        await stop_client(lsp)
