"""Training a forecaster on the local engine: judged on each series' last horizon, refit on the whole history.

The same shape of result as the tabular search (``automl.TrainingOutcome``): the candidates' backtest errors are
its trials, the judged fit's forecasts of the held-out windows its validation outputs, so the run's record,
report and promotion gate read it as they read any run. The forecaster is kept natively (``model.pkl``): it
forecasts from each series' own history, which no exported graph holds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shared import metrics
from shared.forecasting.model import DEFAULT_FOLDS, Forecaster, fit, rolling_origin_folds
from shared.forecasting.series import ForecastSpec, Frequency, split_last
from shared.local import artifacts
from shared.local.automl import HOLDOUT_DIR, TrainingOutcome
from shared.schema import DATETIME, Column, Schema

MODEL_FORMAT = artifacts.FORECASTER
BACKTEST_SHARE = 0.6  # of the time budget, after which the backtest starts no further fold
SHOWN_SERIES = 12  # the report shows this many series at most: the largest, then the smallest


def frequency_of(schema: Schema) -> Frequency:
    assert schema.time_series is not None
    return Frequency(schema.time_series.frequency, "inferred at ingest", schema.time_series.anchor)


def features(schema: Schema, spec: ForecastSpec) -> tuple[Column, ...]:
    """What a forecast request sends: the time (an ISO 8601 date), the series ids and the known features."""
    out = []
    for name in (spec.time, *spec.series, *spec.known):
        column = schema.column(name)
        out.append(replace(column, kind=DATETIME, categories=()) if name == spec.time else column)
    return tuple(out)


def train(frame: pd.DataFrame, schema: Schema, spec: ForecastSpec, metric_name: str, out_dir: Path,
          on_step: Callable[[str], None], budget_s: float = 60.0) -> tuple[TrainingOutcome, Forecaster]:
    """Backtest the candidates on the history before each series' last ``horizon`` periods, judge the best on
    those periods, then refit it on everything. Writes validation.csv, trials.json, model.pkl and the judged fit
    in ``holdout/`` (with its forecasts of the validation rows). The backtest starts no fold after
    ``BACKTEST_SHARE`` of ``budget_s``: the two fits of the chosen method that follow take a fold's time at most."""
    import joblib

    timings: dict[str, float] = {}
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    history, window = split_last(frame, spec, frequency_of(schema))
    window.assign(**{spec.time: window[spec.time].map(_iso)}).to_csv(out_dir / "validation.csv", index=False)
    on_step("backtest")
    judged = fit(history, spec, held_out=spec.horizon, deadline=started + BACKTEST_SHARE * budget_s)
    timings["search_s"] = time.perf_counter() - started
    on_step("evaluate")
    outputs = judged.predict(window).reshape(-1, 1)
    y = window[spec.target].to_numpy(dtype=np.float64)
    validation = metrics.all_metrics(y, outputs, [], 0.5, schema.task)
    validation["mean_absolute_error"] = float(np.mean(np.abs(outputs[:, 0] - y)))
    holdout = out_dir / HOLDOUT_DIR
    holdout.mkdir(exist_ok=True)
    joblib.dump(judged, holdout / "model.pkl")
    np.save(out_dir / artifacts.JUDGED_OUTPUTS, outputs)
    (out_dir / artifacts.FORECAST_WINDOWS).write_text(json.dumps(windows(judged, window, outputs[:, 0])))
    timings["fit_s"] = time.perf_counter() - started
    on_step("refit")
    final = fit(frame, spec, candidates=[judged.chosen])
    joblib.dump(final, out_dir / "model.pkl")
    timings["refit_s"] = time.perf_counter() - started - timings["fit_s"]
    ranked = sorted(judged.scores.items(), key=lambda pair: pair[1])
    trials: list[dict[str, Any]] = [
        {"trial": i, "learner": name, "config": {}, "cv_loss": score if np.isfinite(score) else None,
         "seconds": None, "at_s": None, "sample_size": None} for i, (name, score) in enumerate(ranked)]
    (out_dir / "trials.json").write_text(json.dumps(trials, indent=1))
    series = len(final.series)
    notes = [
        f"Frequency {final.frequency.name}; {series} series; horizon {spec.horizon} period(s).",
        f"Chosen by a rolling-origin backtest in time order over {judged.folds} fold(s)"
        + (f" (the budget of {budget_s:.0f}s left no time for more of the {DEFAULT_FOLDS})"
           if judged.folds < DEFAULT_FOLDS and judged.folds < _possible(judged) else "")
        + f": {judged.chosen} (mean absolute error scaled per series "
        f"{judged.scores[judged.chosen]:.4f}; seasonal naive {judged.scores.get('seasonal-naive', float('nan')):.4f}).",
        f"Validation metrics: the choice fit on the history before each series' last {spec.horizon} period(s) and "
        f"scored on those {len(window):,} rows. Deployed: refit on all {len(frame):,} rows.",
        *[f.message for f in final.findings if not f.rejects],
    ]
    timings["total_s"] = time.perf_counter() - started
    outcome = TrainingOutcome(
        best_learner=judged.chosen, best_config={"method": judged.chosen}, threshold=None, classes=[],
        validation_metrics=validation, trials=trials, timings=timings, model_format=MODEL_FORMAT, notes=notes,
        fit_rows={"holdout_fit": len(history), "validation": len(window), "final_fit": len(frame)},
        search={"loss": schema.task.search_loss, "candidates": len(judged.scores), "folds": judged.folds,
                "budget_s": round(budget_s, 1), "seconds": round(timings["search_s"], 1)})
    return outcome, final


