"""How an upload's path and metadata become a model name, a target, a task and a metric."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote

from shared import metrics, tasks
from shared.errors import DatasetRejected
from shared.printable import has_control
from shared.schema import TimeSeries

# Matched whole (fullmatch): with re.match, '$' also matches before a final newline, so 'nl\n' would pass.
_VALID_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_HORIZON = 1000  # periods: beyond that a forecast says little, and the backtest would need a long history
# Each forecasting setting under its short name and under Azure AutoML's (either may be given, not both).
FORECAST_KEYS = {"time_column": "time_column_name", "horizon": "forecast_horizon",
                 "series": "time_series_id_column_names"}
MODEL_NAME_PATTERN = f"^{_VALID_NAME.pattern}$"  # as the OpenAPI document states it (JSON Schema: ECMA-262)


def is_model_name(text: str) -> bool:
    """The rule of ``model_name_for``, on the whole text."""
    return _VALID_NAME.fullmatch(text) is not None


@dataclass(frozen=True)
class UploadSpec:
    model_name: str
    target: str
    metric: str | None  # None: the task's default, known once the file is read
    excluded_columns: tuple[str, ...]
    task: tasks.Task | None = None  # None: decided by the target's values
    time_series: TimeSeries | None = None  # forecasting: its time column, horizon and series ids


def _refuse_control_characters(blob_path: str, part: str) -> None:
    """A newline or an escape sequence in a name forges log lines and drives terminals: refused, named escaped."""
    control = has_control(part)
    if control:
        raise DatasetRejected(f"blob name {blob_path!r} holds a control character ({control}): rename the file",
                              "bad_name")


def model_name_for(blob_path: str) -> str:
    """``bank/jan.csv`` -> ``bank``; ``jan.csv`` at the root -> ``jan``."""
    path = PurePosixPath(blob_path)
    parts = [p for p in path.parts if p not in ("", "/")]
    if any(p in (".", "..") for p in parts):
        raise DatasetRejected(f"blob name {blob_path!r} contains a relative path segment", "bad_name")
    name = parts[0] if len(parts) > 1 else path.stem
    _refuse_control_characters(blob_path, name)
    if not _VALID_NAME.fullmatch(name):
        raise DatasetRejected(
            f"model name {name!r} (from {blob_path!r}) must be 1-64 letters, digits, '-', '_' or '.'", "bad_name")
    return name


def spec_for(blob_path: str, metadata: dict[str, str] | None, default_target: str) -> UploadSpec:
    """Blob metadata is ASCII: a column name beyond it (``Résultat``) comes percent-encoded as UTF-8
    (``R%C3%A9sultat``), as ``cli upload`` sends it, and a comma inside one as ``%2C``."""
    model_name = model_name_for(blob_path)
    _refuse_control_characters(blob_path, blob_path)  # anywhere in the path, not only in the model's name
    meta = {k.lower(): v for k, v in (metadata or {}).items()}
    metric: str | None = None
    if meta.get("metric", "").strip():
        try:
            metric = metrics.resolve(meta["metric"].strip()).name
        except ValueError as error:
            raise DatasetRejected(str(error), "bad_metric") from None
    excluded = _names(meta.get("exclude", ""))
    target = unquote(meta["target"]) if "target" in meta else default_target
    task = tasks.parse(meta.get("task"))
    time_series = _time_series(meta, task, target.strip(), excluded)
    return UploadSpec(model_name, target.strip(), metric, excluded,
                      tasks.Task.FORECASTING if time_series is not None else task, time_series)


def _names(listed: str) -> tuple[str, ...]:
    return tuple(unquote(c).strip() for c in listed.split(",") if c.strip())


def _setting(meta: dict[str, str], short: str) -> str | None:
    long = FORECAST_KEYS[short]
    if short in meta and long in meta:
        raise DatasetRejected(f"metadata gives both {short!r} and {long!r}: give one", "bad_forecast_settings")
    value = meta.get(short, meta.get(long))
    return value.strip() if value is not None and value.strip() else None


def _time_series(meta: dict[str, str], task: tasks.Task | None, target: str,
                 excluded: tuple[str, ...]) -> TimeSeries | None:
    """The forecasting settings: a time column makes an upload a forecast (its task may say so, or nothing)."""
    time_column = _setting(meta, "time_column")
    horizon_text, series_text = _setting(meta, "horizon"), _setting(meta, "series")
    if time_column is None:
        if task is tasks.Task.FORECASTING:
            raise DatasetRejected("metadata 'task' is forecasting, but no 'time_column' (time_column_name) names "
                                  "the column of dates", "bad_forecast_settings")
        given = [name for name, value in (("horizon", horizon_text), ("series", series_text)) if value]
        if given:
            said = " and ".join(map(repr, given)) + (" are forecasting settings" if len(given) > 1
                                                     else " is a forecasting setting")
            raise DatasetRejected(f"metadata {said}: give 'time_column' too (and 'task' forecasting, or no task)",
                                  "bad_forecast_settings")
        return None
    if task not in (None, tasks.Task.FORECASTING):
        raise DatasetRejected(f"metadata 'time_column' is a forecasting setting, but 'task' is {task}",
                              "bad_forecast_settings")
    time_column = unquote(time_column).strip()
    horizon = 1  # Azure AutoML's default
    if horizon_text is not None:
        try:
            horizon = int(horizon_text)
        except ValueError:
            horizon = 0
        if not 1 <= horizon <= MAX_HORIZON or horizon_text.strip() != str(horizon):
            raise DatasetRejected(f"metadata 'horizon' is {horizon_text!r}: give a whole number of periods from 1 "
                                  f"to {MAX_HORIZON}", "bad_forecast_settings")
    series = _names(series_text or "")
    roles = [("the time column", (time_column,)), ("a series id", series), ("excluded", excluded)]
    for label, names in roles:
        if target in names:
            raise DatasetRejected(f"the target {target!r} cannot also be {label}", "bad_forecast_settings")
    clash = sorted((set(series) | set(excluded)) & {time_column} | set(series) & set(excluded))
    if clash or len(set(series)) != len(series):
        twice = clash or sorted({c for c in series if series.count(c) > 1})
        raise DatasetRejected(f"column(s) {', '.join(map(repr, twice))} given more than one forecasting role "
                              "(time column, series id, excluded)", "bad_forecast_settings")
    return TimeSeries(time_column, horizon, series)
