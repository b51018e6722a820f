"""A small page over the local telemetry store: pipeline runs as timelines, scoring latency, errors.

Self-contained HTML with inline SVG (no scripts, no CDN), so it renders anywhere. Every value from the store is
printed through ``_text``: an envelope's ids, times and names are whatever its sender wrote.
"""

from __future__ import annotations

import html
import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from devhost.telemetry_store import ITEM_COUNT, weighted_percentile

STEPS = ("ingest", "promote")  # with "train <model>" between them
COLOURS = {"ingest": "#4e79a7", "train": "#f28e2b", "promote": "#59a14f"}


def _text(value: object) -> str:
    """A stored value as HTML text, whatever it holds."""
    return html.escape(str(value), quote=True)


def _when(text: str) -> datetime | None:
    """An envelope's time; None for one that is no ISO time with a zone (the store takes no others)."""
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _base_data(body: str) -> dict[str, Any]:
    """The envelope's ``data.baseData``; empty when the stored body has another shape."""
    try:
        base = json.loads(body).get("data", {}).get("baseData", {})
    except (ValueError, AttributeError):
        return {}
    return base if isinstance(base, dict) else {}


def pipeline_runs(db: sqlite3.Connection, limit: int = 10) -> list[dict[str, Any]]:
    """The newest operations that began with an upload: each request in them with its start and duration."""
    operations = [row[0] for row in db.execute(
        "SELECT operation_id FROM envelopes WHERE type='Request' AND name='ingest' ORDER BY id DESC LIMIT ?",
        (limit,))]
    runs = []
    for operation in operations:
        rows = [(name, moment, duration, success) for name, time, duration, success in db.execute(
            "SELECT name, time, duration_ms, success FROM envelopes WHERE operation_id=? AND type='Request' "
            "ORDER BY time", (operation,)) if (moment := _when(time)) is not None]
        if not rows:
            continue
        events = [r[0] for r in db.execute("SELECT name FROM envelopes WHERE operation_id=? AND type='Event' "
                                           "ORDER BY time", (operation,))]
        upload = ""
        for row in db.execute("SELECT body FROM envelopes WHERE operation_id=? AND name='UploadReceived'",
                              (operation,)):
            properties = _base_data(row[0]).get("properties")
            upload = str(properties.get("upload_id", "")) if isinstance(properties, dict) else ""
        start = rows[0][1]
        runs.append({"operation": operation, "upload": upload, "events": events, "steps": [
            {"name": str(name), "offset_ms": (moment - start).total_seconds() * 1000, "duration_ms": duration or 0.0,
             "ok": bool(success)} for name, moment, duration, success in rows]})
    return runs


