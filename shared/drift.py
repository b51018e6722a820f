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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shared.model_contract import Columns, Results
from shared.schema import DATETIME, Column

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
        out["prediction"] = _numeric_reference(np.asarray(predictions, dtype=float).reshape(-1))
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

    def summarise(self) -> WindowSummary | None:
        """Close the window: PSI per feature over the sample, the predicted-positive rate over every row; None
        (and the window goes on) when it has seen too few rows."""
        with self._lock:
            if self._rows < self.min_rows:
                return None
            batch, rows, positives, start = self._sample, self._rows, self._positives, self._since
            self._sample, self._seen, self._rows, self._positives = [], 0, 0, 0
            self._since = datetime.now(UTC)
        scores: dict[str, float] = {}
        for name, ref in self.reference["features"].items():
            parts = [columns[name].reshape(-1) for columns, _ in batch if name in columns]
            if not parts:
                continue
            values = np.concatenate(parts)
            if ref["kind"] == "number":
                counts = _numeric_counts(values.astype(float), np.asarray(ref["edges"]))
                expected = np.asarray(ref["shares"])
            else:
                known = {c: i for i, c in enumerate(ref["categories"])}
                counts = np.zeros(len(known) + 1)
                for value in values:
                    counts[known.get(str(value) if value not in ("", None) else MISSING, len(known))] += 1
                expected = np.asarray(ref["shares"])
            scores[name] = round(psi(expected, counts / max(counts.sum(), 1)), 4)
        positive_rate = prediction_psi = None
        if self._counts_positives:
            positive_rate = round(positives / rows, 4)
        prediction = self.reference.get("prediction")
        if prediction:
            predicted = np.fromiter((float(v) for _, values in batch for v in values), dtype=float)
            counts = _numeric_counts(predicted, np.asarray(prediction["edges"]))
            prediction_psi = round(psi(np.asarray(prediction["shares"]), counts / max(counts.sum(), 1)), 4)
        summary = WindowSummary(rows, scores, positive_rate, start.isoformat(timespec="seconds"),
                                self._since.isoformat(timespec="seconds"),
                                sorted((n for n, s in scores.items() if s >= self.threshold), key=lambda n: -scores[n]),
                                prediction_psi)
        self.last = summary
        return summary

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
    """Closes every monitor's window on a timer, in one daemon thread started on first use."""

    def __init__(self, window_s: float, publish: Callable[[DriftMonitor, WindowSummary], None],
                 max_monitors: int = 64) -> None:
        self.window_s = window_s
        self.publish = publish
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
            time.sleep(self.window_s)
            self.close_windows()

    def close_windows(self) -> None:
        for monitor in list(self.monitors.values()):
            try:
                summary = monitor.summarise()
                if summary is not None:
                    self.publish(monitor, summary)
            except Exception:  # a summary must never take scoring down
                log.exception("Drift summary failed for %s v%s", monitor.model, monitor.version)
