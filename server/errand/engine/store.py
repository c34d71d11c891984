"""Durable task store: SQLite in WAL mode under errand's data folder.

It holds tasks and attempts (their records, each attempt's diff and conversation), the
log of events sent to clients, and the recorded output of every command. The store is
synchronous and is used from one worker thread (see :class:`errand.engine.journal.Journal`).

The schema's version is SQLite's ``user_version``; a store written by an older errand
is migrated when it is opened, and one written by a newer errand is refused.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from errand.agent.tools import CommandRecord
from errand.engine import migrations
from errand.engine.records import AttemptRecord, TaskRecord
from errand.wire.protocol import TaskLog

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id     TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL,
    body        BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    task_id      TEXT NOT NULL REFERENCES tasks(task_id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    body         BLOB NOT NULL,
    diff         TEXT,
    conversation BLOB,
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


class StoreError(RuntimeError):
    """The store can't be used (written by a newer errand, say); the message says why."""


def _encode_extra(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise NotImplementedError(f"can't store {type(value).__name__}")


def _decode_extra(kind: type, value: Any) -> Any:
    if kind is Path:
        return Path(value)
    raise NotImplementedError(f"can't load {kind.__name__}")


_encoder = msgspec.json.Encoder(enc_hook=_encode_extra)
_tasks = msgspec.json.Decoder(TaskRecord, dec_hook=_decode_extra)
_attempts = msgspec.json.Decoder(AttemptRecord, dec_hook=_decode_extra)
_logs = msgspec.json.Decoder(TaskLog)


@dataclass(slots=True)
class StoredTask:
    record: TaskRecord
    attempts: list[AttemptRecord]


class Store:
    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self._legacy = False
        """A read-only store still at schema 0: its rows are converted as they are read."""
        if read_only:
            uri = f"{path.absolute().as_uri()}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._db.execute("PRAGMA query_only=ON")
            version = self._version()
            self._check_version(version)
            self._legacy = version == 0 and "snapshot" in migrations.columns(self._db, "tasks")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._open_schema()

    def _version(self) -> int:
        version: int = self._db.execute("PRAGMA user_version").fetchone()[0]
        return version

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer errand (store schema {version}; this "
                f"errand reads up to {SCHEMA_VERSION}); upgrade errand or use another "
                "ERRAND_DATA_DIR"
            )

    def _open_schema(self) -> None:
        version = self._version()
        self._check_version(version)
        if version < SCHEMA_VERSION and migrations.has_tables(self._db):
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                migrations.migrate(self._db, version, self.encode)
        self._db.executescript(SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @staticmethod
    def encode(value: object) -> bytes:
        return _encoder.encode(value)

    def close(self) -> None:
        self._db.close()

    # --- writes --------------------------------------------------------------------

    def save_task(self, record: TaskRecord) -> None:
        self._db.execute(
            "INSERT INTO tasks(task_id, created_at, body) VALUES (?, ?, ?) "
            "ON CONFLICT(task_id) DO UPDATE SET body=excluded.body",
            (record.task_id, record.created_at, _encoder.encode(record)),
        )

    def save_attempt(
        self,
        task_id: str,
        record: AttemptRecord,
        *,
        diff: str | None = None,
        conversation: bytes | None = None,
    ) -> None:
        """Upsert an attempt. ``None`` keeps the stored diff and conversation."""
        self._db.execute(
            "INSERT INTO attempts(task_id, attempt, body, diff, conversation) "
            "VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(task_id, attempt) DO UPDATE SET body=excluded.body, "
            "diff=COALESCE(excluded.diff, attempts.diff), "
            "conversation=COALESCE(excluded.conversation, attempts.conversation)",
            (task_id, record.info.attempt, _encoder.encode(record), diff, conversation),
        )

    def append_logs(self, logs: Iterable[TaskLog]) -> None:
        now = time.time()
        rows = [(log.task_id, log.attempt, now, _encoder.encode(log)) for log in logs]
        with self._db:
            self._db.executemany(
                "INSERT INTO logs(task_id, attempt, ts, body) VALUES (?, ?, ?, ?)", rows
            )

    def save_chunk(self, task_id: str, attempt: int, chunk: CommandRecord) -> None:
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
        if self._legacy:
            return [StoredTask(t, a) for t, a in migrations.read_legacy(self._db)]
        tasks: dict[str, StoredTask] = {}
        for task_id, body in self._db.execute(
            "SELECT task_id, body FROM tasks ORDER BY created_at, task_id"
        ):
            tasks[task_id] = StoredTask(_tasks.decode(body), [])
        for task_id, body in self._db.execute(
            "SELECT task_id, body FROM attempts ORDER BY task_id, attempt"
        ):
            if task_id in tasks:
                tasks[task_id].attempts.append(_attempts.decode(body))
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

    def load_chunks(self, task_id: str, attempt: int) -> list[CommandRecord]:
        return [
            CommandRecord(cid, cmd, code, ms, out, bool(to), started)
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
        return [_logs.decode(body) for (body,) in self._db.execute(query + " ORDER BY id", args)]
