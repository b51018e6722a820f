"""Dataset schema: each column's kind, and the categories seen for text columns."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from shared.tasks import CLASSIFICATION, TaskKind, kind_of

MAX_CATEGORIES = 1000
BOOLEAN_WORDS = {"true": 1.0, "false": 0.0}  # a "boolean" column's values, in any case, as the model sees them
DATETIME = "datetime"
# What the model sees of a date and time: calendar parts that carry to dates it never saw (a month, a weekday
# recur; a date as one category never does). The hour holds the minutes and seconds as its fraction.
DATE_PARTS = ("year", "month", "day", "weekday", "yearday", "hour")
NO_DATE = (math.nan,) * len(DATE_PARTS)
# A training column is a date column when every value is ISO 8601: 2024-05-31, 2024-05-31T14:30[:00[.5]][Z|+02:00]
# (a space for the T too). Other spellings stay text: 03/04/2024 reads as March or April depending on who wrote it.
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?")


def date_parts(value: str) -> tuple[float, ...] | None:
    """The model's inputs for one date (``DATE_PARTS``), None when ``value`` is no ISO 8601 date. The time is
    read as written, wall-clock: an offset is not applied, so 09:00+02:00 is 9 in the morning where it happened."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return (float(moment.year), float(moment.month), float(moment.day), float(moment.isoweekday()),
            float(moment.timetuple().tm_yday), moment.hour + moment.minute / 60 + moment.second / 3600)


def part_name(column: str, part: str) -> str:
    """The model input holding one part of a date column."""
    return f"{column}[{part}]"


def input_columns(features: tuple[Column, ...]) -> dict[str, str]:
    """Model input -> the column it comes from (a date's parts -> the date column)."""
    return {name: c.name for c in features for name in c.inputs}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "integer", "number", "boolean" (1/0 to the model), "datetime" (its DATE_PARTS) or "string"
    missing: int = 0
    categories: tuple[str, ...] = field(default=())  # for "string" columns, most frequent first

    @property
    def is_numeric(self) -> bool:
        return self.kind in ("integer", "number", "boolean")

    @property
    def inputs(self) -> tuple[str, ...]:
        """The model inputs this column becomes: itself, or one number per date part."""
        return tuple(part_name(self.name, p) for p in DATE_PARTS) if self.kind == DATETIME else (self.name,)

    @cached_property
    def known(self) -> frozenset[str]:
        """The categories as a set, built once per column (scoring counts unseen ones per request)."""
        return frozenset(self.categories)


@dataclass(frozen=True)
class TimeSeries:
    """How a forecasting dataset is read (Azure AutoML's forecasting settings, in its own words in brackets)."""

    time_column: str  # [time_column_name]
    horizon: int  # periods forecast ahead [forecast_horizon]
    series: tuple[str, ...] = ()  # the columns naming each series; none: one series [time_series_id_column_names]
    frequency: str = ""  # inferred from the timestamps at ingest (shared.forecasting.series.FREQUENCIES)
    anchor: str = ""  # months, quarters, years: "end" (month ends) or the day of the month

    def to_dict(self) -> dict[str, Any]:
        return {"time_column": self.time_column, "horizon": self.horizon, "series": list(self.series),
                "frequency": self.frequency, "anchor": self.anchor}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TimeSeries | None:
        if not data:
            return None
        return cls(str(data["time_column"]), int(data["horizon"]), tuple(str(c) for c in data.get("series", ())),
                   str(data.get("frequency", "")), str(data.get("anchor", "")))

    def known(self, features: tuple[Column, ...]) -> tuple[str, ...]:
        """The features known in advance: every one that is neither the time nor a series id."""
        return tuple(c.name for c in features if c.name != self.time_column and c.name not in self.series)


@dataclass(frozen=True)
class Schema:
    columns: tuple[Column, ...]
    target: str
    task: TaskKind = CLASSIFICATION  # decided at validation (``shared.tasks``)
    time_series: TimeSeries | None = None  # forecasting only

    @property
    def features(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.name != self.target)

    @property
    def model_inputs(self) -> tuple[tuple[str, bool], ...]:
        """Each model input in order, with whether it is a number (else text)."""
        return tuple((name, c.is_numeric or c.kind == DATETIME) for c in self.features for name in c.inputs)

    @property
    def input_columns(self) -> dict[str, str]:
        return input_columns(self.features)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target, "task": str(self.task),
                               "columns": [asdict(c) for c in self.columns]}
        if self.time_series is not None:
            out["time_series"] = self.time_series.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        columns = tuple(
            Column(c["name"], c["kind"], int(c.get("missing", 0)), tuple(c.get("categories", ())))
            for c in data["columns"]
        )
        return cls(columns, data["target"], kind_of(data.get("task")), TimeSeries.from_dict(data.get("time_series")))

    def without(self, names: set[str]) -> Schema:
        return Schema(tuple(c for c in self.columns if c.name not in names), self.target, self.task,
                      self.time_series)
