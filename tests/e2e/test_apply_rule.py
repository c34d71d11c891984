"""The Apply rule, end to end: Apply writes exactly the agent's own changes.

Every file in the user's tree except the paths the agent changed is fingerprinted
before and after Apply: untracked, ignored, force-added ignored, excluded caches
(``__pycache__/`` without an ignore rule), and binary files, for every kind of copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.lsp_harness import delegate, server_env, start_client, stop_client
from support.repos import git, make_repo, tree_fingerprint

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="function")]

PYC = bytes(range(256)) * 4  # not text: a .pyc's header and marshalled code
PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)

FIX = """*** Begin Patch
*** Update File: calc.py
@@ def add(a, b):
-    return a - b
+    return a + b
*** End Patch
"""

# The agent writes caches of its own, deletes and rewrites the copy's caches, and
# changes one tracked file. Only that file may reach the user's tree.
SCENARIO: dict[str, Any] = {
    "name": "caches",
    "turns": [
        {
            "tool_calls": [
                {
                    "name": "shell",
                    "arguments": {
                        "command": (
                            "ls -a; rm -rf __pycache__ .pytest_cache; "
                            "env -u PYTHONDONTWRITEBYTECODE python3 -c 'import calc'; "
                            "mkdir -p .mypy_cache && echo {} > .mypy_cache/cache.json; "
                            "ls __pycache__"
                        )
                    },
                }
            ]
        },
        {"tool_calls": [{"name": "apply_patch", "arguments": {"patch": FIX}}]},
        {"content": "Fixed add 【F:calc.py†L1-L2】."},
    ],
}


def user_repo(root: Path) -> Path:
    repo = make_repo(
        root,
        {
            "calc.py": "def add(a, b):\n    return a - b\n",
            "README.md": "calc\n",
            ".gitignore": "*.log\nbuild/\n",
        },
    )
    (repo / "logo.png").write_bytes(PNG)
    git(repo, "add", "logo.png")
    git(repo, "commit", "-qm", "logo")
    # What a user's tree holds after running and building the code once.
    (repo / "__pycache__").mkdir()
    (repo / "__pycache__" / "calc.cpython-311.pyc").write_bytes(PYC)
    (repo / ".pytest_cache" / "v").mkdir(parents=True)
    (repo / ".pytest_cache" / "v" / "lastfailed").write_text("{}\n")
    (repo / "notes.txt").write_text("untracked, not ignored\n")
    (repo / "photo.bin").write_bytes(PNG[::-1])  # untracked binary
    (repo / "debug.log").write_text("ignored\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.o").write_bytes(PYC)
    (repo / "forced.log").write_text("ignored, but force-added to the index\n")
    git(repo, "add", "-f", "forced.log")
    (repo / "README.md").write_text("calc, edited and not staged\n")
    return repo


def without(fingerprint: dict[str, str], *paths: str) -> dict[str, str]:
    return {k: v for k, v in fingerprint.items() if k not in paths}


@pytest.mark.parametrize("kind", ["overlay", "checkout"])
async def test_apply_writes_exactly_the_agents_changes(
    tmp_path: Path, replay: Any, kind: str
) -> None:
    repo = user_repo(tmp_path / "repo")
    before = tree_fingerprint(repo)
    server = replay(SCENARIO)
    env = server_env(tmp_path, server.url, "caches", ERRAND_COPIES=kind)
    client, lsp = await start_client(folder=repo, env=env)
    try:
        task_id = await delegate(client, "Fix add")
        assert await client.wait_status(task_id, {"completed", "failed"}) == "completed"
        task = (await client.command("errand.getTask", {"taskId": task_id}))["task"]
        (attempt,) = task["attempts"]
        assert attempt["workspaceKind"] == kind
        assert [f["path"] for f in attempt["files"]] == ["calc.py"], attempt["files"]

        diff = await client.command("errand.getDiff", {"taskId": task_id})
        assert "diff --git a/calc.py b/calc.py" in diff["diff"]
        assert diff["diff"].count("diff --git") == 1, diff["diff"]

        result = await client.command("errand.apply", {"taskId": task_id})
        assert result["applied"] is True, result
        assert result["files"] == ["calc.py"]
        after = tree_fingerprint(repo)
        # Everything but calc.py, .git included, is byte for byte what it was.
        assert without(after, "calc.py") == without(before, "calc.py")
        assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    finally:
        await stop_client(lsp)


async def test_a_task_that_changes_nothing_proposes_nothing(tmp_path: Path, replay: Any) -> None:
    """A copy that the agent only reads gives an empty diff, however odd the user's tree."""
    repo = user_repo(tmp_path / "repo")
    server = replay(
        {
            "name": "look",
            "turns": [
                {"tool_calls": [{"name": "shell", "arguments": {"command": "ls -aR"}}]},
                {"content": "Looked."},
            ],
        }
    )
    client, lsp = await start_client(folder=repo, env=server_env(tmp_path, server.url, "look"))
    try:
        task_id = await delegate(client, "look")
        assert await client.wait_status(task_id, {"completed", "failed"}) == "completed"
        diff = await client.command("errand.getDiff", {"taskId": task_id})
        assert diff["diff"] == "" and diff["files"] == []
    finally:
        await stop_client(lsp)
