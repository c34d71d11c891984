"""The store: versioned records, a store from an older errand migrated in place, one from
a newer errand refused, and read-only opening that changes nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from errand.agent.tools import CommandRecord
from errand.engine.records import AttemptRecord, TaskRecord
from errand.engine.store import SCHEMA_VERSION, Store, StoreError
from errand.hosts.base import HostRef
from errand.wire.protocol import Attempt
from errand.workspace.snapshot import Snapshot

# The tables as errand wrote them before stores had a version (schema 0).
SCHEMA_0 = """
CREATE TABLE tasks (task_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, body BLOB NOT NULL,
    snapshot BLOB);
CREATE TABLE attempts (task_id TEXT NOT NULL REFERENCES tasks(task_id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL, body BLOB NOT NULL, result_tree TEXT, diff TEXT,
    conversation BLOB, copy BLOB, chunk_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, attempt));
CREATE TABLE logs (id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL REFERENCES
    tasks(task_id) ON DELETE CASCADE, attempt INTEGER NOT NULL, ts REAL NOT NULL,
    body BLOB NOT NULL);
CREATE TABLE chunks (task_id TEXT NOT NULL REFERENCES tasks(task_id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL, chunk_id TEXT NOT NULL, command TEXT NOT NULL,
    exit_code INTEGER NOT NULL, duration_ms INTEGER NOT NULL, timed_out INTEGER NOT NULL,
    started_at REAL NOT NULL, output TEXT NOT NULL, PRIMARY KEY (task_id, attempt, chunk_id));
"""

OLD_TASK = {
    "taskId": "ab12cd34",
    "title": "fix add",
    "mode": "code",
    "status": "completed",
    "createdAt": "2026-11-20T10:00:00.000Z",
    "updatedAt": "2026-11-20T10:05:00.000Z",
    "attemptCount": 1,
    "diffStat": {"files": 1, "added": 1, "removed": 1},
    "reason": None,
    "repository": "/home/u/calc",
    "checksPassed": 1,
    "checksFailed": 0,
    "applied": True,
    "prompt": "fix add\n\nFollow-up: also a test",
    "attempts": [],
}
OLD_SNAPSHOT = {
    "repoRoot": "/home/u/calc",
    "mirror": "/data/repos/calc-0123.git",
    "commit": "c" * 40,
    "tree": "t" * 40,
    "head": "h" * 40,
    "subdir": "",
}
OLD_ATTEMPT = {"attempt": 1, "status": "completed", "report": "Fixed it.", "steps": 3}
OLD_COPY = {"path": "/data/copies/ab12cd34-1", "index": "/data/copies/ab12cd34-1.index",
            "kind": "overlay"}  # fmt: skip


def old_store(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_0)
    db.execute(
        "INSERT INTO tasks VALUES (?, ?, ?, ?)",
        ("ab12cd34", OLD_TASK["createdAt"], json.dumps(OLD_TASK), json.dumps(OLD_SNAPSHOT)),
    )
    db.execute(
        "INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ("ab12cd34", 1, json.dumps(OLD_ATTEMPT), "r" * 40, "diff --git a/x b/x\n", None,
         json.dumps(OLD_COPY), 2),
    )  # fmt: skip
    db.execute(
        "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("ab12cd34", 1, "c1-1", "pytest", 0, 10, 0, 1.0, "1 passed\n"),
    )
    db.commit()
    db.close()


def test_a_store_from_an_older_errand_is_migrated_without_losing_anything(
    tmp_path: Path,
) -> None:
    path = tmp_path / "errand.db"
    old_store(path)
    store = Store(path)
    (stored,) = store.load_tasks()
    record = stored.record
    assert record.task_id == "ab12cd34" and record.title == "fix add"
    assert record.prompts == ["fix add", "also a test"]
    assert record.applied is True and record.problem is None
    assert record.snapshot == Snapshot(
        Path("/home/u/calc"), Path("/data/repos/calc-0123.git"), "c" * 40, "t" * 40, "h" * 40, ""
    )
    (attempt,) = stored.attempts
    assert attempt.info.report == "Fixed it." and attempt.info.steps == 3
    assert attempt.result_tree == "r" * 40
    assert attempt.host == HostRef(
        kind="local", path=OLD_COPY["path"], index=OLD_COPY["index"], copy_kind="overlay"
    )
    assert store.load_diff("ab12cd34", 1) == "diff --git a/x b/x\n"
    assert [c.command for c in store.load_chunks("ab12cd34", 1)] == ["pytest"]
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert "snapshot" not in {row[1] for row in db.execute("PRAGMA table_info(tasks)")}
    db.close()
    # Opening it again changes nothing more.
    again = Store(path)
    assert again.load_tasks()[0].record == record
    again.close()


def test_records_round_trip_with_their_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "errand.db")
    snapshot = Snapshot(Path("/r"), Path("/m.git"), "c", "t", None, "sub")
    record = TaskRecord(
        task_id="t1",
        title="t",
        mode="ask",
        created_at="x",
        updated_at="y",
        prompts=["p"],
        attempt_count=1,
        snapshot=snapshot,
    )
    store.save_task(record)
    info = Attempt(attempt=1, status="running")
    store.save_attempt("t1", AttemptRecord(info=info), diff=None, conversation=b"[]")
    store.save_chunk("t1", 1, CommandRecord("c1-1", "ls", 0, 1, "a\n", False, 2.0))
    (stored,) = store.load_tasks()
    assert stored.record == record and stored.record.v == 1
    assert stored.attempts == [AttemptRecord(info=info)]
    assert store.load_conversation("t1", 1) == b"[]"
    store.close()


def test_a_store_from_a_newer_errand_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "errand.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match=r"written by a newer errand.*ERRAND_DATA_DIR"):
        Store(path)
    with pytest.raises(StoreError, match="written by a newer errand"):
        Store(path, read_only=True)


def test_read_only_opening_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "errand.db"
    old_store(path)
    before = path.read_bytes()
    store = Store(path, read_only=True)
    (stored,) = store.load_tasks()  # converted as read: the file stays at schema 0
    assert stored.record.prompts == ["fix add", "also a test"]
    assert stored.attempts[0].result_tree == "r" * 40
    with pytest.raises(sqlite3.OperationalError):
        store.delete_task("ab12cd34")
    store.close()
    assert path.read_bytes() == before
