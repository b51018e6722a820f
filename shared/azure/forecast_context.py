"""The context a deployed forecaster answers from: the rows of its dataset version that training did not see.

AutoML trains a forecaster on ``train.csv`` only: each series' last ``horizon``
periods are held out (``holdout.csv``, ``shared.azure.holdout``) to judge it.
On its own, its forecasts therefore start where ``train.csv`` ends, ``horizon``
periods before the uploaded data does. AutoML's ``forecast(X, y)`` takes
context rows for that gap: rows with the actual target in ``y`` move the
forecast origin to their last time, and rows whose ``y`` is NaN are forecast
from there.

So each deployment of a forecaster (online and batch) ships its version's
held-out rows beside the scoring script: the deployment's code folder is a
copy of ``endpoint_code`` with

- ``context.csv``: the held-out rows, with the model's feature columns and the
  target (the actual values);
- ``context.json``: which column is the target, the time column and the series
  id columns.

Its size is bounded: ``holdout.csv`` holds at most ``horizon`` rows per series,
and at most its first ``holdout.COMPARED_BYTES`` are read (the gate compares on
the first ``holdout.COMPARED_ROWS`` of the same rows). The scoring script (``endpoint_code/score.py``) puts, before
a series' requested rows, its context rows that are earlier than the earliest
time asked of that series: a request for the held-out periods themselves gets
no actual value of them, so the gate still compares champion and challenger on
forecasts from where training ended.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.azure import entities
from shared.azure.blobstore import BlobStore
from shared.azure.datasets import held_out_rows
from shared.ports import DatasetRegistry, ModelVersion

CONTEXT_FILE = "context.csv"  # the names score.py looks for beside itself
CONTEXT_SPEC = "context.json"
CONTEXT_ROWS = 1_000_000  # a ceiling on the rows shipped; the byte limit of the read comes first in practice


def context_csv(model: ModelVersion, datasets: DatasetRegistry,
                store: BlobStore) -> tuple[str, dict[str, object]] | None:
    """The context of a forecaster's deployment: ``context.csv``'s text and ``context.json``'s content; None for a
    model of another task, or when its dataset version held no rows out."""
    dataset = datasets.get(model.dataset_name, model.dataset_version or None)
    windows = dataset.schema.time_series if dataset is not None else None
    records = held_out_rows(store, dataset, CONTEXT_ROWS) if dataset is not None and windows is not None else []
    if dataset is None or windows is None or not records:
        return None
    excluded = set(filter(None, model.tags.get("excluded_columns", "").split(",")))
    target = dataset.schema.target
    columns = [c.name for c in dataset.schema.features if c.name not in excluded and c.name in records[0]]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([*columns, target])
    for row in records:
        writer.writerow(["" if row.get(name) is None else row.get(name) for name in [*columns, target]])
    spec: dict[str, object] = {
        "target": target, "time_column": windows.time_column, "series": list(windows.series),
        "horizon": windows.horizon, "rows": len(records),
        "source": f"dataset {dataset.name} v{dataset.version}: each series' last {windows.horizon} period(s), "
                  "held out of training"}
    return text.getvalue(), spec


@contextmanager
def code_folder(model: ModelVersion, datasets: DatasetRegistry, store: BlobStore) -> Iterator[Path]:
    """The code folder of ``model``'s deployment: ``endpoint_code`` itself, or for a forecaster a temporary copy
    with its context beside the scripts (the SDK uploads the folder while the deployment is created)."""
    found = context_csv(model, datasets, store)
    if found is None:
        yield entities.SCORING_CODE
        return
    text, spec = found
    with tempfile.TemporaryDirectory(prefix="scoring-code-") as temporary:
        folder = Path(temporary) / "code"
        folder.mkdir()
        for name in (entities.SCORING_SCRIPT, entities.BATCH_SCORING_SCRIPT):
            shutil.copyfile(entities.SCORING_CODE / name, folder / name)
        (folder / CONTEXT_FILE).write_text(text, encoding="utf-8")
        (folder / CONTEXT_SPEC).write_text(json.dumps(spec, indent=1), encoding="utf-8")
        yield folder
