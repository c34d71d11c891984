"""Bring a store written by an older errand up to the current schema, in place.

Schema 0 (errand before store versions) kept the wire ``Task`` as a task's body, with
its snapshot in a column of its own, and the result tree, copy and chunk counter of an
attempt in columns beside the wire ``Attempt``. Schema 1 keeps one versioned record
per row (see :mod:`errand.engine.records`); derived fields are no longer stored.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from errand.engine.records import AttemptRecord, TaskRecord
from errand.hosts.base import HostRef
from errand.wire.protocol import Attempt
from errand.workspace.snapshot import Snapshot

Encode = Callable[[object], bytes]
FOLLOW_UP = "\n\nFollow-up: "
"""How schema 0 joined a task's follow-up prompts to its prompt."""
SNAPSHOT_PROBLEM = "could not snapshot the workspace: "


def has_tables(db: sqlite3.Connection) -> bool:
    row = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='tasks'").fetchone()
    return row is not None


def migrate(db: sqlite3.Connection, version: int, encode: Encode) -> None:
    if version == 0:
        _from_0(db, encode)


def columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _from_0(db: sqlite3.Connection, encode: Encode) -> None:
    if "snapshot" in columns(db, "tasks"):
        rows = db.execute("SELECT task_id, body, snapshot FROM tasks").fetchall()
        for task_id, body, snapshot in rows:
            task = task_record(msgspec.json.decode(body), snapshot)
            db.execute("UPDATE tasks SET body=? WHERE task_id=?", (encode(task), task_id))
        db.execute("ALTER TABLE tasks DROP COLUMN snapshot")
    if "copy" in columns(db, "attempts"):
        query = "SELECT task_id, attempt, body, result_tree, copy FROM attempts"
        for task_id, attempt, body, tree, copy in db.execute(query).fetchall():
            db.execute(
                "UPDATE attempts SET body=? WHERE task_id=? AND attempt=?",
                (encode(attempt_record(body, tree, copy)), task_id, attempt),
            )
        for column in ("result_tree", "copy", "chunk_seq"):
            db.execute(f"ALTER TABLE attempts DROP COLUMN {column}")


def task_record(task: dict[str, Any], snapshot: bytes | None) -> TaskRecord:
    reason = task.get("reason") or ""
    return TaskRecord(
        task_id=task["taskId"],
        title=task["title"],
        mode=task["mode"],
        created_at=task["createdAt"],
        updated_at=task["updatedAt"],
        prompts=str(task.get("prompt", "")).split(FOLLOW_UP),
        attempt_count=task["attemptCount"],
        repository=task.get("repository"),
        snapshot=_snapshot(msgspec.json.decode(snapshot)) if snapshot else None,
        problem=reason if reason.startswith(SNAPSHOT_PROBLEM) else None,
        applied=bool(task.get("applied")),
    )


def _snapshot(row: dict[str, Any]) -> Snapshot:
    return Snapshot(
        Path(row["repoRoot"]),
        Path(row["mirror"]),
        row["commit"],
        row["tree"],
        row.get("head"),
        row.get("subdir", ""),
    )


def attempt_record(body: bytes, result_tree: str | None, copy: bytes | None) -> AttemptRecord:
    host = None
    if copy:
        row = msgspec.json.decode(copy)
        host = HostRef(kind="local", path=row["path"], index=row["index"], copy_kind=row["kind"])
    info = msgspec.json.decode(body, type=Attempt)
    return AttemptRecord(info=info, result_tree=result_tree, host=host)


def read_legacy(db: sqlite3.Connection) -> list[tuple[TaskRecord, list[AttemptRecord]]]:
    """The tasks of a schema 0 store, converted as they are read (the store is read-only)."""
    tasks: dict[str, tuple[TaskRecord, list[AttemptRecord]]] = {}
    for task_id, body, snapshot in db.execute(
        "SELECT task_id, body, snapshot FROM tasks ORDER BY created_at, task_id"
    ):
        tasks[task_id] = (task_record(msgspec.json.decode(body), snapshot), [])
    for task_id, body, tree, copy in db.execute(
        "SELECT task_id, body, result_tree, copy FROM attempts ORDER BY task_id, attempt"
    ):
        if task_id in tasks:
            tasks[task_id][1].append(attempt_record(body, tree, copy))
    return list(tasks.values())
