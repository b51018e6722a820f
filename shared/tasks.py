"""Which kind of model a target asks for: classification (labels) or regression (numbers).

The upload's ``task`` metadata decides when given; otherwise the target's values
do, and the reason is kept so that the status says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from shared.errors import DatasetRejected

# Whole numbers with at most this many distinct values are class codes (ratings, counts of a few kinds).
MAX_CODED_CLASSES = 20


class Task(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


@dataclass(frozen=True)
class TaskChoice:
    task: Task
    reason: str


def parse(requested: str | None) -> Task | None:
    """The ``task`` metadata value, or None when absent; DatasetRejected when it names no task."""
    if requested is None or not requested.strip():
        return None
    try:
        return Task(requested.strip().lower())
    except ValueError:
        raise DatasetRejected(f"metadata 'task' is {requested!r}; use 'classification' or 'regression'",
                              "bad_task") from None


def numbers(target: pd.Series) -> pd.Series | None:
    """The target as floats when every present value is a finite number, else None."""
    if pd.api.types.is_bool_dtype(target):
        return None
    values = target.astype(float) if pd.api.types.is_numeric_dtype(target) else \
        pd.to_numeric(target.astype(str).str.strip(), errors="coerce")
    present = values[target.notna()].to_numpy(dtype=float)
    return values.astype(float) if np.isfinite(present).all() else None


def choose(target: pd.Series, requested: Task | None) -> TaskChoice:
    """Decide the task for a target column holding no missing values."""
    name = target.name
    values = numbers(target)
    if requested is Task.REGRESSION:
        if values is None:
            example = next((v for v in target if pd.isna(pd.to_numeric(str(v).strip(), errors="coerce"))), None)
            raise DatasetRejected(f"metadata 'task' asks for regression, but target {name!r} is not numeric "
                                  f"(it holds {example!r})", "target_not_numeric")
        return TaskChoice(Task.REGRESSION, "set by the upload's metadata 'task'")
    if requested is Task.CLASSIFICATION:
        return TaskChoice(Task.CLASSIFICATION, "set by the upload's metadata 'task'")
    if values is None:
        return TaskChoice(Task.CLASSIFICATION, f"target {name!r} holds labels, not numbers")
    distinct = int(values.nunique())
    if not (values == np.round(values)).all():
        return TaskChoice(Task.REGRESSION, f"target {name!r} holds fractional numbers ({distinct:,} distinct values)")
    if distinct <= MAX_CODED_CLASSES:
        return TaskChoice(Task.CLASSIFICATION, f"target {name!r} holds {distinct} distinct whole numbers "
                          f"(at most {MAX_CODED_CLASSES}: read as class codes; set metadata 'task' to regression "
                          "to predict them as numbers)")
    return TaskChoice(Task.REGRESSION, f"target {name!r} holds {distinct:,} distinct whole numbers "
                      f"(more than {MAX_CODED_CLASSES}: read as quantities)")
