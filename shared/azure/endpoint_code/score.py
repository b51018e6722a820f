"""The scoring script of the app's online deployments: labels and class probabilities, or numbers, from an AutoML
model.

It runs inside the managed online deployment, in the curated AutoML environment
the model was trained in, and imports nothing of the app. Azure ML's inference
server calls ``init()`` once and ``run(body)`` per request.

An AutoML model deployed as MLflow without a script answers labels only. This
script loads the same MLflow model folder (the sklearn flavour's pickle, which
AutoML writes) and answers, per row, the label and, for a classifier, the
probability of each class:

    request:  {"input_data": {"columns": [...], "index": [...], "data": [[...], ...]}}
    answer:   {"predictions": [...], "classes": [...], "probabilities": [[...], ...]}

Columns are cast to the types of the model's MLflow signature first, as
MLflow's own server does, so JSON numbers, text and dates reach the model as
it saw them in training.

A forecasting model answers one number per row: each row names a future time
(its time column), its series (the id columns) and the features known ahead.
AutoML's forecasting pipeline forecasts through ``forecast()``, not
``predict()`` (azureml-examples, ``automl-forecasting-task-energy-demand/
mlflow-model-local-inference-test.ipynb``), and reads its time column as
datetimes, whatever the signature says of it. A row it cannot forecast (a time
beyond its horizon, a series it never saw) answers null, as a number that is
not finite does.

A forecaster trains on all but each series' last ``horizon`` periods, which are
held out to judge it; its deployment ships those rows, with their actual
values, beside this script (``context.csv``, described by ``context.json``).
Before a series' requested rows, the script puts its context rows earlier than
the earliest time asked of that series, with their actual values in ``y`` and
NaN for the requested rows, and calls ``forecast(X, y)`` (azureml-examples,
``automl-forecasting-forecast-function/auto-ml-forecasting-function-gap-local-
inference.ipynb``: the forecast origin is the last time with a known ``y``). So
the periods right after the uploaded data are forecast from its end, and a
request for held-out periods gets none of their actual values. Only the
requested rows are answered, in their order.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

MODEL_FILE = "MLmodel"
CONTEXT_FILE = "context.csv"  # beside this script in a forecaster's deployment
CONTEXT_SPEC = "context.json"
_model: Any = None
_types: dict[str, str] = {}
_context: Context | None = None


class Context:
    """A forecaster's context rows: the features cast as requests are, the actual target values, and how rows
    are told apart (the time column, the series id columns)."""

    def __init__(self, table: pd.DataFrame, y: np.ndarray, time_column: str, series: list[str]) -> None:
        self.table = table
        self.y = y
        self.time_column = time_column
        self.series = series
        self.row_keys = self.keys(table)  # each context row's series, once: requests only look them up

    def keys(self, table: pd.DataFrame) -> pd.Series:
        """Each row's series as one string (its id cells, cast as the signature says); "" for one series."""
        if not self.series:
            return pd.Series("", index=table.index, dtype=object)
        cells = pd.DataFrame({n: table[n] if n in table.columns else None for n in self.series}, index=table.index)
        return cells.astype(object).where(cells.notna(), "").astype(str).agg("\x1f".join, axis=1)

    def before(self, table: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """The context rows of each series ``table`` asks for that are earlier than the earliest time it asks of
        that series (the requested periods and later ones are never given), in ``table``'s columns."""
        times = table[self.time_column] if self.time_column in table.columns else None
        if times is None or self.time_column not in self.table.columns:
            return self.table.iloc[:0], self.y[:0]
        earliest = pd.Series(times.to_numpy()).groupby(self.keys(table).to_numpy()).min()
        limits = pd.Series(self.row_keys.map(earliest), index=self.table.index)
        limits = pd.to_datetime(limits, errors="coerce")
        chosen = (self.table[self.time_column] < limits).to_numpy(dtype=bool)  # NaT: a series not asked for
        rows = self.table.loc[chosen].reindex(columns=table.columns)
        return rows, self.y[chosen]


def load_context(folder: Path, types: dict[str, str]) -> Context | None:
    """The context shipped beside the script (``context.csv`` and ``context.json``); None without it."""
    spec_path = folder / CONTEXT_SPEC
    if not spec_path.is_file() or not (folder / CONTEXT_FILE).is_file():
        return None
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    raw = pd.read_csv(folder / CONTEXT_FILE, dtype=str, keep_default_na=False, encoding="utf-8")
    target, time_column = str(spec["target"]), str(spec["time_column"])
    columns = [c for c in raw.columns if c != target]
    cells = raw[columns].astype(object).where(raw[columns] != "", None)
    table = frame({"input_data": {"columns": columns, "data": cells.to_numpy().tolist()}}, types)
    if time_column in table.columns:
        table[time_column] = _wall_clock(table[time_column])
    y = pd.to_numeric(raw[target], errors="coerce").to_numpy(dtype="float64")
    return Context(table, y, time_column, [str(n) for n in spec.get("series", [])])


def _model_folder(root: Path) -> Path:
    """The folder holding the MLmodel file: the registered folder itself or one level below it."""
    found = sorted(root.rglob(MODEL_FILE), key=lambda p: len(p.parts))
    if not found:
        raise FileNotFoundError(f"no {MODEL_FILE} under {root}")
    return found[0].parent


def load(root: Path) -> tuple[Any, dict[str, str]]:
    """The model object and the column types of its signature, from an MLflow model folder."""
    folder = _model_folder(root)
    spec = yaml.safe_load((folder / MODEL_FILE).read_text(encoding="utf-8"))
    flavor = spec.get("flavors", {}).get("sklearn", {})
    pickled = folder / str(flavor.get("pickled_model", "model.pkl"))
    if flavor.get("serialization_format") == "cloudpickle":
        import cloudpickle  # installed wherever MLflow is: it wrote the file

        with pickled.open("rb") as handle:
            model = cloudpickle.load(handle)
    else:
        with pickled.open("rb") as handle:
            model = pickle.load(handle)  # noqa: S301 - the workspace's own registered model
    inputs = (spec.get("signature") or {}).get("inputs") or "[]"
    columns = json.loads(inputs) if isinstance(inputs, str) else inputs
    return model, {str(c["name"]): str(c.get("type", "")) for c in columns if isinstance(c, dict) and "name" in c}


def init() -> None:
    global _model, _types, _context
    _model, _types = load(Path(os.environ.get("AZUREML_MODEL_DIR", ".")))
    _context = load_context(Path(__file__).resolve().parent, _types)


def frame(body: dict[str, Any], types: dict[str, str]) -> pd.DataFrame:
    """The request's rows as a DataFrame whose columns have the signature's types."""
    split = body.get("input_data")
    if not isinstance(split, dict) or not isinstance(split.get("columns"), list) \
            or not isinstance(split.get("data"), list):
        raise ValueError("expected {'input_data': {'columns': [...], 'data': [[...]]}}")
    table = pd.DataFrame(split["data"], columns=split["columns"])
    for name, kind in types.items():
        if name not in table.columns:
            continue
        if kind in ("double", "float", "long", "integer"):
            table[name] = pd.to_numeric(table[name], errors="coerce").astype("float64" if kind in (
                "double", "float") or table[name].isna().any() else "int64")
        elif kind == "boolean":
            table[name] = table[name].map(_boolean)
        elif kind == "datetime":
            table[name] = _wall_clock(table[name])
        elif kind == "string":
            table[name] = [None if v is None else str(v) for v in table[name]]
    return table


def _boolean(value: Any) -> Any:
    if isinstance(value, str):
        return {"true": True, "false": False, "1": True, "0": False}.get(value.strip().lower())
    return None if value is None else bool(value)


def forecast(model: Any, table: pd.DataFrame, context: Context | None = None) -> dict[str, Any]:
    """A forecasting model's number per row, in the rows' order; null where it has none. ``context``: rows with
    actual values that come before the requested ones (``Context.before``)."""
    time_column = getattr(model, "time_column_name", None) or (context.time_column if context else None)
    if isinstance(time_column, str) and time_column in table.columns:
        table = table.assign(**{time_column: _wall_clock(table[time_column])})
    X, y = table, np.full(len(table), np.nan)
    given = 0
    if context is not None:
        rows, actual = context.before(table)
        given = len(rows)
        if given:
            X = pd.concat([rows, table], ignore_index=True)
            y = np.concatenate([actual, y])
    # y: the actual values of the context rows, NaN for the rows to forecast. ignore_data_errors: a row that
    # cannot be forecast is NaN rather than the whole request failing.
    values, _ = model.forecast(X, y, ignore_data_errors=True)
    numbers = np.asarray(values, dtype="float64").reshape(-1)
    if len(numbers) != len(X):
        raise ValueError(f"the model forecast {len(numbers)} values for {len(X)} rows")
    return {"predictions": [float(v) if np.isfinite(v) else None for v in numbers[given:]]}


def _wall_clock(values: pd.Series) -> pd.Series:
    """Times as datetimes, read as written: an offset (Z, +02:00) is dropped, not applied, as training read them."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize(None) if getattr(values.dt, "tz", None) is not None else values
    text = values.astype("string").str.strip()
    timed = text.str.contains(r"\d[T ]\d{2}:\d{2}", regex=True).fillna(False).astype(bool)
    text = text.where(~timed, text.str.replace(r"(?:Z|[+-]\d{2}:?\d{2})$", "", regex=True))
    return pd.Series(pd.to_datetime(text, errors="coerce", format="ISO8601"), index=values.index)


def predict(model: Any, table: pd.DataFrame, context: Context | None = None) -> dict[str, Any]:
    """Labels, and for a model that gives them, the class probabilities with the classes in column order; for a
    forecasting model, its forecasts (from ``context`` where it comes before the rows)."""
    if callable(getattr(model, "forecast", None)):
        return forecast(model, table, context)
    labels = np.asarray(model.predict(table))
    answer: dict[str, Any] = {"predictions": labels.tolist()}
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(table)
        if isinstance(proba, pd.DataFrame):  # AutoML's pipelines name each column by its class
            classes, values = list(proba.columns), proba.to_numpy(dtype="float64")
        else:
            classes, values = list(getattr(model, "classes_", [])), np.asarray(proba, dtype="float64")
        answer["classes"] = [c.item() if hasattr(c, "item") else c for c in classes]
        answer["probabilities"] = values.tolist()
    return answer


def run(raw: str | bytes | dict[str, Any]) -> dict[str, Any]:
    body = raw if isinstance(raw, dict) else json.loads(raw)
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    return predict(_model, frame(body, _types), _context)
