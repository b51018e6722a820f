"""Drift across instances: two processes score their own traffic and flush their windows to storage
(Azurite); one summary merges both, written and published once, whoever asks for it."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from cli import sample_data
from shared import drift, scoring, telemetry
from shared.blob_records import JsonBlobs
from shared.dataset_validation import validate
from shared.drift_windows import SharedDriftWindows
from shared.model_contract import ModelSignature

WINDOW_S = 3600.0
CONTAINER = "state"


def _monitor() -> tuple[drift.DriftMonitor, ModelSignature]:
    training = validate(sample_data.to_csv(sample_data.rows(2000, seed=1)), "y", max_bytes=10**8, min_rows=50)
    reference = drift.dataset_baseline(training.frame, training.schema)
    signature = ModelSignature.from_schema(training.schema, ("no", "yes"))
    return drift.DriftMonitor("bank", "4", "run_4", "bank:2", reference, "yes", 0.2, min_rows=500), signature


def _traffic(seed: int, shifted: bool) -> list[tuple[Any, list[str]]]:
    """Requests of ten rows; the shifted ones come from an older population."""
    _, signature = _monitor()
    rows = [{k: v for k, v in r.items() if k != "y"} for r in sample_data.rows(400, seed=seed)]
    if shifted:
        rows = [{**r, "age": int(str(r["age"])) + 30} for r in rows]
    labels = ["yes" if shifted else "no"] * 10
    return [(scoring.columns_for(rows[i:i + 10], signature)[0], labels) for i in range(0, 400, 10)]


def _records(connection: str) -> JsonBlobs:
    return JsonBlobs(BlobServiceClient.from_connection_string(connection).get_container_client(CONTAINER))


def _instance(connection: str, name: str, seed: int, shifted: bool) -> None:
    """One app instance: scores its traffic, then its window ends."""
    monitor, _ = _monitor()
    for columns, labels in _traffic(seed, shifted):
        monitor.observe(columns, labels)
    SharedDriftWindows(_records(connection), WINDOW_S, instance=name).flush(monitor)


def test_two_processes_windows_merge_into_one_summary_published_once(azurite_conn: str,
                                                                       monkeypatch: pytest.MonkeyPatch):
    BlobServiceClient.from_connection_string(azurite_conn).create_container(CONTAINER)
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=_instance, args=(azurite_conn, f"instance-{i}", 100 + i, i == 1))
               for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    records = _records(azurite_conn)
    flushed = records.names("drift/bank/v4/windows/")
    assert sorted(n.rsplit("/", 1)[-1] for n in flushed) == ["instance-0.json", "instance-1.json"]
    assert not records.names("drift/bank/v4/summaries/")  # the window is too recent: nobody merged it yet

    # Each instance alone: 400 rows, below the minimum of 500, so it would say nothing. Together they are
    # one window, as one process that saw all the traffic would summarise it.
    alone, _ = _monitor()
    for seed, shifted in ((100, False), (101, True)):
        for columns, labels in _traffic(seed, shifted):
            alone.observe(columns, labels)
    expected = alone.summarise()
    assert expected is not None

    events: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(telemetry, "event", lambda name, **props: events.append((name, props)))
    answers: list[dict[str, Any] | None] = []
    later = time.time() + 2 * WINDOW_S  # both windows are over and flushed
    readers = [SharedDriftWindows(_records(azurite_conn), WINDOW_S, instance=f"reader-{i}", clock=lambda: later)
               for i in range(2)]
    threads = [threading.Thread(target=lambda r=r: answers.append(r.summarise(_monitor()[0]))) for r in readers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 2 and answers[0] == answers[1] and answers[0] is not None
    merged = answers[0]
    assert merged["rows"] == 800 and merged["instances"] == 2 and merged["positive_rate"] == 0.5
    assert merged["psi"] == expected.psi and "age" in merged["drifted"]
    assert [name for name, _ in events] == ["DataDriftDetected"]  # one summary, published by one reader
    assert events[0][1]["rows"] == 800 and events[0][1]["dataDriftName"] == "bank-v4"
    assert not records.names("drift/bank/v4/windows/")  # the merged counts are gone
    assert len(records.names("drift/bank/v4/summaries/")) == 1
