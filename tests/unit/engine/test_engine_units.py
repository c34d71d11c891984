"""Pure pieces of the engine: settings, check recognition, status, log batching, apply plans."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from errand.agent.evidence.checks import is_check
from errand.config.settings import Settings
from errand.engine.logbatch import LogBatcher
from errand.engine.state import aggregate_status, make_title
from errand.wire.changes import FileChange
from errand.wire.protocol import TaskLog
from errand.workspace.apply import ApplyRefused, CurrentFile, conflict_lines, plan_apply


def test_settings_from_env_and_bad_values_keep_defaults() -> None:
    settings, problems = Settings.from_env(
        {"ERRAND_MODEL": "m", "ERRAND_API": "chat", "ERRAND_MAX_PARALLEL": "lots"}
    )
    assert settings.model == "m" and settings.api == "chat"
    assert settings.max_parallel == Settings().max_parallel
    assert problems and "max_parallel must be a whole number" in problems[0]
    settings, problems = settings.with_init_options({"sandbox": "vm", "maxParallel": 3})
    # Each bad value is refused with a reason; the good ones apply.
    assert problems == [
        "initializationOptions: sandbox must be one of bwrap, docker, none, not 'vm'; "
        "keeping 'bwrap'"
    ]
    assert settings.sandbox == "bwrap" and settings.max_parallel == 3
    _, problems = settings.with_init_options({"colour": "red", "maxSteps": "x"})
    assert problems[-1] == "initializationOptions: unknown option(s) colour"
    assert "max_steps must be a whole number" in problems[0]
    settings, problems = settings.with_init_options({"maxParallel": 2, "api": "responses"})
    assert problems == [] and settings.max_parallel == 2 and settings.api == "responses"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("pytest -q", True),
        ("python -m pytest tests/test_x.py", True),
        ("python3 -m unittest -v", True),
        ("cd app && npm test", True),
        ("uv run pytest", True),
        ("FOO=1 cargo test --all", True),
        ("go test ./...", True),
        ("make check", True),
        ("ruff check .", True),
        ("npx tsc --noEmit", True),
        ("cat pytest.ini", False),
        ("ls tests", False),
        ("echo pytest", False),
        ("git status", False),
    ],
)
def test_check_recognition(command: str, expected: bool) -> None:
    assert is_check(command) is expected


def test_check_recognition_with_configured_commands() -> None:
    assert is_check("./scripts/verify.sh --fast", extra=["./scripts/verify.sh"])


def test_aggregate_status_and_title() -> None:
    assert aggregate_status(["completed", "running"]) == "running"
    assert aggregate_status(["failed", "completed"]) == "completed"
    assert aggregate_status(["failed", "cancelled"]) == "cancelled"
    assert aggregate_status(["failed"]) == "failed"
    assert make_title("\n  fix the flaky test\nmore") == "fix the flaky test"
    assert len(make_title("x" * 200)) == 72


def test_log_batcher_coalesces_output_and_keeps_order() -> None:
    batches: list[list[TaskLog]] = []

    async def scenario() -> None:
        batcher = LogBatcher(batches.append, interval=0.005)
        for i in range(100):
            batcher.add(
                TaskLog(task_id="t", attempt=1, kind="output", chunk_id="c1", text=f"{i}\n")
            )
        batcher.add(TaskLog(task_id="t", attempt=1, kind="commandFinished", chunk_id="c1"))
        await asyncio.sleep(0.02)

    asyncio.run(scenario())
    flat = [entry for batch in batches for entry in batch]
    assert [e.kind for e in flat] == ["output", "commandFinished"]
    assert flat[0].text == "".join(f"{i}\n" for i in range(100))


def _current(files: dict[str, str]) -> Callable[[str], CurrentFile]:
    def current(rel: str) -> CurrentFile:
        return CurrentFile(True, files[rel]) if rel in files else CurrentFile(False)

    return current


def no_blob(path: str) -> bytes | None:
    return None


def test_apply_plan_merges_non_overlapping_user_edits(tmp_path: Path) -> None:
    base = "".join(f"line {i}\n" for i in range(1, 11))
    ours = base.replace("line 2\n", "line two\n")
    theirs = base.replace("line 9\n", "line nine (user)\n")
    change = FileChange(path="f.txt", change="modified", base_text=base, new_text=ours)
    plan = plan_apply(tmp_path, [change], [], None, _current({"f.txt": theirs}), no_blob, no_blob)
    assert plan.conflicts == [] and plan.merged == ["f.txt"]
    (merged,) = plan.changes
    assert merged.base_text == theirs
    assert merged.new_text == theirs.replace("line 2\n", "line two\n")


def test_apply_plan_refuses_stale_files_and_unknown_selections(tmp_path: Path) -> None:
    changes = [
        FileChange(path="a.txt", change="modified", base_text="a\n", new_text="A\n"),
        FileChange(path="b.txt", change="added", new_text="b\n"),
        FileChange(
            path="n.txt", change="renamed", old_path="o.txt", base_text="o\n", new_text="o\n"
        ),
    ]
    plan = plan_apply(
        tmp_path,
        changes,
        [],
        None,
        _current({"a.txt": "a\n", "o.txt": "o\n"}),
        no_blob,
        no_blob,
    )
    assert plan.conflicts == [] and [c.path for c in plan.changes] == ["a.txt", "b.txt", "n.txt"]
    plan = plan_apply(
        tmp_path,
        changes,
        [],
        None,
        _current({"a.txt": "edited\n", "o.txt": "o\n", "n.txt": "x"}),
        no_blob,
        no_blob,
    )
    assert conflict_lines(plan) == [
        "a.txt: changed in the workspace since the task started, "
        "and the changes overlap (three-way merge conflict)",
        "n.txt: rename target already exists in the workspace",
    ]
    assert [c.path for c in plan.conflicts] == ["a.txt", "n.txt"]
    with pytest.raises(ApplyRefused, match="not changed by this attempt: zzz"):
        plan_apply(tmp_path, changes, [], ["zzz"], _current({}), no_blob, no_blob)
