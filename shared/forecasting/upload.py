"""A forecasting upload at ingest: its series read in chunks, checked, and its frequency inferred.

The checks are those of ``series.check_series`` (duplicate times, an irregular grid, gaps, history too short for
the horizon) plus one for leakage: a column that holds the target of a later period would be unknown when the
model forecasts. Each one rejects the upload with its reason, or is a finding shown with the guardrails.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from shared import csv_stream
from shared.errors import DatasetRejected
from shared.forecasting.series import (
    SHOWN_FINDINGS,
    Finding,
    ForecastSpec,
    check_series,
    reject_if_needed,
    series_groups,
    unit,
)
from shared.schema import Schema, TimeSeries

MAX_ROWS = 2_000_000  # forecasting reads every row of the time, id and target columns, whatever its size
MAX_SERIES = 10_000  # each series is checked, and forecast by the per-series candidates, one at a time
LEAK_SHARE = 0.95  # of a series' comparable rows, matching the target some periods later
LEAK_MIN_ROWS = 10
LEAK_MAX_LAG = 12  # periods ahead a copied target is looked for (the horizon, at most this)


def spec_of(schema: Schema, settings: TimeSeries, excluded: tuple[str, ...] = ()) -> ForecastSpec:
    """The forecaster's view of a dataset: every feature but the time, the ids and the excluded is known in
    advance (Azure AutoML's forecasting reads the other columns so too: their future values come with a request)."""
    known = tuple(c for c in settings.known(schema.features) if c not in excluded)
    return ForecastSpec(settings.time_column, schema.target, settings.horizon, settings.series, known)


def read_series(source: BinaryIO, schema: Schema, spec: ForecastSpec, max_bytes: int) -> pd.DataFrame:
    """The rows with a target, the forecast's columns only, typed: times and numbers parsed a chunk at a time."""
    present = {c.name for c in schema.columns}
    missing = [c for c in (spec.time, *spec.series) if c not in present]
    if missing:
        raise DatasetRejected(f"forecasting column(s) not in the file: {', '.join(map(repr, missing))} (metadata "
                              "'time_column' and 'series' name them)", "missing_column")
    numbers = {c.name for c in schema.columns if c.is_numeric}
    wanted = [spec.time, *spec.series, spec.target, *spec.known]
    parts, rows = [], 0
    for chunk in csv_stream.portable_frames(source, schema, max_bytes=max_bytes):
        rows += len(chunk)
        if rows > MAX_ROWS:
            raise DatasetRejected(f"more than {MAX_ROWS:,} rows: forecasting reads every row of a series into "
                                  "memory; split the file by series into several models", "too_large")
        part = chunk[wanted].copy()
        part[spec.time] = pd.to_datetime(part[spec.time], errors="coerce", format="mixed")
        for column in (spec.target, *[c for c in spec.known if c in numbers]):
            part[column] = pd.to_numeric(part[column], errors="coerce")
        parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=wanted)


def check(source: BinaryIO, schema: Schema, settings: TimeSeries, excluded: tuple[str, ...], max_bytes: int
          ) -> tuple[TimeSeries, list[dict[str, Any]]]:
    """The settings with the inferred frequency, and the findings; DatasetRejected with every reason to refuse."""
    spec = spec_of(schema, settings, excluded)
    frame = read_series(source, schema, spec, max_bytes)
    unreadable = frame[spec.time].isna()
    if unreadable.any():
        raise DatasetRejected(f"{int(unreadable.sum())} row(s) have no readable date in {spec.time!r}: every row "
                              "of a forecast needs its time", "bad_time")
    if spec.series:
        count = len(frame[list(spec.series)].drop_duplicates())
        if count > MAX_SERIES:
            raise DatasetRejected(f"{count:,} series (distinct {', '.join(spec.series)}): at most {MAX_SERIES:,} are "
                                  "forecast by one model; do the 'series' columns name each series, and only that?",
                                  "too_many_series")
    checked = check_series(frame, spec)
    reject_if_needed(checked)
    leaks = leaked_targets(frame, spec)
    if leaks:
        raise DatasetRejected("; ".join(leaks), "future_target")
    frequency = checked.frequency
    findings: list[dict[str, Any]] = [{
        "check": "frequency", "severity": "info", "details": {"frequency": frequency.name, "anchor": frequency.anchor},
        "message": f"Frequency: {frequency.name} ({frequency.reason}); the horizon of {spec.horizon} period(s) "
                   f"reaches {_reach(frequency.name, spec.horizon)} ahead."}]
    by_code: dict[str, list[Finding]] = {}
    for finding in checked.findings:
        by_code.setdefault(finding.code, []).append(finding)
    for code, found in by_code.items():  # a few named, the rest counted: thousands of series stay one screen
        findings += [{"check": code, "severity": "warning", "details": {"series": f.series}, "message": f.message}
                     for f in found[:SHOWN_FINDINGS]]
        if len(found) > SHOWN_FINDINGS:
            findings.append({"check": code, "severity": "warning", "details": {"more": len(found) - SHOWN_FINDINGS},
                             "message": f"{len(found) - SHOWN_FINDINGS} more series like these ({code})."})
    return replace(settings, frequency=frequency.name, anchor=frequency.anchor), findings


def _reach(frequency: str, horizon: int) -> str:
    return f"{horizon} {unit(frequency)}{'s' if horizon != 1 else ''}"


def leaked_targets(frame: pd.DataFrame, spec: ForecastSpec) -> list[str]:
    """The numeric known columns that hold the target of a later period: a forecast would need the future."""
    numeric = [c for c in spec.known if pd.api.types.is_numeric_dtype(frame[c])]
    if not numeric:
        return []
    matched: dict[tuple[str, int], list[int]] = {}  # (column, lag) -> [matching rows, comparable rows]
    for _, part in series_groups(frame, spec):
        part = part.sort_values(spec.time)
        y = part[spec.target].to_numpy(dtype=np.float64)
        for column in numeric:
            x = part[column].to_numpy(dtype=np.float64)
            for lag in range(1, min(spec.horizon, LEAK_MAX_LAG) + 1):
                if len(y) <= lag:
                    break
                later, now = y[lag:], x[:-lag]
                both = np.isfinite(later) & np.isfinite(now)
                tally = matched.setdefault((column, lag), [0, 0])
                tally[0] += int(np.isclose(now[both], later[both], rtol=1e-9, atol=1e-12).sum())
                tally[1] += int(both.sum())
    found, said = [], set()
    for (column, lag), (same, compared) in sorted(matched.items(), key=lambda item: item[0][1]):
        if column not in said and compared >= LEAK_MIN_ROWS and same >= LEAK_SHARE * compared:
            said.add(column)
            found.append(f"column {column!r} holds the target {spec.target!r} of {lag} period(s) later in "
                         f"{same / compared:.0%} of rows: it would not be known when forecasting; leave it out "
                         "(metadata 'exclude') or shift it to the time it is known")
    return found

