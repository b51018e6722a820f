"""A time series dataset: its frequency, inferred from the timestamps, and the checks each series must pass
(gaps, duplicate times, history too short for the horizon, an irregular grid)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shared.errors import BadRequest, DatasetRejected

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
SeriesKey = tuple[str, ...]

# name: (fixed step or None, calendar months or 0, periods in one season, the seasonal cycle said in words)
FREQUENCIES: dict[str, tuple[pd.Timedelta | None, int, int, str]] = {
    "hourly": (pd.Timedelta(hours=1), 0, 24, "a day"),
    "daily": (pd.Timedelta(days=1), 0, 7, "a week"),
    "weekly": (pd.Timedelta(days=7), 0, 52, "a year"),
    "monthly": (None, 1, 12, "a year"),
    "quarterly": (None, 3, 4, "a year"),
    "yearly": (None, 12, 1, "none"),
}
# The seasonal cycle in periods, fractional where the calendar is (a year is 52.18 weeks): harmonic terms use it.
CYCLES = {"hourly": 24.0, "daily": 7.0, "weekly": 365.25 / 7, "monthly": 12.0, "quarterly": 4.0, "yearly": 1.0}
IRREGULAR = "irregular"
MAX_GAP_SHARE = 0.25  # more of a series' periods missing than this is too little to interpolate from


class ForecastError(BadRequest):
    """A forecast request the model cannot answer (a 400): the message says which row and why."""


# --- Frequency -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frequency:
    name: str  # one of FREQUENCIES, or IRREGULAR
    reason: str  # how it was decided, in words
    anchor: str = ""  # calendar frequencies: "end" (month ends) or the day of the month, e.g. "1"

    @property
    def regular(self) -> bool:
        return self.name in FREQUENCIES

    @property
    def season(self) -> int:
        return FREQUENCIES[self.name][2]

    def positions(self, times: pd.DatetimeIndex, origin: pd.Timestamp) -> FloatArray:
        """Periods from ``origin`` to each time; fractional when a time is off the grid."""
        step, months, _, _ = FREQUENCIES[self.name]
        if step is not None:
            return np.asarray((times - origin) / step, dtype=np.float64)
        whole = (_month_number(times) - _month_number(pd.DatetimeIndex([origin]))[0]) / months
        expected = self.times(origin, np.floor(whole).astype(np.int64))
        on_grid = np.asarray(expected == times)
        return np.asarray(np.where(on_grid, whole, whole + 0.5), dtype=np.float64)  # off the anchor: not whole

    def times(self, origin: pd.Timestamp, positions: IntArray) -> pd.DatetimeIndex:
        """The times of grid positions counted from ``origin``."""
        step, months, _, _ = FREQUENCIES[self.name]
        if step is not None:
            return pd.DatetimeIndex(origin + step * positions)
        if self.anchor == "end":
            return pd.DatetimeIndex([origin + pd.offsets.MonthEnd(int(p) * months) for p in positions])
        return pd.DatetimeIndex([origin + pd.DateOffset(months=int(p) * months) for p in positions])


def _month_number(times: pd.DatetimeIndex) -> IntArray:
    return np.asarray(times.year * 12 + times.month - 1, dtype=np.int64)


def infer_frequency(times: Iterable[Any]) -> Frequency:
    """The frequency of one series' timestamps, with the reason; gaps (whole missing periods) are allowed."""
    index = pd.DatetimeIndex(pd.to_datetime(pd.Series(list(times)))).dropna().unique().sort_values()
    if len(index) < 3:
        return Frequency(IRREGULAR, f"only {len(index)} distinct times: too few to tell a frequency")
    steps = pd.Series(index[1:] - index[:-1])
    modal = steps.mode().iloc[0]
    share = float((steps == modal).mean())
    for name, (step, _, _, _) in FREQUENCIES.items():
        if step is not None and modal == step:
            off = int((steps % step != pd.Timedelta(0)).sum())
            if off:
                return Frequency(IRREGULAR, f"most steps are one {unit(name)}, but {off} of {len(steps)} are not "
                                            f"whole {unit(name)}s")
            return Frequency(name, _share_reason(share, len(steps), unit(name)))
    days = modal / pd.Timedelta(days=1)
    for name, low, high in (("monthly", 28, 31), ("quarterly", 89, 92), ("yearly", 365, 366)):
        if low <= days <= high:
            return _calendar(name, index, share)
    return Frequency(IRREGULAR, f"the most common step is {modal} ({share:.0%} of {len(steps)} steps): not an "
                                "hour, a day, a week, a month, a quarter or a year")


def unit(name: str) -> str:
    """One period of a frequency, in words ("month")."""
    return {"hourly": "hour", "daily": "day", "weekly": "week", "monthly": "month", "quarterly": "quarter",
            "yearly": "year"}[name]


