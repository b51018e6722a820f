"""The rows each dataset version keeps out of training, so that in Azure the champion and the challenger are
compared on the same rows, which neither trained on.

A row is held out by the hash of its own text, not by its position: the same
row lands on the same side in every version of a dataset, so the rows the
challenger is judged on were held out of the champion's training as well
(when both versions carry them).

A forecast is judged on the future, not on random rows of its past: a
forecasting version holds out the last ``horizon`` periods of each series (the
window its model is asked to forecast) and trains on what came before. Which
rows those are needs each series' last time, known once every row was read: a
first pass over the copy keeps, per series, its first time and its latest few
times (memory grows with the number of series, not of rows), and the second
splits by them, so a row's side never depends on the chunk it is in.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Protocol

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shared.schema import Schema, TimeSeries

HOLDOUT_SHARE = 0.1  # of the rows, by their hash
HOLDOUT_FILE = "holdout.csv"
TRAIN_FILE = "train.csv"
COMPARED_ROWS = 20_000  # the most held-out rows both models score (the first ones, so the same for both)
COMPARED_BYTES = 32 << 20  # read of holdout.csv for them: the file itself grows with the dataset
_BUCKETS = 10_000


def held_out_rows(frame: pd.DataFrame) -> NDArray[np.bool_]:
    """Whether each row of a chunk of the portable copy (cells as text, missing ones NaN) is held out: a hash of
    the row's cells, with missing and empty the same, so a row's side never depends on the chunk it is in."""
    cells = frame.fillna("").astype(str)
    hashes = pd.util.hash_pandas_object(cells, index=False).to_numpy(dtype=np.uint64)
    held: NDArray[np.bool_] = hashes % _BUCKETS < int(HOLDOUT_SHARE * _BUCKETS)
    return held


class Split(Protocol):
    """Which rows of the portable copy are held out, a chunk at a time."""

    first_pass: bool  # whether every chunk is ``learn``ed before the first is split

    def learn(self, frame: pd.DataFrame) -> None: ...

    def held_out(self, frame: pd.DataFrame) -> NDArray[np.bool_]: ...


class RowHash:
    """Rows without an order: a share of them, each by its own hash (``held_out_rows``)."""

    first_pass = False

    def learn(self, frame: pd.DataFrame) -> None:
        return None

    def held_out(self, frame: pd.DataFrame) -> NDArray[np.bool_]:
        return held_out_rows(frame)


# A period back from a time, per frequency: a fixed step, or months on the calendar (month ends stay month ends).
_STEPS = {"hourly": pd.Timedelta(hours=1), "daily": pd.Timedelta(days=1), "weekly": pd.Timedelta(days=7)}
_MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}
_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"  # a UTC offset after a time of day


def wall_clock(values: pd.Series) -> pd.Series:
    """ISO 8601 cells as times, read as written (an offset is not applied: 09:00+02:00 is nine o'clock, as the
    schema reads dates); NaT where a cell is missing or no date."""
    text = values.astype("string").str.strip()
    timed = text.str.contains(r"\d[T ]\d{2}:\d{2}", regex=True).fillna(False).astype(bool)
    text = text.where(~timed, text.str.replace(_OFFSET, "", regex=True))
    return pd.Series(pd.to_datetime(text, errors="coerce", format="ISO8601"), index=values.index)


def periods_back(time: pd.Timestamp, time_series: TimeSeries, periods: int) -> pd.Timestamp | None:
    """``periods`` periods before ``time`` on the series' grid; None when its frequency is not known."""
    if time_series.frequency in _STEPS:
        return time - _STEPS[time_series.frequency] * periods
    months = _MONTHS.get(time_series.frequency)
    if months is None:
        return None
    if time_series.anchor == "end":
        return time + pd.offsets.MonthEnd(-months * periods)
    return time - pd.DateOffset(months=months * periods)


class LastPeriods:
    """Time series: each series' last ``horizon`` periods, the window its forecast covers.

    Held out are the rows of a series later than its last time less ``horizon`` periods (on its grid; when the
    frequency is not known, its ``horizon`` latest distinct times). A series that would be held out whole (nothing
    earlier) stays in training whole: a forecast starts from the series' own history."""

    first_pass = True

    def __init__(self, time_series: TimeSeries) -> None:
        self.time_series = time_series
        self.first: dict[str, pd.Timestamp] = {}  # per series: its first time
        self.latest: dict[str, list[pd.Timestamp]] = {}  # per series: its latest distinct times, oldest first
        self._cutoffs: dict[str, pd.Timestamp] | None = None
        self._limits: pd.Series | None = None  # the cutoffs by series key, as the second pass looks them up

    def _keys(self, frame: pd.DataFrame) -> pd.Series:
        """Each row's series as one string: its id cells, a missing one as empty, joined by a unit separator."""
        if not self.time_series.series:
            return pd.Series("", index=frame.index, dtype=object)
        ids = frame[list(self.time_series.series)].fillna("").astype(str)
        keys = ids.iloc[:, 0]
        for name in ids.columns[1:]:
            keys = keys + "\x1f" + ids[name]
        return keys

    def learn(self, frame: pd.DataFrame) -> None:
        keep = self.time_series.horizon + 1
        rows = pd.DataFrame({"key": self._keys(frame), "time": wall_clock(frame[self.time_series.time_column])})
        rows = rows.dropna(subset=["time"]).drop_duplicates()
        for key, first in rows.groupby("key")["time"].min().items():
            self.first[str(key)] = min(first, self.first.get(str(key), first))
        for key, times in rows.sort_values("time").groupby("key")["time"]:
            merged = sorted({*self.latest.get(str(key), ()), *times.iloc[-keep:]})
            self.latest[str(key)] = merged[-keep:]
        self._cutoffs = self._limits = None

    def cutoffs(self) -> dict[str, pd.Timestamp]:
        """Per series, the time after which its rows are held out (no entry: none of them are)."""
        if self._cutoffs is None:
            horizon = self.time_series.horizon
            self._cutoffs = {}
            for key, latest in self.latest.items():
                cutoff = periods_back(latest[-1], self.time_series, horizon)
                if cutoff is None and len(latest) > horizon:
                    cutoff = latest[-horizon - 1]
                if cutoff is not None and self.first[key] <= cutoff:
                    self._cutoffs[key] = cutoff
        return self._cutoffs

    def held_out(self, frame: pd.DataFrame) -> NDArray[np.bool_]:
        if self._limits is None:
            self._limits = pd.Series(self.cutoffs(), dtype="datetime64[ns]")
        limits = self._keys(frame).map(self._limits)
        times = wall_clock(frame[self.time_series.time_column])
        held: NDArray[np.bool_] = (times > limits).to_numpy(dtype=bool)  # NaT compares False: kept in training
        return held


def split_for(schema: Schema) -> Split:
    """How a dataset version's rows are held out: by time windows when it is read as series, else by hash."""
    return LastPeriods(schema.time_series) if schema.time_series is not None else RowHash()


def rows(holdout: bytes, limit: int = COMPARED_ROWS) -> Iterator[dict[str, str | None]]:
    """The held-out rows as records, an empty cell read as missing (as the training table reads it)."""
    text = holdout.decode("utf-8", errors="ignore")
    whole = len(holdout) < COMPARED_BYTES
    if not whole:  # only the file's head was read: its last line may be cut off
        text = text[:text.rfind("\n") + 1]
    records = list(csv.DictReader(io.StringIO(text)))
    if not whole and records:
        records.pop()  # a quoted cell with a line end could have been cut too
    for row in records[:limit]:
        yield {name: (value if value != "" else None) for name, value in row.items()}
