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
    values = numbers(target)
    if values is None:
        example = next((v for v in target if pd.isna(pd.to_numeric(str(v).strip(), errors="coerce"))), None) \
            if requested is Task.REGRESSION else None
        return decide(str(target.name), requested, numeric=False, example=example)
    return decide(str(target.name), requested, numeric=True, whole=bool((values == np.round(values)).all()),
                  distinct=int(values.nunique()))


def decide(name: str, requested: Task | None, *, numeric: bool, whole: bool = False, distinct: int = 0,
           example: object = None, more: bool = False) -> TaskChoice:
    """The task from what is known of the target: whether every value is a finite number, whether all are whole,
    how many distinct ones (``more``: at least that many, when counting stopped), and a value that is no number
    (for the reason a regression is refused). Both readers of an upload, whole or in chunks, decide here."""
    if requested is Task.REGRESSION:
        if not numeric:
            raise DatasetRejected(f"metadata 'task' asks for regression, but target {name!r} is not numeric "
                                  f"(it holds {example!r})", "target_not_numeric")
        return TaskChoice(Task.REGRESSION, "set by the upload's metadata 'task'")
    if requested is Task.CLASSIFICATION:
        return TaskChoice(Task.CLASSIFICATION, "set by the upload's metadata 'task'")
    if not numeric:
        return TaskChoice(Task.CLASSIFICATION, f"target {name!r} holds labels, not numbers")
    counted = f"more than {distinct:,}" if more else f"{distinct:,}"
    if not whole:
        return TaskChoice(Task.REGRESSION, f"target {name!r} holds fractional numbers ({counted} distinct values)")
    if distinct <= MAX_CODED_CLASSES and not more:
        return TaskChoice(Task.CLASSIFICATION, f"target {name!r} holds {distinct} distinct whole numbers "
                          f"(at most {MAX_CODED_CLASSES}: read as class codes; set metadata 'task' to regression "
                          "to predict them as numbers)")
    return TaskChoice(Task.REGRESSION, f"target {name!r} holds {counted} distinct whole numbers "
                      f"(more than {MAX_CODED_CLASSES}: read as quantities)")
