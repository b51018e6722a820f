"""Drift fires on shifted traffic and stays quiet on traffic drawn like the training data."""

from __future__ import annotations

import pandas as pd

from cli import sample_data
from shared import drift, scoring
from shared.dataset_validation import validate
from shared.model_contract import ModelSignature
from shared.schema import Column

TRAINING = validate(sample_data.to_csv(sample_data.rows(3000, seed=1)), "y", max_bytes=10**8, min_rows=50)
FEATURES = TRAINING.schema.features
SIGNATURE = ModelSignature.from_schema(TRAINING.schema, ("no", "yes"))
POSITIVE_RATE = float((TRAINING.frame["y"] == "yes").mean())


def monitor(threshold: float = 0.2) -> drift.DriftMonitor:
    reference = drift.baseline(TRAINING.frame, FEATURES, POSITIVE_RATE)
    return drift.DriftMonitor("bank", "3", "run_1", "bank:2", reference, "yes", threshold, min_rows=100)


def send(watch: drift.DriftMonitor, rows: list[dict], labels: list[str]) -> None:
    for start in range(0, len(rows), 10):  # as requests of ten rows
        columns, _ = scoring.columns_for(rows[start:start + 10], SIGNATURE)
        watch.observe(columns, labels[start:start + 10])


def features_of(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "y"} for r in rows]


def test_traffic_like_the_training_data_raises_nothing():
    watch = monitor()
    rows = sample_data.rows(1000, seed=77)  # the same generator, other rows
    send(watch, features_of(rows), [str(r["y"]) for r in rows])
    summary = watch.summarise()
    assert summary is not None and summary.rows == 1000
    assert summary.drifted == [] and max(summary.psi.values()) < 0.1
    assert summary.positive_rate is not None and abs(summary.positive_rate - POSITIVE_RATE) < 0.05


def test_shifted_traffic_is_detected_on_the_shifted_features_only():
    watch = monitor()
    rows = features_of(sample_data.rows(1000, seed=78))
    for row in rows:
        row["age"] = row["age"] + 30  # an older population
        row["job"] = "retired"
    send(watch, rows, ["yes"] * 1000)
    summary = watch.summarise()
    assert summary is not None and set(summary.drifted) == {"age", "job"}
    assert summary.psi["age"] > 1 and summary.psi["campaign"] < 0.1
    event = watch.event(summary)
    assert event["dataDriftName"] == "bank-v3" and event["baseDatasetId"] == "bank:2"
    assert event["driftCoefficient"] == max(summary.psi.values()) and event["features"] == "job,age"  # worst first
    assert event["predictedPositiveRate"] == 1.0


def test_a_small_window_carries_over_and_the_tracker_publishes_each_window():
    watch = monitor()
    rows = sample_data.rows(60, seed=79)
    send(watch, features_of(rows), [str(r["y"]) for r in rows])
    assert watch.summarise() is None  # 60 rows < 100: kept for the next window
    send(watch, features_of(rows), [str(r["y"]) for r in rows])
    published: list[drift.WindowSummary] = []
    tracker = drift.DriftTracker(3600, lambda m, s: published.append(s))
    tracker.monitors["bank@3"] = watch
    tracker.close_windows()
    assert len(published) == 1 and published[0].rows == 120


def test_missing_values_and_unseen_categories_have_their_own_bins():
    reference = drift.baseline(pd.DataFrame({"n": [1.0, 2.0, None] * 50, "t": ["a", "b", None] * 50}),
                               [Column("n", "number"), Column("t", "string")], 0.5)
    assert reference["features"]["n"]["shares"][-1] > 0.3  # the missing slot
    assert "(missing)" in reference["features"]["t"]["categories"]


def test_the_tracker_keeps_a_bounded_number_of_monitors_dropping_the_oldest():
    from shared.drift import DriftTracker

    tracker = DriftTracker(3600, lambda monitor, summary: None, max_monitors=4)
    made = [tracker.monitor(f"bank@{v}", lambda v=v: f"monitor {v}") for v in range(1, 7)]  # type: ignore[arg-type,misc]
    assert made == [f"monitor {v}" for v in range(1, 7)]
    assert list(tracker.monitors) == ["bank@3", "bank@4", "bank@5", "bank@6"]


def test_a_busy_window_keeps_a_bounded_uniform_sample_and_counts_every_row():
    watch = monitor()
    older = features_of(sample_data.rows(300, seed=80))
    for row in older:
        row["age"] = row["age"] + 30
    usual = features_of(sample_data.rows(300, seed=81))
    columns_older = [scoring.columns_for([row], SIGNATURE)[0] for row in older]
    columns_usual = [scoring.columns_for([row], SIGNATURE)[0] for row in usual]
    requests = 2 * drift.MAX_SAMPLED_REQUESTS * 5  # five times what is kept: half shifted, then half as usual
    for i in range(requests // 2):
        watch.observe(columns_older[i % 300], ["yes"])
    for i in range(requests // 2):
        watch.observe(columns_usual[i % 300], ["no"])
    kept = watch.sample
    assert len(kept) == drift.MAX_SAMPLED_REQUESTS  # memory bounded whatever the load
    shifted = sum(1 for _, labels in kept if labels == ["yes"])  # the first half's requests
    assert 0.4 < shifted / len(kept) < 0.6  # drawn from the whole window, not its first requests
    summary = watch.summarise()
    assert summary is not None and summary.rows == requests  # counted exactly, not from the sample
    assert summary.positive_rate == 0.5 and "age" in summary.drifted
    assert watch.sample == [] and watch.summarise() is None  # a new window
