"""The local Application Insights: the track API the exporter posts to, stored in SQLite, bounded.

The real azure-monitor exporter posts JSON arrays of envelopes to
``/v2.1/track``; each row here keeps one envelope with the fields people query
(type, time, operation id, name, duration, success, role) and the whole JSON.
"""

from __future__ import annotations

import gzip
import json
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

MAX_ENVELOPES = 200_000
SCHEMA = """
CREATE TABLE IF NOT EXISTS envelopes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, type TEXT NOT NULL, role TEXT,
    operation_id TEXT, parent_id TEXT, item_id TEXT, name TEXT, duration_ms REAL, success INTEGER,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS envelopes_by_operation ON envelopes (operation_id);
CREATE INDEX IF NOT EXISTS envelopes_by_type ON envelopes (type, id);
"""
_DURATION = re.compile(r"(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)")


def duration_ms(text: str | None) -> float | None:
    """Application Insights durations are ``d.hh:mm:ss.ffffff``."""
    match = _DURATION.fullmatch(text or "")
    if not match:
        return None
    days, hours, minutes, seconds = match.groups()
    return ((int(days or 0) * 24 + int(hours)) * 60 + int(minutes)) * 60_000 + float(seconds) * 1000


# How many requests a stored item stands for: 100 / its sample rate (a percentage; none means every one).
ITEM_COUNT = "100.0 / COALESCE(json_extract(body, '$.sampleRate'), 100.0)"


def weighted_percentile(items: list[tuple[float, float]], q: float) -> float:
    """The q-th percentile of (value, item count) pairs: each sampled item counts as the requests it stands for."""
    ordered = sorted(items)
    wanted = q / 100 * sum(count for _, count in ordered)
    seen = 0.0
    for value, count in ordered:
        seen += count
        if seen >= wanted:
            return value
    return ordered[-1][0]


def _short_type(name: str) -> str:
    # "Microsoft.ApplicationInsights.<ikey>.Request" and "Microsoft.ApplicationInsights.Request" alike.
    return name.rsplit(".", 1)[-1]


class TelemetryStore:
    def __init__(self, path: Path, max_envelopes: int = MAX_ENVELOPES) -> None:
        self.path = path
        self.max_envelopes = max_envelopes
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    @staticmethod
    def parse(body: bytes, encoding: str | None) -> list[dict[str, Any]]:
        if encoding == "gzip" or body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        text = body.decode("utf-8").strip()
        if text.startswith("["):
            items = json.loads(text)
        else:  # newline-delimited envelopes
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [item for item in items if isinstance(item, dict)]

    def add(self, envelopes: list[dict[str, Any]]) -> int:
        rows = []
        for envelope in envelopes:
            tags = envelope.get("tags", {})
            base = envelope.get("data", {}).get("baseData", {})
            success = base.get("success")
            rows.append((
                envelope.get("time", ""), _short_type(str(envelope.get("name", ""))), tags.get("ai.cloud.role"),
                tags.get("ai.operation.id"), tags.get("ai.operation.parentId"), base.get("id"),
                base.get("name") or base.get("message") or _event_or_metric_name(base),
                duration_ms(base.get("duration")), None if success is None else int(bool(success)),
                json.dumps(envelope),
            ))
        with self._lock:
            self._db.executemany("INSERT INTO envelopes (time, type, role, operation_id, parent_id, item_id, name, "
                                 "duration_ms, success, body) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            newest = self._db.execute("SELECT MAX(id) FROM envelopes").fetchone()[0] or 0
            self._db.execute("DELETE FROM envelopes WHERE id <= ?", (newest - self.max_envelopes,))
        return len(rows)


def _event_or_metric_name(base: dict[str, Any]) -> str | None:
    metrics = base.get("metrics")
    if isinstance(metrics, list) and metrics:
        return str(metrics[0].get("name"))
    return None
