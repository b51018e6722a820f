"""Local dataset registry: versions in SQLite, an immutable copy of each version's bytes on disk."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any, BinaryIO

from shared.local.db import connect, now
from shared.ports import DatasetRegistry, DatasetVersion
from shared.schema import Schema


def _row_to_version(row: sqlite3.Row) -> DatasetVersion:
    return DatasetVersion(row["name"], row["version"], row["content_hash"], row["rows"], row["columns"],
                          Schema.from_dict(json.loads(row["schema_json"])), row["uri"], row["source_uri"],
                          row["created_at"], tuple(json.loads(row["guardrails_json"])))


class LocalDatasetRegistry(DatasetRegistry):
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def register(self, name: str, content: BinaryIO, content_hash: str, schema: Schema, rows: int,
                 source_uri: str, guardrails: list[dict[str, Any]] | None = None,
                 baseline: dict[str, Any] | None = None) -> tuple[DatasetVersion, bool]:
        db = connect(self.state_dir)
        existing = db.execute("SELECT * FROM datasets WHERE name=? AND content_hash=?", (name, content_hash)).fetchone()
        if existing:
            return _row_to_version(existing), False
        folder = self.state_dir / "datasets" / name
        folder.mkdir(parents=True, exist_ok=True)
        staged = folder / f".{content_hash}.tmp"
        with staged.open("wb") as copy:
            shutil.copyfileobj(content, copy, 1 << 20)  # a chunk at a time, whatever the file's size
        final = folder / f"{content_hash}.csv"
        os.replace(staged, final)  # the copy is complete before any version points at it
        db.execute("BEGIN IMMEDIATE")
        try:
            again = db.execute("SELECT * FROM datasets WHERE name=? AND content_hash=?",
                               (name, content_hash)).fetchone()
            if again:
                db.execute("COMMIT")
                return _row_to_version(again), False
            version = db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM datasets WHERE name=?",
                                 (name,)).fetchone()[0]
            db.execute("INSERT INTO datasets (name, version, content_hash, rows, columns, schema_json, uri, "
                       "source_uri, created_at, guardrails_json) VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (name, version, content_hash, rows, len(schema.columns), json.dumps(schema.to_dict()),
                        final.as_uri(), source_uri, now(), json.dumps(guardrails or [])))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        registered = self.get(name, version)
        assert registered is not None
        return registered, True

    def get(self, name: str, version: int | None = None) -> DatasetVersion | None:
        db = connect(self.state_dir)
        if version is None:
            row = db.execute("SELECT * FROM datasets WHERE name=? ORDER BY version DESC LIMIT 1", (name,)).fetchone()
        else:
            row = db.execute("SELECT * FROM datasets WHERE name=? AND version=?", (name, version)).fetchone()
        return _row_to_version(row) if row else None

    def list(self, name: str | None = None) -> list[DatasetVersion]:
        db = connect(self.state_dir)
        rows = db.execute("SELECT * FROM datasets WHERE (? IS NULL OR name=?) ORDER BY name, version",
                          (name, name)).fetchall()
        return [_row_to_version(r) for r in rows]