def _possible(judged: Forecaster) -> int:
    """The folds a history this long allows, budget aside."""
    season, horizon = judged.frequency.season, judged.spec.horizon
    end, start = max(s.end for s in judged.series), min(s.start for s in judged.series)
    return len(rolling_origin_folds(end, horizon, DEFAULT_FOLDS, max(2 * season, season + horizon), start))


def windows(judged: Forecaster, window: pd.DataFrame, forecasts: np.ndarray) -> list[dict[str, Any]]:
    """Per shown series: its last values before the held-out window, the window's actual values and the judged
    fit's forecasts of them, period by period (a missing period is null)."""
    from shared.forecasting.series import series_keys, series_name

    spec, horizon = judged.spec, judged.spec.horizon
    keys = series_keys(window, spec)
    times = pd.DatetimeIndex(pd.to_datetime(window[spec.time]))
    by_size = sorted(judged.series, key=lambda s: -s.scale)
    shown = by_size if len(by_size) <= SHOWN_SERIES else \
        by_size[: SHOWN_SERIES - SHOWN_SERIES // 3] + by_size[-(SHOWN_SERIES // 3):]
    out = []
    for s in shown:
        before = s.y[-max(2 * judged.frequency.season, 2 * horizon, 8):]
        actual: list[float | None] = [None] * horizon
        forecast: list[float | None] = [None] * horizon
        for row in np.flatnonzero([key == s.key for key in keys]):
            step = int(np.rint(judged.frequency.positions(times[[row]], judged.origin)[0])) - s.end
            if 1 <= step <= horizon:
                actual[step - 1] = float(window[spec.target].iloc[row])
                forecast[step - 1] = float(forecasts[row])
        first = judged.frequency.times(judged.origin, np.array([s.end - len(before) + 1]))[0]
        last = judged.frequency.times(judged.origin, np.array([s.end + horizon]))[0]
        out.append({"series": series_name(s.key, spec), "history": [float(v) for v in before], "actual": actual,
                    "forecast": forecast, "first": _iso(first), "last": _iso(last)})
    return out


def example(final: Forecaster, columns: tuple[Column, ...]) -> dict[str, Any]:
    """A request row the model answers: the first series' next period, its known features as last seen."""
    spec, s = final.spec, final.series[0]
    kinds = {c.name: c.kind for c in columns}
    row: dict[str, Any] = {spec.time: _iso(final.frequency.times(final.origin, np.array([s.end + 1]))[0])}
    row.update({column: _typed(key, kinds[column]) for column, key in zip(spec.series, s.key, strict=True)})
    seen = s.known[: len(s.y)]
    for j, column in enumerate(spec.known):
        present = seen[np.isfinite(seen[:, j]), j]
        value = float(present[-1]) if len(present) else float("nan")
        codes = final.encoding.categories.get(column)
        row[column] = None if not np.isfinite(value) else codes[int(value)] if codes is not None \
            else _typed(value, kinds[column])
    return row


def _typed(value: Any, kind: str) -> Any:
    """A value as a JSON request would carry it for a column of ``kind``."""
    if kind == "integer":
        return int(float(value))
    if kind == "number":
        return float(value)
    if kind == "boolean":
        return bool(float(value))
    return str(value)


def _iso(value: Any) -> str:
    stamp = pd.Timestamp(value)
    return str(stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat())