def _share_reason(share: float, steps: int, unit: str) -> str:
    if share == 1.0:
        return f"all {steps} steps are one {unit}"
    return f"{share:.0%} of {steps} steps are one {unit}; the others are whole {unit}s (gaps)"


def _calendar(name: str, index: pd.DatetimeIndex, share: float) -> Frequency:
    """Months, quarters and years vary in length: they are read on the calendar, at one day of the month."""
    months = FREQUENCIES[name][1]
    period = unit(name)
    if bool(index.is_month_end.all()) and len(set(index.day)) > 1:
        anchor = "end"
    elif len(set(index.day)) == 1:
        anchor = str(index[0].day)
    else:
        days = ", ".join(str(d) for d in sorted(set(index.day))[:5])
        return Frequency(IRREGULAR, f"steps of about a {period} fall on different days of the month ({days})")
    if len(set(index.time)) > 1:
        return Frequency(IRREGULAR, f"steps of about a {period} at different times of day")
    numbers = np.diff(_month_number(index))
    if (numbers % months).any():
        return Frequency(IRREGULAR, f"steps of about a {period}, but some are not whole {period}s on the calendar")
    where = "month ends" if anchor == "end" else f"day {anchor} of the month"
    whole = float((numbers == months).mean())
    return Frequency(name, _share_reason(whole, len(numbers), period) + f", on {where}", anchor)


# --- Checks ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForecastSpec:
    time: str
    target: str
    horizon: int  # periods ahead the model forecasts
    series: tuple[str, ...] = ()  # id columns; none: one series
    known: tuple[str, ...] = ()  # features known in advance, future included


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    rejects: bool  # the data cannot be trained on as it is
    series: str = ""


def min_history(season: int, horizon: int) -> int:
    """Observed periods a series needs: a horizon held out to check the forecast, and before it two seasons
    (to see the seasonal pattern repeat) or a season and a horizon (to learn that far ahead), whichever is more."""
    return max(2 * season, season + horizon) + horizon


def series_name(key: SeriesKey, spec: ForecastSpec) -> str:
    return "/".join(key) if spec.series else "the series"


def id_text(value: object) -> str:
    """A series id as text, the same whether it was read as a whole number (7), a float (7.0) or text ("7")."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    return str(value)


def series_keys(frame: pd.DataFrame, spec: ForecastSpec) -> list[SeriesKey]:
    """Each row's series."""
    if not spec.series:
        return [()] * len(frame)
    return [tuple(id_text(v) for v in row) for row in frame[list(spec.series)].itertuples(index=False)]


def series_groups(frame: pd.DataFrame, spec: ForecastSpec) -> list[tuple[SeriesKey, pd.DataFrame]]:
    if not spec.series:
        return [((), frame)]
    keys = series_keys(frame, spec)
    by_key: dict[SeriesKey, list[int]] = {}
    for row, key in enumerate(keys):
        by_key.setdefault(key, []).append(row)
    return [(key, frame.iloc[by_key[key]]) for key in sorted(by_key)]


@dataclass
class Checked:
    frequency: Frequency
    findings: list[Finding]
    origin: pd.Timestamp | None = None  # grid position 0, the earliest time of all series

    @property
    def rejections(self) -> list[Finding]:
        return [f for f in self.findings if f.rejects]


def check_series(frame: pd.DataFrame, spec: ForecastSpec, held_out: int = 0) -> Checked:
    """Everything that stops or qualifies forecasting this data, per series, in plain words. ``held_out``: periods
    already cut off the end of each series (to judge the fit), which the history needed counts as its own."""
    missing = [c for c in (spec.time, spec.target, *spec.series, *spec.known) if c not in frame.columns]
    if missing:
        return Checked(Frequency(IRREGULAR, "not read"),
                       [Finding("missing_column", f"column(s) {', '.join(missing)} not in the data", True)])
    if spec.horizon < 1:
        return Checked(Frequency(IRREGULAR, "not read"),
                       [Finding("bad_horizon", f"the horizon must be at least 1 period, not {spec.horizon}", True)])
    times = pd.to_datetime(frame[spec.time], errors="coerce")
    findings: list[Finding] = []
    if times.isna().any():
        bad = frame[spec.time][times.isna()].iloc[0]
        return Checked(Frequency(IRREGULAR, "not read"), [Finding(
            "bad_time", f"{int(times.isna().sum())} row(s) have no readable time in {spec.time!r} (e.g. {bad!r})",
            True)])
    frame = frame.assign(**{spec.time: times})
    frequencies: dict[str, list[str]] = {}
    chosen: Frequency | None = None
    for key, part in series_groups(frame, spec):
        name = series_name(key, spec)
        counts = part[spec.time].value_counts()
        repeated = counts[counts > 1]
        if len(repeated):
            findings.append(Finding("duplicate_time", f"{name} has {int(repeated.sum())} rows at "
                                    f"{len(repeated)} repeated time(s) (first: {repeated.index.min()}); "
                                    "each time must appear once per series", True, name))
            continue
        frequency = infer_frequency(part[spec.time])
        if not frequency.regular:
            findings.append(Finding("irregular", f"{name}: irregular timestamps ({frequency.reason})", True, name))
            continue
        frequencies.setdefault(frequency.name, []).append(name)
        chosen = chosen or frequency
    if len(frequencies) > 1:
        said = "; ".join(f"{f}: {', '.join(names[:3])}" for f, names in frequencies.items())
        findings.append(Finding("mixed_frequency", f"series have different frequencies ({said})", True))
    if chosen is None or any(f.rejects for f in findings):
        return Checked(chosen or Frequency(IRREGULAR, "no regular series"), findings)
    origin = pd.Timestamp(frame[spec.time].min())
    for key, part in series_groups(frame, spec):
        findings.extend(_check_one(part, spec, chosen, origin, series_name(key, spec), held_out))
    return Checked(chosen, findings, origin)


