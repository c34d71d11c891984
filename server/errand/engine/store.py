"""Durable task store: SQLite in WAL mode under errand's data folder.

It holds tasks, attempts (with their diff and conversation), the log of events sent
to clients, and the recorded output of every command. The store is synchronous and
is used from one worker thread (see :class:`errand.engine.engine.TaskEngine`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from errand.wire.protocol import Attempt, Task, TaskLog

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id     TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL,
    body        BLOB NOT NULL,
    snapshot    BLOB
);
CREATE TABLE IF NOT EXISTS attempts (
    task_id      TEXT NOT NULL REFERENCES tasks(task_id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    body         BLOB NOT NULL,
    result_tree  TEXT,
    diff         TEXT,
    conversation BLOB,
    copy         BLOB,
    chunk_seq    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, attempt)
);
CREATE TABLE IF NOT EXISTS logs (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id  TEXT NOT NULL REFERENCES tasks(task_id) ON DELETE CASCADE,
    attempt  INTEGER NOT NULL,
    ts       REAL NOT NULL,
    body     BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_by_task ON logs(task_id, attempt, id);
CREATE TABLE IF NOT EXISTS chunks (
    task_id     TEXT NOT NULL REFERENCES tasks(task_id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    chunk_id    TEXT NOT NULL,
    command     TEXT NOT NULL,
    exit_code   INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    timed_out   INTEGER NOT NULL,
    started_at  REAL NOT NULL,
    output      TEXT NOT NULL,
    PRIMARY KEY (task_id, attempt, chunk_id)
);
"""


class SnapshotRow(msgspec.Struct, rename="camel"):
    repo_root: str
    mirror: str
    commit: str
    tree: str
    head: str | None
    subdir: str


class CopyRow(msgspec.Struct, rename="camel"):
    path: str
    index: str
    kind: str


@dataclass(slots=True)
class StoredAttempt:
    attempt: Attempt
    result_tree: str | None
    copy: CopyRow | None
    chunk_seq: int


@dataclass(slots=True)
class StoredTask:
    task: Task
    snapshot: SnapshotRow | None
    attempts: list[StoredAttempt]


@dataclass(frozen=True, slots=True)
class ChunkRow:
    chunk_id: str
    command: str
    exit_code: int
    duration_ms: int
    timed_out: bool
    started_at: float
    output: str


