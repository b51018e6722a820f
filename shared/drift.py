"""Data drift: scoring traffic against the training distribution, per feature, over windows.

At training time each feature's distribution is kept with the model (decile
bins for numbers, category shares for text). Scoring keeps a uniform sample
of each window's requests (reservoir sampling: an append, or a random slot
replaced, on the hot path; bounded memory under any load) and counts their rows
and predicted positives exactly; every window a background thread bins the
sample and computes the population stability index (PSI) per
feature and the predicted-positive rate (for regression: the PSI of the
predictions against the model's predictions on its training rows), exports
them as metrics, and emits
``DataDriftDetected`` (shaped like Azure ML's ``DatasetDriftDetected``) when a
feature's PSI passes the threshold.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shared import telemetry
from shared.model_contract import Columns, Results
from shared.schema import DATETIME, Column, Schema

log = logging.getLogger(__name__)
BINS = 10
TOP_CATEGORIES = 20
OTHER = "(other)"
MISSING = "(missing)"
PREDICTION = "(prediction)"  # the name the predictions' PSI is published under
EPSILON = 1e-4
# Requests kept per window and model version, drawn uniformly from all the window saw: a few megabytes at most
# (about 4 kB per 1-row request), and PSI over 2,000 requests is already steady.
MAX_SAMPLED_REQUESTS = 2_000


def baseline(frame: pd.DataFrame, features: Sequence[Column], positive_rate: float | None = None,
             predictions: NDArray[np.float64] | None = None) -> dict[str, Any]:
    """Each feature's training distribution: bin edges (numbers) or categories, with their shares; and the
    predictions': the positive rate for classification, the binned predicted numbers for regression."""
    out: dict[str, Any] = {"rows": len(frame), "features": {}}
    if positive_rate is not None:
        out["positive_rate"] = positive_rate
    if predictions is not None:
        out["prediction"] = prediction_reference(predictions)
    for feature in features:
        if feature.kind == DATETIME:  # a window of traffic spans days, training months: its dates always differ
            continue
        name = feature.name
        values = frame[name]
        if feature.is_numeric:
            out["features"][name] = _numeric_reference(pd.to_numeric(values, errors="coerce").to_numpy(dtype=float))
        else:
            text = values.astype(object).where(values.notna(), MISSING).astype(str)
            shares = text.value_counts(normalize=True)
            top = [str(c) for c in shares.index[:TOP_CATEGORIES]]
            other = float(shares.iloc[TOP_CATEGORIES:].sum())
            out["features"][name] = {"kind": "text", "categories": top,
                                     "shares": [round(float(shares[c]), 6) for c in top] + [round(other, 6)]}
    return out


