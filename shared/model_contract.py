"""What a served model promises its callers: a typed signature, and the port every backend's model fills.

Scoring, batch scoring, drift, the OpenAPI document and the explanations all read
``ModelSignature``; each backend builds it from what it stores (the local model's
``model_meta.json``, the Azure dataset's schema) and hands out ``ServedModel``s.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from shared.schema import DATETIME, NO_DATE, Column, Schema, TimeSeries, date_parts
from shared.tasks import CLASSIFICATION, TaskKind, kind_of

if TYPE_CHECKING:
    import pandas as pd

# One 2-D column (rows x 1) per input: float32 for numbers (NaN when missing), object strings ("" when missing).
Columns = dict[str, NDArray[np.float32] | NDArray[np.object_]]
# What a model computes: class probabilities (rows x classes), or for regression the predictions (rows x 1).
Outputs = NDArray[np.float64]
# What a caller gets per row: a class label, or for regression a number.
Results = list[str] | list[float]


@dataclass(frozen=True)
class ModelSignature:
    """The model's inputs and outputs: every feature is required; ``ignored`` columns are optional and dropped."""

    features: tuple[Column, ...]
    target: str
    classes: tuple[str, ...]  # empty for regression
    threshold: float | None = None  # the positive class's cut-off, for two classes
    ignored: frozenset[str] = frozenset()  # excluded from training: accepted when sent, then dropped
    example: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    task: TaskKind = CLASSIFICATION
    time_series: TimeSeries | None = None  # a forecaster's: its time column, horizon, series ids and frequency

    # Built once per loaded model, not per request (a frozen dataclass keeps them in its __dict__).
    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.features)

    @cached_property
    def required(self) -> frozenset[str]:
        return frozenset(self.names)

    @cached_property
    def numeric(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.features if c.is_numeric)

    @cached_property
    def accepted(self) -> frozenset[str]:
        """Every column a request may send: the features and the ignored columns."""
        return self.required | self.ignored

    @cached_property
    def plan(self) -> tuple[tuple[str, str, frozenset[str], tuple[str, ...]], ...]:
        """Per feature, what scoring reads it as: (name, "number" | "boolean" | "datetime" | "text", known
        categories, the model inputs it fills)."""
        return tuple((c.name, c.kind if c.kind in ("boolean", DATETIME) else "number" if c.is_numeric else "text",
                      c.known, c.inputs) for c in self.features)

    @property
    def regression(self) -> bool:
        """Whether it answers numbers rather than classes (the task decides what follows from that)."""
        return not self.task.predicts_classes

    @property
    def positive_class(self) -> str:
        return self.classes[-1] if self.classes else ""

    def results(self, outputs: Outputs) -> Results:
        """The answer per row, as the task decodes it: the predicted number, or the class."""
        return self.task.results(outputs, self.classes, self.threshold)

    @classmethod
    def from_meta(cls, meta: Mapping[str, object]) -> ModelSignature:
        """From the JSON a trained model carries (``features``, ``target``, ``classes``, ...)."""
        schema = Schema.from_dict({"target": meta["target"], "columns": meta["features"]})
        threshold = meta.get("threshold")
        example = meta.get("example")
        return cls(schema.columns, str(meta["target"]), tuple(str(c) for c in _sequence(meta.get("classes"))),
                   float(threshold) if isinstance(threshold, (int, float)) else None,
                   frozenset(str(n) for n in _sequence(meta.get("ignored_columns"))),
                   MappingProxyType(dict(example)) if isinstance(example, Mapping) else MappingProxyType({}),
                   kind_of(str(meta.get("task") or "")),
                   _time_series(meta.get("time_series")))

    @classmethod
    def from_schema(cls, schema: Schema, classes: Sequence[str] = (),
                    ignored: frozenset[str] = frozenset()) -> ModelSignature:
        """From a dataset's schema alone (a model whose own description is not at hand)."""
        return cls(tuple(c for c in schema.features if c.name not in ignored), schema.target, tuple(classes),
                   ignored=ignored, task=schema.task, time_series=schema.time_series)


def _time_series(value: object) -> TimeSeries | None:
    return TimeSeries.from_dict(value) if isinstance(value, dict) else None


def _sequence(value: object) -> Sequence[object]:
    return value if isinstance(value, (list, tuple)) else ()


class Observer(Protocol):
    """Watches production traffic (``shared.drift.DriftMonitor``)."""

    def observe(self, columns: Columns, results: Results) -> None: ...


class ServedModel(abc.ABC):
    """A loaded model version, ready to predict from validated columns."""

    monitor: Observer | None = None  # watches production traffic; None for other versions
    # Why this model cannot explain its answers, naming what to use instead; None when it can.
    unavailable_explanations: str | None = None

    @property
    @abc.abstractmethod
    def name(self) -> str: ...

    @property
    @abc.abstractmethod
    def version(self) -> str: ...

    @property
    @abc.abstractmethod
    def signature(self) -> ModelSignature: ...

    @abc.abstractmethod
    def predict(self, columns: Columns) -> Outputs:
        """Per input row, the class probabilities in ``signature.classes`` order, or the predicted number."""

    def predict_rows(self, rows: Sequence[Mapping[str, object]], columns: Columns, probabilities: bool) -> Outputs:
        """As ``predict``, for the rows the columns were read from; a model served elsewhere takes the validated
        rows as the client sent them (``probabilities``: whether the caller will show them)."""
        return self.predict(columns)

    @abc.abstractmethod
    def explain(self, columns: Columns, results: Results) -> list[dict[str, object]]:
        """Per-row contributions of each input column toward the row's label (or predicted number)."""

    def results(self, outputs: Outputs) -> Results:
        return self.signature.results(outputs)


def columns_from_frame(frame: pd.DataFrame, signature: ModelSignature) -> Columns:
    """Model inputs from a DataFrame of raw rows: numbers coerced (NaN when not numeric), missing text ''."""
    import pandas as pd

    out: Columns = {}
    from shared.dataset_validation import boolean_values

    for column in signature.features:
        series = frame[column.name]
        flags = boolean_values(series) if column.kind == "boolean" else None
        if column.kind == DATETIME:  # a value that is no date is missing, as a number that is no number
            out.update(date_inputs(column, [_date_or_none(v) or NO_DATE for v in series]))
        elif flags is not None:
            out[column.name] = flags.to_numpy(dtype=np.float32).reshape(-1, 1)
        elif column.is_numeric:
            out[column.name] = pd.to_numeric(series, errors="coerce").to_numpy(
                dtype=np.float32, na_value=np.nan).reshape(-1, 1)
        else:
            out[column.name] = np.array(["" if _missing(v) else str(v) for v in series], dtype=object).reshape(-1, 1)
    return out


def date_inputs(column: Column, parts: Sequence[tuple[float, ...]]) -> Columns:
    """A date column's model inputs from each row's parts (``shared.schema.date_parts``): one column per part."""
    table = np.array(parts, dtype=np.float32).reshape(-1, len(NO_DATE))
    return {name: table[:, [index]] for index, name in enumerate(column.inputs)}


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _date_or_none(value: object) -> tuple[float, ...] | None:
    return date_parts(value) if isinstance(value, str) else None
