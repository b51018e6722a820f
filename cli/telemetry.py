"""``python -m cli telemetry``: read the local Application Insights store (the host's telemetry.db).

tail       the newest envelopes, following new ones with --follow
requests   count, p50/p95/p99 duration and failure rate per operation name
events     custom events with their properties
exceptions exceptions with their messages
trace ID   one operation as a tree with durations ("what happened to my file?")
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from cli.output import echo, fail
from devhost.telemetry_store import ITEM_COUNT, weighted_percentile


def connect(path: Path) -> sqlite3.Connection:
    if not path.exists():
        fail(f"no telemetry store at {path}: start the host (make up) and use it first")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    return db


def _line(row: sqlite3.Row) -> str:
    duration = f" {row['duration_ms']:.1f}ms" if row["duration_ms"] is not None else ""
    outcome = "" if row["success"] is None else (" ok" if row["success"] else " FAILED")
    return f"{row['time'][:23]} {row['type']:<16} {row['role'] or '':<16} {row['name'] or ''}{duration}{outcome}"


def tail(db: sqlite3.Connection, limit: int, follow: bool) -> None:
    rows = db.execute("SELECT * FROM envelopes WHERE type <> 'Metric' ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    last = rows[0]["id"] if rows else 0
    for row in reversed(rows):
        echo(_line(row))
    while follow:
        time.sleep(1)
        for row in db.execute("SELECT * FROM envelopes WHERE id > ? AND type <> 'Metric' ORDER BY id", (last,)):
            echo(_line(row))
            last = row["id"]


def requests_summary(db: sqlite3.Connection) -> None:
    """Counts are the requests the sampled items stand for; percentiles weigh each item by that count."""
    by_name: dict[str, list[sqlite3.Row]] = {}
    query = f"SELECT name, duration_ms, success, {ITEM_COUNT} AS items FROM envelopes WHERE type='Request'"  # noqa: S608 (constants only)
    for row in db.execute(query):
        by_name.setdefault(row["name"], []).append(row)
    echo(f"{'operation':<32} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'failed':>7}")
    for name, rows in sorted(by_name.items()):
        durations = [(r["duration_ms"] or 0.0, r["items"]) for r in rows]
        count = sum(r["items"] for r in rows)
        failed = sum(r["items"] for r in rows if r["success"] == 0) / count
        echo(f"{name:<32} {round(count):>6} {weighted_percentile(durations, 50):>8.1f} "
              f"{weighted_percentile(durations, 95):>8.1f} {weighted_percentile(durations, 99):>8.1f} {failed:>7.1%}")


def events(db: sqlite3.Connection, limit: int) -> None:
    rows = db.execute("SELECT * FROM envelopes WHERE type='Event' ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    for row in reversed(rows):
        props = json.loads(row["body"])["data"]["baseData"].get("properties", {})
        props.pop("logger_name", None)
        details = " ".join(f"{k}={v}" for k, v in props.items())
        echo(f"{row['time'][:19]} {row['name']:<20} op={row['operation_id']} {details}")


def exceptions(db: sqlite3.Connection, limit: int) -> None:
    rows = db.execute("SELECT * FROM envelopes WHERE type='Exception' ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    for row in reversed(rows):
        details = json.loads(row["body"])["data"]["baseData"].get("exceptions", [{}])[0]
        echo(f"{row['time'][:19]} {row['role']} op={row['operation_id']} {details.get('typeName')}: "
              f"{details.get('message')}")


def trace(db: sqlite3.Connection, operation_id: str) -> None:
    rows = db.execute("SELECT * FROM envelopes WHERE operation_id=? AND type IN "
                      "('Request','RemoteDependency','Event','Exception') ORDER BY time", (operation_id,)).fetchall()
    if not rows:
        fail(f"no telemetry for operation {operation_id}")
    children: dict[str | None, list[sqlite3.Row]] = {}
    ids = {row["item_id"] for row in rows if row["item_id"]}
    for row in rows:
        parent = row["parent_id"] if row["parent_id"] in ids else None
        children.setdefault(parent, []).append(row)

    def show(parent: str | None, depth: int) -> None:
        for row in children.get(parent, []):
            echo("  " * depth + _line(row).split(" ", 1)[1])
            if row["item_id"]:
                show(row["item_id"], depth + 1)

    echo(f"operation {operation_id}")
    show(None, 1)


def run(store: Path, command: str, argument: str | None, limit: int, follow: bool) -> int:
    db = connect(store)
    if command == "tail":
        tail(db, limit, follow)
    elif command == "requests":
        requests_summary(db)
    elif command == "events":
        events(db, limit)
    elif command == "exceptions":
        exceptions(db, limit)
    elif command == "trace":
        if not argument:
            fail("trace needs an operation id (see `events`)")
        trace(db, argument)
    return 0


def operation_of_upload(db: sqlite3.Connection, upload_id: str) -> str | None:
    """The operation an upload started (its UploadReceived event)."""
    for row in db.execute("SELECT operation_id, body FROM envelopes WHERE type='Event' AND name='UploadReceived'"):
        body: dict[str, Any] = json.loads(row["body"])
        if body["data"]["baseData"].get("properties", {}).get("upload_id") == upload_id:
            return str(row["operation_id"])
    return None