def latency_series(db: sqlite3.Connection, bucket_s: int = 10) -> list[tuple[str, float, int]]:
    """p50 of scoring requests per time bucket: (bucket start, p50 ms, count), each sampled item weighed by
    the requests it stands for."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    query = (f"SELECT time, duration_ms, {ITEM_COUNT} FROM envelopes WHERE type='Request' "  # noqa: S608 (constants)
             "AND name LIKE 'POST %score' ORDER BY id DESC LIMIT 20000")
    for time, duration, items in db.execute(query):
        moment = _when(time)
        if moment is None or items is None:
            continue
        key = moment.replace(second=moment.second - moment.second % bucket_s, microsecond=0).isoformat()
        buckets.setdefault(key, []).append((duration or 0.0, items))
    return [(key, weighted_percentile(values, 50), round(sum(n for _, n in values)))
            for key, values in sorted(buckets.items())]


def errors(db: sqlite3.Connection, limit: int = 20) -> list[tuple[str, str, str]]:
    rows = db.execute("SELECT time, type, name, body FROM envelopes WHERE (type='Request' AND success=0) "
                      "OR type='Exception' ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    out = []
    for time, kind, name, body in rows:
        if kind == "Exception":
            found = _base_data(body).get("exceptions")
            first = found[0] if isinstance(found, list) and found and isinstance(found[0], dict) else {}
            name = f"{first.get('typeName')}: {first.get('message')}"
        out.append((str(time)[:19], kind, name or ""))
    return out


def _timeline_svg(run: dict[str, Any], width: int = 760) -> str:
    # At least one second wide, so a lone 5 ms step does not fill the whole line.
    total = max(1000.0, max((s["offset_ms"] + s["duration_ms"] for s in run["steps"]), default=1.0))
    bars = []
    for index, step in enumerate(run["steps"]):
        x = 150 + step["offset_ms"] / total * (width - 160)
        w = max(2.0, step["duration_ms"] / total * (width - 160))
        colour = COLOURS.get(step["name"].split(" ")[0], "#9c755f") if step["ok"] else "#e15759"
        y = 8 + index * 22
        seconds = f"{step['duration_ms'] / 1000:.1f}s"
        bars.append(f'<text x="4" y="{y + 13}">{_text(step["name"])}</text>'
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="16" fill="{colour}" rx="3"/>'
                    f'<text x="{min(x + w + 4, width - 70):.1f}" y="{y + 13}">{_text(seconds)}</text>')
    height = 16 + 22 * len(run["steps"])
    return f'<svg width="{width}" height="{height}" role="img">{"".join(bars)}</svg>'


def _latency_svg(series: list[tuple[str, float, int]], width: int = 760, height: int = 180) -> str:
    if not series:
        return "<p>No scoring requests yet.</p>"
    top = max(p for _, p, _ in series) or 1.0
    step = (width - 60) / max(1, len(series) - 1)
    points = " ".join(f"{50 + i * step:.1f},{height - 20 - p / top * (height - 40):.1f}"
                      for i, (_, p, _) in enumerate(series))
    return (f'<svg width="{width}" height="{height}" role="img">'
            f'<line x1="50" y1="{height - 20}" x2="{width - 10}" y2="{height - 20}" stroke="#888"/>'
            f'<line x1="50" y1="10" x2="50" y2="{height - 20}" stroke="#888"/>'
            f'<text x="4" y="20">{_text(f"{top:.1f}")} ms</text><text x="4" y="{height - 22}">0</text>'
            f'<polyline points="{_text(points)}" fill="none" stroke="#4e79a7" stroke-width="2"/>'
            f'<text x="50" y="{height - 4}">{_text(series[0][0][11:19])}</text>'
            f'<text x="{width - 70}" y="{height - 4}">{_text(series[-1][0][11:19])}</text></svg>')


def render(store: Path) -> str:
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True) if store.exists() else sqlite3.connect(":memory:")
    try:
        has_data = bool(db.execute("SELECT name FROM sqlite_master WHERE name='envelopes'").fetchone())
        runs = pipeline_runs(db) if has_data else []
        series = latency_series(db) if has_data else []
        failures = errors(db) if has_data else []
    finally:
        db.close()
    sections = []
    for run in runs:
        story = " → ".join(map(_text, run["events"]))
        sections.append(f'<h3>{_text(run["upload"] or run["operation"])}</h3>'
                        f'<p class="meta">operation {_text(run["operation"])} · {story}</p>' + _timeline_svg(run))
    error_rows = "".join(f"<tr><td>{_text(t)}</td><td>{_text(k)}</td><td>{_text(n)}</td></tr>"
                         for t, k, n in failures)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Local telemetry</title>
<style>body{{font:14px system-ui,sans-serif;margin:24px;color:#222}} h2{{margin-top:28px}}
.meta{{color:#666;font-size:12px}} svg text{{font-size:12px}} table{{border-collapse:collapse}}
td{{border-bottom:1px solid #ddd;padding:4px 8px}}</style></head><body>
<h1>Local telemetry</h1>
<h2>Pipeline runs</h2>{"".join(sections) or "<p>No uploads yet.</p>"}
<h2>Scoring latency (p50 per 10 s)</h2>{_latency_svg(series)}
<h2>Errors</h2><table>{error_rows or "<tr><td>None.</td></tr>"}</table>
</body></html>"""
