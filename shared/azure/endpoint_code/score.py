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
_model: Any = None
_types: dict[str, str] = {}


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
    global _model, _types
    _model, _types = load(Path(os.environ.get("AZUREML_MODEL_DIR", ".")))


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


def forecast(model: Any, table: pd.DataFrame) -> dict[str, Any]:
    """A forecasting model's number per row, in the rows' order; null where it has none."""
    time_column = getattr(model, "time_column_name", None)
    if isinstance(time_column, str) and time_column in table.columns:
        table = table.assign(**{time_column: _wall_clock(table[time_column])})
    # ignore_data_errors: a row that cannot be forecast is NaN rather than the whole request failing
    values, _ = model.forecast(table, ignore_data_errors=True)
    numbers = np.asarray(values, dtype="float64").reshape(-1)
    if len(numbers) != len(table):
        raise ValueError(f"the model forecast {len(numbers)} values for {len(table)} rows")
    return {"predictions": [float(v) if np.isfinite(v) else None for v in numbers]}


def _wall_clock(values: pd.Series) -> pd.Series:
    """Times as datetimes, read as written: an offset (Z, +02:00) is dropped, not applied, as training read them."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize(None) if getattr(values.dt, "tz", None) is not None else values
    text = values.astype("string").str.strip()
    timed = text.str.contains(r"\d[T ]\d{2}:\d{2}", regex=True).fillna(False).astype(bool)
    text = text.where(~timed, text.str.replace(r"(?:Z|[+-]\d{2}:?\d{2})$", "", regex=True))
    return pd.Series(pd.to_datetime(text, errors="coerce", format="ISO8601"), index=values.index)


def predict(model: Any, table: pd.DataFrame) -> dict[str, Any]:
    """Labels, and for a model that gives them, the class probabilities with the classes in column order; for a
    forecasting model, its forecasts."""
    if callable(getattr(model, "forecast", None)):
        return forecast(model, table)
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
    return predict(_model, frame(body, _types))
