"""Local upload log in SQLite."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

from shared.local.db import connect, now
from shared.ports import UploadLog
from shared.printable import printable
from shared.upload_states import UploadChange, may_move

log = logging.getLogger(__name__)

COLUMNS = ("blob", "model_name", "state", "reason", "dataset_version", "run_id")


def _as_dict(row: sqlite3.Row) -> dict[str, Any]:
    record = {k: row[k] for k in ("upload_id", *COLUMNS, "created_at", "updated_at")}
    record["details"] = json.loads(row["details_json"])
    return record


class LocalUploadLog(UploadLog):
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def update(self, upload_id: str, change: UploadChange) -> bool:
        fields = change.columns()
        unknown = set(fields) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown upload fields: {sorted(unknown)}")
        db = connect(self.state_dir)
        stamp = now()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT state, details_json FROM uploads WHERE upload_id=?", (upload_id,)).fetchone()
            if change.state and not may_move(row["state"] if row else None, change.state):
                db.execute("ROLLBACK")
                log.warning("Upload %s stays %s: %s would move it back", printable(upload_id), row["state"],
                            change.state)
                return False
            details = json.loads(row["details_json"]) if row else {}
            details.update(change.details or {})
            if row is None:
                db.execute("INSERT INTO uploads (upload_id, state, created_at, updated_at) VALUES (?,?,?,?)",
                           (upload_id, fields.get("state", "received"), stamp, stamp))
            assignments = ", ".join(f"{k}=?" for k in fields)
            db.execute(f"UPDATE uploads SET {assignments}{', ' if fields else ''}details_json=?, updated_at=? "  # noqa: S608 - column names are checked above
                       "WHERE upload_id=?", (*fields.values(), json.dumps(details), stamp, upload_id))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return True

    def get(self, upload_id: str) -> dict[str, Any] | None:
        row = connect(self.state_dir).execute("SELECT * FROM uploads WHERE upload_id=?", (upload_id,)).fetchone()
        return _as_dict(row) if row else None

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = connect(self.state_dir).execute("SELECT * FROM uploads ORDER BY created_at DESC LIMIT ?",
                                               (limit,)).fetchall()
        return [_as_dict(r) for r in rows]
