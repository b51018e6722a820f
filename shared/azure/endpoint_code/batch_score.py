"""The scoring script of the app's batch deployments: a dropped CSV scored in chunks, in the local backend's form.

It runs in an Azure ML batch deployment (the registered MLflow model, in the
curated AutoML environment it was trained in) and imports nothing of the app
but its sibling ``score.py``, the online deployments' script, whose model
loading, casting and answers it reuses. Azure ML calls ``init()`` once and
``run(mini_batch)`` with the paths of the input files (here the one file the
app submitted).

For each file it writes, into the job's output folder (``AZUREML_BI_OUTPUT_PATH``;
the deployment's output action is ``SummaryOnly``, so Azure ML writes nothing
else there but its own summary):

- ``scored.csv``: the input columns, ``prediction`` and, for a classifier,
  ``probability_<class>`` per class, written a chunk at a time;
- ``summary.json``: rows, chunks, the label counts (or the predictions' min,
  mean and max), the numeric cells that were not numbers, the seconds spent;
  or ``{"error": ...}`` when the file lacks the model's columns.

A forecasting model reads the file whole, in one chunk: a series' future rows
are forecast together, from the end of its history: the end of the uploaded
data, as the deployment's context (``context.csv``, the rows training did not
see) comes before them, as in ``score.py``. A row it cannot forecast
(a time beyond its horizon, a series it never saw) keeps an empty prediction,
and the summary's ``not_forecast`` says how many there were and which (their
row number in the file, counting from 1 after the header, and their time).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import score  # the sibling script: the same folder is uploaded for both kinds of deployment

SCORED_FILE = "scored.csv"
SUMMARY_FILE = "summary.json"
NUMERIC_TYPES = ("double", "float", "long", "integer")
NOT_FORECAST_SHOWN = 10  # rows a forecaster could not answer, named in the summary
_model: Any = None
_types: dict[str, str] = {}
_context: score.Context | None = None
_output = Path(".")


def init() -> None:
    global _model, _types, _context, _output
    _model, _types = score.load(Path(os.environ.get("AZUREML_MODEL_DIR", ".")))
    _context = score.load_context(Path(__file__).resolve().parent, _types)
    _output = Path(os.environ.get("AZUREML_BI_OUTPUT_PATH", "."))


def delimiter(head: bytes) -> str:
    """``;`` when the header has more of them than commas (the local backend reads drops the same way)."""
    first = head.split(b"\n", 1)[0]
    return ";" if first.count(b";") > first.count(b",") else ","


def _decimal_commas(chunk: pd.DataFrame, numeric: list[str]) -> None:
    """In a ``;`` file, numbers may be written with decimal commas, as uploads for training may be."""
    for name in numeric:
        column = chunk[name]
        if column.dtype == object:
            chunk[name] = column.map(lambda v: v.strip().replace(",", ".") if isinstance(v, str) else v)


def score_file(path: Path, output: Path, chunk_rows: int) -> dict[str, Any]:
    """Score ``path`` chunk by chunk into ``output/scored.csv``; returns the summary."""
    started = time.perf_counter()
    with path.open("rb") as handle:
        sep = delimiter(handle.read(65536))
    features = list(_types)
    numeric = [n for n, kind in _types.items() if kind in NUMERIC_TYPES]
    counts: Counter[str] = Counter()
    low, high, total = float("inf"), float("-inf"), 0.0
    rows = chunks = coerced = not_finite = 0
    regression = False
    forecaster = callable(getattr(_model, "forecast", None))
    time_column = str(getattr(_model, "time_column_name", "") or "")
    unanswered: list[dict[str, Any]] = []
    reader = pd.read_csv(path, sep=sep, chunksize=None if forecaster else chunk_rows, encoding="utf-8-sig",
                         low_memory=False, na_values=["?"], dtype={n: object for n in numeric})
    if forecaster:
        reader = iter([reader])
    for chunk in reader:
        if chunks == 0:
            missing = [name for name in features if name not in chunk.columns]
            if missing:
                return {"error": f"the file lacks the model's column(s): {', '.join(missing)}"}
        if sep == ";":
            _decimal_commas(chunk, numeric)
        before = int(chunk[numeric].notna().sum().sum()) if numeric else 0
        rows_in = chunk[features].copy()
        for name in numeric:  # a cell that is not a number is scored as missing, and counted, as locally
            rows_in[name] = pd.to_numeric(rows_in[name], errors="coerce")
        coerced += before - (int(rows_in[numeric].notna().sum().sum()) if numeric else 0)
        table = score.frame({"input_data": {"columns": features, "data": rows_in.astype(object).where(
            rows_in.notna(), None).to_numpy().tolist()}}, _types)
        answer = score.predict(_model, table, _context)
        predictions = np.asarray(answer["predictions"])
        chunk["prediction"] = predictions
        if "probabilities" in answer:
            values = np.asarray(answer["probabilities"], dtype="float64")
            for index, name in enumerate(answer["classes"]):
                chunk[f"probability_{name}"] = values[:, index].round(6)
            counts.update(str(label) for label in predictions)
        else:
            regression = True
            numbers = predictions.astype("float64")
            finite = np.isfinite(numbers)  # beyond float range: an empty cell, as the app's own batch scoring
            chunk["prediction"] = np.where(finite, numbers, np.nan)
            if finite.any():
                low, high = min(low, float(numbers[finite].min())), max(high, float(numbers[finite].max()))
                total += float(numbers[finite].sum())
            not_finite += int((~finite).sum())
            if forecaster:
                for index in np.flatnonzero(~finite)[:NOT_FORECAST_SHOWN - len(unanswered)]:
                    row: dict[str, Any] = {"row": rows + int(index) + 1}
                    if time_column in chunk.columns:
                        row[time_column] = str(chunk[time_column].iloc[index])
                    unanswered.append(row)
        with (output / SCORED_FILE).open("w" if chunks == 0 else "a", encoding="utf-8", newline="") as scored:
            scored.write(chunk.to_csv(index=False, header=chunks == 0))
        rows += len(chunk)
        chunks += 1
    seconds = time.perf_counter() - started
    summary: dict[str, Any] = {"rows": rows, "chunks": chunks, "predictions": dict(counts),
                               "values_not_numeric": coerced, "seconds": round(seconds, 3),
                               "rows_per_second": round(rows / seconds) if seconds else None}
    if regression and rows > not_finite:
        summary["predictions"] = {"min": round(low, 6), "mean": round(total / (rows - not_finite), 6),
                                  "max": round(high, 6), **({"not_finite": not_finite} if not_finite else {})}
    if forecaster and not_finite:
        summary["not_forecast"] = {
            "rows": not_finite, "first": unanswered,
            "reason": "the model has no forecast for these rows: a time beyond its horizon from the end of its "
                      "series' history, or a series it was not trained on; their prediction is empty"}
    return summary


def run(mini_batch: list[str]) -> list[str]:
    chunk_rows = int(os.environ.get("BATCH_CHUNK_ROWS", "50000"))
    for name in mini_batch:
        summary = score_file(Path(name), _output, chunk_rows)
        (_output / SUMMARY_FILE).write_text(json.dumps(summary), encoding="utf-8")
    return list(mini_batch)
