"""The telemetry page prints what the store holds as text, whatever an envelope's sender wrote in it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from devhost import telemetry_page
from devhost.telemetry_store import TelemetryStore
from tests.browser import chromium

HOSTILE = '"><img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'


def _envelope(kind: str, operation: str, time: str = "2026-01-01T00:00:01.000000Z", **base: object) -> dict:
    return {"name": f"Microsoft.ApplicationInsights.{kind}", "time": time, "tags": {"ai.operation.id": operation},
            "data": {"baseData": base}}


def test_every_stored_value_shows_as_text_in_chromium(tmp_path: Path):
    store = TelemetryStore(tmp_path / "telemetry.db")
    store.add([
        _envelope("Request", HOSTILE, name="ingest", id="1", duration="00:00:01.000000", success=True),
        _envelope("Request", HOSTILE, name=f"train {HOSTILE}", id="2", duration="00:00:02.000000", success=False),
        _envelope("Event", HOSTILE, name=HOSTILE),
        _envelope("Event", HOSTILE, name="UploadReceived", properties={"upload_id": HOSTILE}),
        _envelope("Exception", HOSTILE, exceptions=[{"typeName": HOSTILE, "message": HOSTILE}]),
        _envelope("Request", "score", name="POST /api/score", id="3", duration="00:00:00.010000", success=True),
    ])
    # A row no store of ours writes (a hostile time; bodies of another shape): shown as text, never a 500.
    db = sqlite3.connect(tmp_path / "telemetry.db")
    with db:
        db.execute("INSERT INTO envelopes (time, type, name, success, body) VALUES (?, 'Exception', ?, 0, ?)",
                   (HOSTILE, HOSTILE, json.dumps({"data": {"baseData": {"exceptions": HOSTILE}}})))
        db.execute("INSERT INTO envelopes (time, type, name, operation_id, success, body) "
                   "VALUES (?, 'Request', 'ingest', 'odd', 1, '[]')", (HOSTILE,))
    db.close()
    page = telemetry_page.render(tmp_path / "telemetry.db")
    with chromium() as browser:
        tab = browser.new_page()
        tab.set_content(page)  # no Content-Security-Policy here: the markup alone must hold
        assert tab.title() == "Local telemetry"
        assert tab.locator("img").count() == 0 and tab.locator("script").count() == 0
        text = tab.inner_text("body")
    assert f"operation {HOSTILE}" in text and f"{HOSTILE}: {HOSTILE}" in text and HOSTILE[:19] in text
    assert f"train {HOSTILE}" in text and "Scoring latency" in text
