"""The local backend's SQLite database, shared by the host and the training worker."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    name TEXT NOT NULL, version INTEGER NOT NULL, content_hash TEXT NOT NULL, rows INTEGER NOT NULL,
    columns INTEGER NOT NULL, schema_json TEXT NOT NULL, uri TEXT NOT NULL, source_uri TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (name, version), UNIQUE (name, content_hash)
);
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY, blob TEXT, model_name TEXT, state TEXT NOT NULL, reason TEXT,
    dataset_version INTEGER, run_id TEXT, details_json TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, model_name TEXT NOT NULL, dataset_name TEXT NOT NULL, dataset_version INTEGER NOT NULL,
    request_json TEXT NOT NULL, metric TEXT NOT NULL, state TEXT NOT NULL, upload_id TEXT,
    progress_json TEXT NOT NULL DEFAULT '{}', result_json TEXT NOT NULL DEFAULT '{}', error TEXT,
    event_pending INTEGER NOT NULL DEFAULT 0, worker_pid INTEGER, seq INTEGER NOT NULL,
    pipeline TEXT NOT NULL DEFAULT '', idempotency_key TEXT, cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_state ON runs (state, model_name, seq);
CREATE UNIQUE INDEX IF NOT EXISTS runs_by_idempotency_key ON runs (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS promotions (
    run_id TEXT PRIMARY KEY, state TEXT NOT NULL, decision_json TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
"""

_local = threading.local()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _migrate(connection: sqlite3.Connection) -> None:
    """Columns added after a state folder was created."""
    columns = {row[1] for row in connection.execute("PRAGMA table_info(datasets)")}
    if "guardrails_json" not in columns:
        with contextlib.suppress(sqlite3.OperationalError):  # another process added it first
            connection.execute("ALTER TABLE datasets ADD COLUMN guardrails_json TEXT NOT NULL DEFAULT '[]'")


def connect(state_dir: Path) -> sqlite3.Connection:
    """One connection per thread and folder, in WAL mode so the host and the worker can share it."""
    key = str(state_dir)
    cache: dict[str, sqlite3.Connection] = getattr(_local, "connections", {})
    _local.connections = cache
    if key not in cache:
        state_dir.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(state_dir / "state.db", timeout=30, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA busy_timeout=30000")
        connection.executescript(SCHEMA)
        _migrate(connection)
        cache[key] = connection
    return cache[key]