_encoder = msgspec.json.Encoder()


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    # --- writes --------------------------------------------------------------------

    def save_task(self, task: Task, snapshot: SnapshotRow | None) -> None:
        header = msgspec.structs.replace(task, attempts=[])
        self._db.execute(
            "INSERT INTO tasks(task_id, created_at, body, snapshot) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(task_id) DO UPDATE SET body=excluded.body, "
            "snapshot=COALESCE(excluded.snapshot, tasks.snapshot)",
            (
                task.task_id,
                task.created_at,
                _encoder.encode(header),
                _encoder.encode(snapshot) if snapshot else None,
            ),
        )

    def save_attempt(
        self,
        task_id: str,
        attempt: Attempt,
        *,
        result_tree: str | None = None,
        diff: str | None = None,
        conversation: bytes | None = None,
        copy: CopyRow | None = None,
        chunk_seq: int | None = None,
    ) -> None:
        """Upsert an attempt. ``None`` keeps the stored value of optional columns."""
        self._db.execute(
            "INSERT INTO attempts(task_id, attempt, body, result_tree, diff, conversation, copy,"
            " chunk_seq) VALUES (?, ?, ?, ?, ?, ?, ?, COALESCE(?, 0)) "
            "ON CONFLICT(task_id, attempt) DO UPDATE SET body=excluded.body, "
            "result_tree=COALESCE(excluded.result_tree, attempts.result_tree), "
            "diff=COALESCE(excluded.diff, attempts.diff), "
            "conversation=COALESCE(excluded.conversation, attempts.conversation), "
            "copy=COALESCE(excluded.copy, attempts.copy), "
            "chunk_seq=COALESCE(?, attempts.chunk_seq)",
            (
                task_id,
                attempt.attempt,
                _encoder.encode(attempt),
                result_tree,
                diff,
                conversation,
                _encoder.encode(copy) if copy else None,
                chunk_seq,
                chunk_seq,
            ),
        )

    def forget_copy(self, task_id: str, attempt: int) -> None:
        self._db.execute(
            "UPDATE attempts SET copy=NULL WHERE task_id=? AND attempt=?", (task_id, attempt)
        )

    def append_logs(self, logs: Iterable[TaskLog]) -> None:
        now = time.time()
        rows = [(log.task_id, log.attempt, now, _encoder.encode(log)) for log in logs]
        with self._db:
            self._db.executemany(
                "INSERT INTO logs(task_id, attempt, ts, body) VALUES (?, ?, ?, ?)", rows
            )

    def save_chunk(self, task_id: str, attempt: int, chunk: ChunkRow) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                task_id,
                attempt,
                chunk.chunk_id,
                chunk.command,
                chunk.exit_code,
                chunk.duration_ms,
                int(chunk.timed_out),
                chunk.started_at,
                chunk.output,
            ),
        )

    def delete_task(self, task_id: str) -> None:
        with self._db:
            self._db.execute("DELETE FROM tasks WHERE task_id=?", (task_id,))

    # --- reads ---------------------------------------------------------------------

    def load_tasks(self) -> list[StoredTask]:
        tasks: dict[str, StoredTask] = {}
        for task_id, body, snapshot in self._db.execute(
            "SELECT task_id, body, snapshot FROM tasks ORDER BY created_at, task_id"
        ):
            tasks[task_id] = StoredTask(
                task=msgspec.json.decode(body, type=Task),
                snapshot=msgspec.json.decode(snapshot, type=SnapshotRow) if snapshot else None,
                attempts=[],
            )
        for task_id, body, result_tree, copy, chunk_seq in self._db.execute(
            "SELECT task_id, body, result_tree, copy, chunk_seq FROM attempts "
            "ORDER BY task_id, attempt"
        ):
            if task_id in tasks:
                tasks[task_id].attempts.append(
                    StoredAttempt(
                        attempt=msgspec.json.decode(body, type=Attempt),
                        result_tree=result_tree,
                        copy=msgspec.json.decode(copy, type=CopyRow) if copy else None,
                        chunk_seq=chunk_seq,
                    )
                )
        return list(tasks.values())

    def load_diff(self, task_id: str, attempt: int) -> str | None:
        row = self._db.execute(
            "SELECT diff FROM attempts WHERE task_id=? AND attempt=?", (task_id, attempt)
        ).fetchone()
        return row[0] if row else None

    def load_conversation(self, task_id: str, attempt: int) -> bytes | None:
        row = self._db.execute(
            "SELECT conversation FROM attempts WHERE task_id=? AND attempt=?", (task_id, attempt)
        ).fetchone()
        return row[0] if row else None

    def load_chunks(self, task_id: str, attempt: int) -> list[ChunkRow]:
        return [
            ChunkRow(cid, cmd, code, ms, bool(to), started, out)
            for cid, cmd, code, ms, to, started, out in self._db.execute(
                "SELECT chunk_id, command, exit_code, duration_ms, timed_out, started_at, output"
                " FROM chunks WHERE task_id=? AND attempt=? ORDER BY started_at",
                (task_id, attempt),
            )
        ]

    def load_logs(self, task_id: str, attempt: int | None = None) -> list[TaskLog]:
        query = "SELECT body FROM logs WHERE task_id=?"
        args: tuple[object, ...] = (task_id,)
        if attempt is not None:
            query += " AND attempt=?"
            args = (task_id, attempt)
        return [
            msgspec.json.decode(body, type=TaskLog)
            for (body,) in self._db.execute(query + " ORDER BY id", args)
        ]
