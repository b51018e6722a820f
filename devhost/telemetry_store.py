"""The local Application Insights: the track API the exporter posts to, stored in SQLite, bounded.

The real azure-monitor exporter posts JSON arrays of envelopes to
``/v2.1/track``; each row here keeps one envelope with the fields people query
(type, time, operation id, name, duration, success, role) and the whole JSON.
An envelope is whatever its sender wrote: one that is no object, has no time with
a zone, or is larger than the service takes, is refused, and the queried fields are
cut to a sane length.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

MAX_ENVELOPES = 200_000
MAX_ENVELOPE_CHARS = 64 * 1024  # Application Insights' own limit on one telemetry item
MAX_FIELD_CHARS = 1024  # a name, an id, a role: the fields the readers query and print
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


def duration_ms(text: object) -> float | None:
    """Application Insights durations are ``d.hh:mm:ss.ffffff``."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
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


class Ingested(NamedTuple):
    accepted: int
    refused: list[tuple[int, str]]  # (index in the batch, why)


Row = tuple[str, str, str | None, str | None, str | None, str | None, str | None, float | None, int | None, str]


def _field(value: object) -> str | None:
    return None if value is None else str(value)[:MAX_FIELD_CHARS]


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _zoned_time(value: object) -> bool:
    try:
        return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _sample_rate(value: object) -> bool:
    """A share in percent, as the readers divide by it: a number in (0, 100]."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 100


def row_of(envelope: object) -> Row | str:
    """The stored row of one envelope, or why it is refused."""
    if not isinstance(envelope, dict):
        return "an envelope is a JSON object"
    if not _zoned_time(envelope.get("time")):
        return "time is not an ISO 8601 time with a zone"
    if "sampleRate" in envelope and not _sample_rate(envelope["sampleRate"]):
        return "sampleRate is not a percentage"
    try:
        body = json.dumps(envelope, allow_nan=False)
    except (ValueError, RecursionError):
        return "the envelope holds a number JSON has not, or nests too deep"
    if len(body) > MAX_ENVELOPE_CHARS:
        return f"the envelope is larger than {MAX_ENVELOPE_CHARS:,} characters"
    tags = _object(envelope.get("tags"))
    base = _object(_object(envelope.get("data")).get("baseData"))
    success = base.get("success")
    kind = _field(_short_type(str(envelope.get("name", "")))) or ""
    return (envelope["time"], kind, _field(tags.get("ai.cloud.role")), _field(tags.get("ai.operation.id")),
            _field(tags.get("ai.operation.parentId")), _field(base.get("id")),
            _field(base.get("name") or base.get("message") or _event_or_metric_name(base)),
            duration_ms(base.get("duration")), None if success is None else int(bool(success)), body)


class TelemetryStore:
    def __init__(self, path: Path, max_envelopes: int = MAX_ENVELOPES) -> None:
        self.path = path
        self.max_envelopes = max_envelopes
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))  # the host's user's alone (SQLite's WAL follows)
        os.chmod(path, 0o600)  # a store left by an earlier version keeps no wider mode
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def add(self, envelopes: list[Any]) -> Ingested:
        rows: list[Row] = []
        refused: list[tuple[int, str]] = []
        for index, envelope in enumerate(envelopes):
            row = row_of(envelope)
            if isinstance(row, str):
                refused.append((index, row))
            else:
                rows.append(row)
        with self._lock:
            self._db.executemany("INSERT INTO envelopes (time, type, role, operation_id, parent_id, item_id, name, "
                                 "duration_ms, success, body) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            newest = self._db.execute("SELECT MAX(id) FROM envelopes").fetchone()[0] or 0
            self._db.execute("DELETE FROM envelopes WHERE id <= ?", (newest - self.max_envelopes,))
        return Ingested(len(rows), refused)


def _event_or_metric_name(base: dict[str, Any]) -> str | None:
    metrics = base.get("metrics")
    if isinstance(metrics, list) and metrics and isinstance(metrics[0], dict):
        return str(metrics[0].get("name"))
    return None
