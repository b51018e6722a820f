"""The local stack, end to end, as a user runs it: it calls no Azure service, and no key it holds reaches a log
file or the telemetry store, even when it cannot deliver an event."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest

from cli import sample_data
from devhost.process import processes, wait_for
from shared.local.pipeline import stop_worker
from tests.integration.ml_stack import running_stack

pytestmark = pytest.mark.integration


def envelopes(store: Path) -> list[tuple[str, str, str]]:
    """Every stored envelope: its type, its name and its whole JSON."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return [(kind, name or "", body) for kind, name, body in db.execute("SELECT type, name, body FROM envelopes")]
    finally:
        db.close()


def test_an_upload_calls_no_azure_service(tmp_path: Path):
    with running_stack(tmp_path) as stack:
        upload_id = stack.upload("bank/offline.csv", sample_data.to_csv(sample_data.rows(400, seed=3)))
        assert stack.wait_final(upload_id)["state"] in ("promoted", "not_promoted")
        store = stack.host.state_dir / "telemetry.db"
        wait_for(lambda: any(kind == "Request" and name == "promote" for kind, name, _ in envelopes(store)),
                 timeout=60, what="the promotion's telemetry")
    stored = envelopes(store)
    assert not [body for _, _, body in stored if "monitor.azure.com" in body]
    # No exception comes from telemetry's own calls (the exporter's configuration service, its ingestion).
    assert not [body for kind, _, body in stored if kind == "Exception" and (
        "azure.monitor" in body or "HTTPSConnectionPool" in body or "/v2.1/track" in body)]


def test_no_key_reaches_a_log_or_the_telemetry_when_events_cannot_be_delivered(tmp_path: Path):
    """The host dies while a run trains: the worker finishes it and keeps failing to deliver its RunCompleted."""
    state = tmp_path / "localstack"
    try:
        with running_stack(tmp_path) as stack:
            keys = {stack.host.function_key, stack.host.master_key, stack.host.eventgrid_key}
            upload_id = stack.upload("bank/orphan.csv", sample_data.to_csv(sample_data.rows(400, seed=4)))
            wait_for(lambda: (stack.upload_record(upload_id) or {}).get("state") == "training", timeout=120,
                     what="training to start")
            stack.host.stop(signal.SIGKILL)
            worker_log = state / "worker.log"
            wait_for(lambda: worker_log.read_text().count("not delivered yet") >= 2, timeout=300, interval=0.5,
                     what="deliveries to fail")
    finally:
        stop_worker(state)
        # The telemetry endpoint of the host that died (its own session) is left behind: it stops here.
        for pid in processes(lambda command, parent: "devhost.telemetry_server" in command
                             and any(str(tmp_path) in part for part in command)):
            os.kill(pid, signal.SIGTERM)
    written = [path for path in tmp_path.rglob("*") if path.is_file() and (
        path.suffix in (".log", ".db", ".txt") or path.name.endswith(("-wal", ".jsonl")))]
    assert any(path.name == "telemetry.db" for path in written) and worker_log in written
    for path in written:
        if path.name == "keys.json":
            continue
        content = path.read_bytes()
        assert not [key for key in keys if key.encode() in content], path
    assert "code=" not in worker_log.read_text()