def dataset_baseline(frame: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    """A dataset version's baseline, for a backend whose models come without one (Azure): the features', and
    for classification the share of the class a model treats as positive (the last of the sorted labels, as
    scikit-learn orders them). Regression's predictions have no reference before there is a model."""
    features = schema.features
    if schema.time_series is not None:  # forecasts ask for times after the history: their dates always differ
        features = tuple(c for c in features if c.name != schema.time_series.time_column)
    if not schema.task.predicts_classes:
        return baseline(frame, features)
    labels = frame[schema.target].dropna()
    if labels.empty:
        return baseline(frame, features)
    positive = sorted(labels.unique())[-1]
    out = baseline(frame, features, float((labels == positive).mean()))
    out["positive_class"] = str(positive)
    return out


def prediction_reference(predictions: NDArray[np.float64]) -> dict[str, Any]:
    """A regression model's predictions binned, the reference its traffic's predictions are held against."""
    return _numeric_reference(np.asarray(predictions, dtype=float).reshape(-1))


def _numeric_reference(numbers: NDArray[np.float64]) -> dict[str, Any]:
    present = numbers[~np.isnan(numbers)]
    edges: NDArray[np.float64] = (np.unique(np.quantile(present, np.linspace(0, 1, BINS + 1)[1:-1]))
                                  if len(present) else np.array([]))
    counts = _numeric_counts(numbers, edges)
    return {"kind": "number", "edges": [float(e) for e in edges],
            "shares": (counts / max(counts.sum(), 1)).round(6).tolist()}


def _numeric_counts(numbers: NDArray[np.float64], edges: NDArray[np.float64]) -> NDArray[np.float64]:
    """Counts per bin, the last slot for missing values."""
    counts = np.zeros(len(edges) + 2)
    missing = np.isnan(numbers)
    np.add.at(counts, np.searchsorted(edges, numbers[~missing], side="right"), 1)
    counts[-1] = missing.sum()
    return counts


def psi(expected: NDArray[np.float64], actual: NDArray[np.float64]) -> float:
    e = np.clip(expected, EPSILON, None)
    a = np.clip(actual, EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _psi_of(shares: Sequence[float], counts: Sequence[float]) -> float:
    actual = np.asarray(counts, dtype=float)
    return round(psi(np.asarray(shares, dtype=float), actual / max(float(actual.sum()), 1e-9)), 4)


@dataclass(frozen=True)
class WindowCounts:
    """A closed window as counts that add up across processes: rows and predicted positives exactly, each
    feature's bins (and the predictions') estimated from the sample, scaled to the window's requests."""

    rows: int
    positives: int | None  # classification
    start: str
    end: str
    features: dict[str, list[float]]
    prediction: list[float] | None = None  # regression

    @staticmethod
    def merge(windows: Sequence[WindowCounts]) -> WindowCounts:
        names = {name for window in windows for name in window.features}

        def added(parts: list[list[float]]) -> list[float]:
            return [float(x) for x in np.sum([np.asarray(p, dtype=float) for p in parts], axis=0).round(3)]

        positives = [w.positives for w in windows if w.positives is not None]
        predictions = [w.prediction for w in windows if w.prediction is not None]
        return WindowCounts(sum(w.rows for w in windows), sum(positives) if positives else None,
                            min(w.start for w in windows), max(w.end for w in windows),
                            {n: added([w.features[n] for w in windows if n in w.features]) for n in sorted(names)},
                            added(predictions) if predictions else None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> WindowCounts:
        return cls(int(body["rows"]), body.get("positives"), str(body["start"]), str(body["end"]),
                   {str(k): list(v) for k, v in body.get("features", {}).items()}, body.get("prediction"))


@dataclass
class WindowSummary:
    rows: int
    psi: dict[str, float]
    positive_rate: float | None  # classification
    start: str
    end: str
    drifted: list[str] = field(default_factory=list)
    prediction_psi: float | None = None  # regression: the predictions against the training rows' predictions


class DriftMonitor:
    """One per served model version: buffers scoring inputs, summarises them each window."""

    def __init__(self, model: str, version: str, run_id: str, dataset: str, reference: dict[str, Any],
                 positive: str, threshold: float, min_rows: int) -> None:
        self.model, self.version, self.run_id, self.dataset = model, version, run_id, dataset
        self.reference = reference
        self.positive = positive
        self.threshold = threshold
        self.min_rows = min_rows
        self._counts_positives = "positive_rate" in reference
        self._sample: list[tuple[Columns, Results]] = []
        self._seen = self._rows = self._positives = 0  # this window's requests, rows and predicted positives
        self._since = datetime.now(UTC)
        self._random = random.Random()  # noqa: S311 (sampling, not secrecy)
        # Requests are scored on the event loop and on worker threads: counts must not interleave.
        self._lock = threading.Lock()
        self.last: WindowSummary | None = None

    @property
    def sample(self) -> list[tuple[Columns, Results]]:
        """The requests kept so far this window."""
        return list(self._sample)

    def observe(self, columns: Columns, results: Results) -> None:
        with self._lock:
            self._seen += 1
            self._rows += len(results)
            if self._counts_positives:
                self._positives += results.count(self.positive)  # type: ignore[arg-type]
            if len(self._sample) < MAX_SAMPLED_REQUESTS:
                self._sample.append((columns, results))
            else:  # Algorithm R: each request seen stays in the sample with the same chance
                slot = int(self._random.random() * self._seen)
                if slot < MAX_SAMPLED_REQUESTS:
                    self._sample[slot] = (columns, results)

    def take(self, min_rows: int | None = None) -> WindowCounts | None:
        """Close the window and count it; None (and the window goes on) below ``min_rows`` (default: the
        monitor's own) or with no traffic at all."""
        with self._lock:
            if self._rows < max(self.min_rows if min_rows is None else min_rows, 1):
                return None
            batch, seen, rows, positives, start = self._sample, self._seen, self._rows, self._positives, self._since
            self._sample, self._seen, self._rows, self._positives = [], 0, 0, 0
            self._since = datetime.now(UTC)
        weight = seen / max(len(batch), 1)  # each sampled request stands for this many of the window's
        features: dict[str, list[float]] = {}
        for name, ref in self.reference["features"].items():
            parts = [columns[name].reshape(-1) for columns, _ in batch if name in columns]
            if not parts:
                continue
            values = np.concatenate(parts)
            if ref["kind"] == "number":
                counts = _numeric_counts(values.astype(float), np.asarray(ref["edges"]))
            else:
                known = {c: i for i, c in enumerate(ref["categories"])}
                counts = np.zeros(len(known) + 1)
                for value in values:
                    counts[known.get(str(value) if value not in ("", None) else MISSING, len(known))] += 1
            features[name] = (counts * weight).round(3).tolist()
        predicted: list[float] | None = None
        prediction = self.reference.get("prediction")
        if prediction:
            numbers = np.fromiter((float(v) for _, values in batch for v in values), dtype=float)
            predicted = (_numeric_counts(numbers, np.asarray(prediction["edges"])) * weight).round(3).tolist()
        return WindowCounts(rows, positives if self._counts_positives else None, start.isoformat(timespec="seconds"),
                            self._since.isoformat(timespec="seconds"), features, predicted)

    def summarise(self) -> WindowSummary | None:
        """Close the window: PSI per feature over the sample, the predicted-positive rate over every row; None
        (and the window goes on) when it has seen too few rows."""
        counts = self.take()
        if counts is None:
            return None
        self.last = self.summary_of(counts)
        return self.last

    def summary_of(self, counts: WindowCounts) -> WindowSummary:
        """PSI per feature (and of the predictions) of a window's counts, this process's or several merged."""
        scores = {name: _psi_of(self.reference["features"][name]["shares"], binned)
                  for name, binned in counts.features.items() if name in self.reference["features"]}
        prediction = self.reference.get("prediction")
        prediction_psi = (_psi_of(prediction["shares"], counts.prediction)
                          if prediction and counts.prediction is not None else None)
        positive_rate = round(counts.positives / counts.rows, 4) if counts.positives is not None else None
        drifted = sorted((n for n, s in scores.items() if s >= self.threshold), key=lambda n: -scores[n])
        return WindowSummary(counts.rows, scores, positive_rate, counts.start, counts.end, drifted, prediction_psi)

    def event(self, summary: WindowSummary) -> dict[str, Any]:
        """The properties of ``DataDriftDetected``, named as in Azure ML's DatasetDriftDetected event data."""
        return {"dataDriftId": f"{self.model}:{self.version}", "dataDriftName": f"{self.model}-v{self.version}",
                "runId": self.run_id, "baseDatasetId": self.dataset, "targetDatasetId": "scoring-traffic",
                "driftCoefficient": max(summary.psi.values(), default=0.0), "startTime": summary.start,
                "endTime": summary.end, "features": ",".join(summary.drifted), "rows": summary.rows,
                "predictedPositiveRate": summary.positive_rate,
                "trainingPositiveRate": self.reference.get("positive_rate"),
                "predictionDriftCoefficient": summary.prediction_psi}

    def drifted(self, summary: WindowSummary) -> bool:
        """Whether a feature or, for regression, the predictions moved past the threshold."""
        return bool(summary.drifted) or (summary.prediction_psi or 0.0) >= self.threshold


class DriftTracker:
    """Closes every monitor's window on a timer aligned to the clock (so that the windows of several processes
    line up), in one daemon thread started on first use. ``close`` handles one monitor at a window's end: by
    default it summarises the window here and publishes it."""

    def __init__(self, window_s: float, publish: Callable[[DriftMonitor, WindowSummary], None],
                 max_monitors: int = 64, close: Callable[[DriftMonitor], None] | None = None) -> None:
        self.window_s = window_s
        self.publish = publish
        self.close = close or self._summarise
        self.max_monitors = max_monitors  # one per served model version; the oldest go first beyond this
        self.monitors: dict[str, DriftMonitor] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def monitor(self, key: str, make: Callable[[], DriftMonitor]) -> DriftMonitor:
        with self._lock:
            found = self.monitors.get(key)
            if found is None:
                found = self.monitors[key] = make()
                while len(self.monitors) > self.max_monitors:
                    self.monitors.pop(next(iter(self.monitors)))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="drift", daemon=True)
                self._thread.start()
            return found

    def _run(self) -> None:
        while True:
            time.sleep(self.window_s - time.time() % self.window_s)
            self.close_windows()

    def _summarise(self, monitor: DriftMonitor) -> None:
        summary = monitor.summarise()
        if summary is not None:
            self.publish(monitor, summary)

    def close_windows(self) -> None:
        for key, monitor in list(self.monitors.items()):
            try:
                self.close(monitor)
            except Exception:  # a summary must never take scoring down, nor the thread that closes the next
                log.exception("Drift summary failed for %s", key)


def publish(monitor: DriftMonitor, summary: WindowSummary) -> None:
    """A closed window's PSI and positive rate as metrics; ``DataDriftDetected`` when something moved."""
    labels = (("model", monitor.model), ("version", monitor.version))
    for feature, value in summary.psi.items():
        telemetry.feature_psi.set(value, (*labels, ("feature", feature)))
    if summary.positive_rate is not None:
        telemetry.predicted_positive_rate.set(summary.positive_rate, labels)
    if summary.prediction_psi is not None:
        telemetry.feature_psi.set(summary.prediction_psi, (*labels, ("feature", PREDICTION)))
    if monitor.drifted(summary):
        moved = [f"{n} PSI {summary.psi[n]:.2f}" for n in summary.drifted]
        if summary.prediction_psi is not None and summary.prediction_psi >= monitor.threshold:
            moved.append(f"{PREDICTION} PSI {summary.prediction_psi:.2f}")
        log.warning("Data drift on %s v%s: %s", monitor.model, monitor.version, ", ".join(moved))
        telemetry.event("DataDriftDetected", **monitor.event(summary))