def _check_one(part: pd.DataFrame, spec: ForecastSpec, frequency: Frequency, origin: pd.Timestamp,
               name: str, held_out: int = 0) -> list[Finding]:
    found: list[Finding] = []
    part = part.sort_values(spec.time)
    observed = part[part[spec.target].notna()]
    if observed.empty:
        return [Finding("too_short", f"{name} has no observed target", True, name)]
    positions = frequency.positions(pd.DatetimeIndex(observed[spec.time]), origin)
    span = int(positions[-1] - positions[0]) + 1
    after = part[part[spec.time] > observed[spec.time].iloc[-1]]
    if len(after):
        found.append(Finding("future_rows", f"{name}: {len(after)} row(s) after its last observed target "
                             f"({observed[spec.time].iloc[-1]}) are read as its future: their known features "
                             "are used to forecast, they are not trained on", False, name))
    needed = min_history(frequency.season, spec.horizon) - held_out
    if span < needed:
        found.append(Finding("too_short", f"{name} has {span} {frequency.name} periods of history; forecasting "
                             f"{spec.horizon} ahead needs at least {needed} (two seasons of {frequency.season} "
                             f"or a season plus the horizon, before a horizon held out to check the forecast)",
                             True, name))
    missing = span - len(observed)
    if missing:
        first = _first_missing(positions)
        gap_time = frequency.times(origin, np.array([first], dtype=np.int64))[0]
        too_many = missing > MAX_GAP_SHARE * span
        found.append(Finding("gap", f"{name} misses {missing} of its {span} {frequency.name} periods (first: "
                             f"{gap_time}); " + (f"more than {MAX_GAP_SHARE:.0%} missing is too many to fill"
                                                  if too_many else "they are filled by linear interpolation"),
                             too_many, name))
    return found


def _first_missing(positions: FloatArray) -> int:
    whole = positions.astype(np.int64)
    jumps = np.flatnonzero(np.diff(whole) > 1)
    return int(whole[jumps[0]] + 1)


SHOWN_FINDINGS = 10  # of one kind, named one by one; the rest are counted


def reject_if_needed(checked: Checked) -> None:
    """DatasetRejected with the rejections' messages (the first ``SHOWN_FINDINGS``, the rest counted), the first
    one's code."""
    rejections = checked.rejections
    if rejections:
        said = "; ".join(f.message for f in rejections[:SHOWN_FINDINGS])
        more = len(rejections) - SHOWN_FINDINGS
        raise DatasetRejected(said + (f"; and {more} more like these" if more > 0 else ""), rejections[0].code)


# --- Series on the grid ----------------------------------------------------------------------------------------


def take_at(y: FloatArray, index: IntArray) -> FloatArray:
    """y at local indices; NaN outside the history."""
    inside = (index >= 0) & (index < len(y))
    out = np.full(len(index), np.nan)
    out[inside] = y[index[inside]]
    return out


def seasons_back(steps: IntArray, season: int) -> IntArray:
    """Whole seasons back from the target to the latest same-season value known at the origin."""
    return np.asarray(-(-steps // season), dtype=np.int64)


def split_last(frame: pd.DataFrame, spec: ForecastSpec, frequency: Frequency) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(history, window): each series' last ``horizon`` periods held out, in time order, to judge a forecast
    made from the history before them; the same rows whichever model is judged."""
    times = pd.DatetimeIndex(pd.to_datetime(frame[spec.time]))
    origin = pd.Timestamp(times.min())
    positions = np.floor(frequency.positions(times, origin)).astype(np.int64)
    last: dict[SeriesKey, int] = {}
    keys = series_keys(frame, spec)
    for key, position in zip(keys, positions, strict=True):
        last[key] = max(last.get(key, position), position)
    held = np.array([position > last[key] - spec.horizon for key, position in zip(keys, positions, strict=True)],
                    dtype=bool)
    return frame[~held].reset_index(drop=True), frame[held].reset_index(drop=True)
