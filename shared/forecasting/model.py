"""Time-series forecasting on the local engine: frequency, series checks, a forecaster chosen by backtest.

A dataset is rows of (time, target, series id columns, known features). Known features are values known in
advance for the future too (a planned promotion, a set price); the forecaster uses them at the time it
forecasts. Rows after a series' last observed target are its future: their known features are kept, they are
not trained on.

Candidates are compared by rolling-origin cross-validation in time order (each fold trains on everything up to
a cut-off and forecasts the ``horizon`` periods after it), and the best is refit on the whole history:

- ``lightgbm``: one LightGBM model pooled over every series, direct multi-horizon (the step ahead is a feature,
  so one model forecasts every step from the same origin; no error feeds back as in recursive forecasting).
  It learns the change from the latest value of the same season known at the origin, scaled per series, so
  trees (which cannot extrapolate a level) follow trends and series of different sizes share one model;
- ``lightgbm-log``: the same on the logarithm of a positive target, where changes are ratios (a promotion or a
  price acts on sales in proportion);
- ``lightgbm-recursive``: the same features one step ahead, each forecast fed back as the latest value (errors
  compound, but the latest values are always recent: it wins on some series, so the backtest decides);
- ``ets``: Holt-Winters with a damped trend, per series, its season added or (positive series) multiplied,
  smoothing weights chosen on a grid by one-step squared error (exponential smoothing's ETS(A,Ad,A) and
  ETS(A,Ad,M));
- ``harmonic``: a straight trend and sine waves of the seasonal cycle by least squares, with AR(1) errors (a
  dynamic harmonic regression: the cycle may be fractional, 52.18 weeks a year, where lags of 52 drift);
- ``seasonal-naive``: the latest value of the same season (the baseline every forecast is held against);
- ``a+b``: the mean of two of the above (seasonal naive aside), which often beats both when their errors differ.

Direct or recursive: on the benchmark (``benchmarks/forecast.py``) neither wins everywhere (MAE: recursive on the
weekly series, 7.2 against 7.8; direct on the monthly one, 6.1 against 6.2, and on the many daily ones, 11.6 and
10.6 on the log scale against 13.6), so both stay candidates. Five folds, not
three: with three, the choice on the weekly benchmark followed the noise of the latest weeks. A series the model never
saw is refused at forecast time: every candidate forecasts from the series' own latest values.

Knows nothing of Azure Functions; pure pandas, numpy and LightGBM.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from shared.errors import DatasetRejected
from shared.forecasting.baselines import damped_ets, harmonic, seasonal_naive
from shared.forecasting.series import (
    CYCLES,
    Finding,
    FloatArray,
    ForecastError,
    ForecastSpec,
    Frequency,
    IntArray,
    SeriesKey,
    check_series,
    min_history,
    reject_if_needed,
    seasons_back,
    series_groups,
    series_keys,
    series_name,
    take_at,
)

DEFAULT_FOLDS = 5
METHODS = ("lightgbm", "lightgbm-log", "lightgbm-recursive", "ets", "harmonic", "seasonal-naive")
# Every method alone, and the mean of any two but seasonal naive: combining forecasts whose errors differ often
# beats both, and the backtest pays nothing more for it (the means are of forecasts it has already made).
CANDIDATES = (*METHODS, *(f"{a}+{b}" for i, a in enumerate(METHODS[:-1]) for b in METHODS[i + 1: -1]))
MAX_LAGS = 14  # the most recent values the model sees, beyond the seasonal ones
MAX_TRAINING_ROWS = 1_000_000  # (origin, step) rows LightGBM learns from: about 250 MB of features at most
MANY_ROWS = 20_000  # training rows from which the trees get 31 leaves (of 20 rows at least) instead of 15 (of 10)
LIGHTGBM_PARAMS: dict[str, Any] = {
    "n_estimators": 300, "learning_rate": 0.05,
    "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 1.0,
    "n_jobs": 1, "random_state": 42, "verbose": -1,
}


@dataclass
class _Series:
    key: SeriesKey
    start: int  # grid position of the first observed value
    y: FloatArray  # observed history, gaps interpolated; y[i] is at position start + i
    known: FloatArray  # known features at positions start.. (rows beyond len(y): the future given with the data)
    scale: float  # the series' typical size, so that pooled series weigh alike

    @property
    def end(self) -> int:
        """Grid position of the last observed value."""
        return self.start + len(self.y) - 1

    def known_at(self, positions: IntArray) -> FloatArray:
        """Known features at grid positions; NaN where not given."""
        local = positions - self.start
        inside = (local >= 0) & (local < len(self.known))
        out = np.full((len(positions), self.known.shape[1]), np.nan)
        out[inside] = self.known[local[inside]]
        return out

    def cut(self, last: int, keep_known_until: int) -> _Series | None:
        """The series as known at position ``last`` (known features kept up to ``keep_known_until``)."""
        n = last - self.start + 1
        if n < 2:
            return None
        return _Series(self.key, self.start, self.y[:n], self.known[: keep_known_until - self.start + 1],
                       _scale(self.y[:n]))


def _scale(y: FloatArray) -> float:
    value = float(np.mean(np.abs(y))) if len(y) else 0.0
    return value if value > 0 and math.isfinite(value) else 1.0


@dataclass
class _Encoding:
    """Known features as numbers: text becomes the code of its category as seen in training."""

    categories: dict[str, list[str]] = field(default_factory=dict)

    def fit(self, frame: pd.DataFrame, columns: Sequence[str]) -> None:
        for column in columns:
            values = frame[column]
            if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
                self.categories[column] = sorted(str(v) for v in values.dropna().unique())

    def apply(self, frame: pd.DataFrame, columns: Sequence[str]) -> FloatArray:
        out = np.full((len(frame), len(columns)), np.nan)
        for j, column in enumerate(columns):
            if column in self.categories:
                lookup = {c: i for i, c in enumerate(self.categories[column])}
                out[:, j] = [lookup.get(str(v), np.nan) if pd.notna(v) else np.nan for v in frame[column]]
            else:
                out[:, j] = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        return out


def _build_series(frame: pd.DataFrame, spec: ForecastSpec, frequency: Frequency, origin: pd.Timestamp,
                  encoding: _Encoding) -> list[_Series]:
    built = []
    for key, part in series_groups(frame.assign(**{spec.time: pd.to_datetime(frame[spec.time])}), spec):
        part = part.sort_values(spec.time)
        positions = np.rint(frequency.positions(pd.DatetimeIndex(part[spec.time]), origin)).astype(np.int64)
        target = pd.to_numeric(part[spec.target], errors="coerce").to_numpy(dtype=np.float64)
        observed = np.flatnonzero(np.isfinite(target))
        start, end = int(positions[observed[0]]), int(positions[observed[-1]])
        grid = np.arange(start, end + 1)
        y = np.interp(grid, positions[observed], target[observed])  # fills gaps inside the history
        last = int(positions.max())
        known = np.full((last - start + 1, len(spec.known)), np.nan)
        rows = positions >= start
        known[positions[rows] - start] = encoding.apply(part, spec.known)[rows]
        built.append(_Series(key, start, y, known, _scale(y)))
    return built


# --- Features --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Design:
    """How rows of (series, origin, step ahead) become features; the target is the change from ``base``."""

    frequency: Frequency
    origin: pd.Timestamp
    known: int  # number of known features

    @property
    def season(self) -> int:
        return self.frequency.season

    def base(self, s: _Series, origins: IntArray, steps: IntArray) -> FloatArray:
        """The latest same-season value known at the origin (the last value when there is no season)."""
        if self.season == 1:
            return take_at(s.y, origins)
        return take_at(s.y, origins + steps - seasons_back(steps, self.season) * self.season)

    def features(self, s: _Series, origins: IntArray, steps: IntArray) -> FloatArray:
        m = self.season
        base = self.base(s, origins, steps)
        target = origins + steps  # local index of the forecast period
        columns: list[FloatArray] = [steps.astype(np.float64)]

        def relative(values: FloatArray) -> FloatArray:
            return (values - base) / s.scale

        lags = min(MAX_LAGS, max(m, 4))
        columns += [relative(take_at(s.y, origins - j)) for j in range(lags)]
        if m > 1:
            back = seasons_back(steps, m)
            for extra in range(3):  # the same season one, two and three years back from the target
                columns.append(relative(take_at(s.y, target - (back + extra) * m)))
            seasonal = target - back * m
            columns += [relative(take_at(s.y, seasonal - 1)), relative(take_at(s.y, seasonal + 1))]
        cumulative = np.concatenate([[0.0], np.cumsum(s.y)])
        for window in sorted({3, m, 2 * m} - {1}):
            first = origins + 1 - window
            mean = np.where(first >= 0, (cumulative[np.minimum(origins + 1, len(s.y))]
                                         - cumulative[np.clip(first, 0, len(s.y))]) / window, np.nan)
            columns.append(relative(mean))
        if m > 1:  # the change over the last season: the trend per season
            columns.append((take_at(s.y, origins) - take_at(s.y, origins - m)) / s.scale)
        positions = (s.start + target).astype(np.int64)
        columns += self.calendar(positions)
        if self.known:
            at_target = s.known_at(positions)
            at_base = s.known_at((s.start + origins + steps - seasons_back(steps, m) * m).astype(np.int64)
                                 if m > 1 else (s.start + origins).astype(np.int64))
            at_origin = s.known_at((s.start + origins).astype(np.int64))  # what the latest value was under
            columns += list(at_target.T) + list((at_target - at_base).T) + list(at_origin.T)
        return np.column_stack(columns)

    def calendar(self, positions: IntArray) -> list[FloatArray]:
        """Season position, trend index and the parts of the date that carry the frequency's cycles."""
        unique, inverse = np.unique(positions, return_inverse=True)
        times = self.frequency.times(self.origin, unique)
        parts: list[Any] = [unique % self.season, unique]
        name = self.frequency.name
        if name == "hourly":
            parts += [times.hour, times.dayofweek]
        elif name == "daily":
            parts += [times.dayofweek, times.dayofyear, times.month]
        elif name == "weekly":
            parts += [times.isocalendar().week.to_numpy(), times.month]
        elif name == "monthly":
            parts += [times.month]
        elif name == "quarterly":
            parts += [times.quarter]
        return [np.asarray(p, dtype=np.float64)[inverse] for p in parts]

    def training_rows(self, series: Sequence[_Series], horizon: int) -> tuple[FloatArray, FloatArray]:
        """Every (origin, step) inside the history whose base is known: features and scaled change. Beyond
        ``MAX_TRAINING_ROWS`` (long histories times a long horizon) the origins are thinned evenly, the latest
        kept: the rows grow with the data, the memory does not."""
        blocks, targets = [], []
        stride = max(1, math.ceil(sum(len(s.y) for s in series) * horizon / MAX_TRAINING_ROWS))
        for s in series:
            n = len(s.y)
            kept = np.arange(n - 1, -1, -stride, dtype=np.int64)[::-1]
            origins = np.tile(kept, horizon)
            steps = np.repeat(np.arange(1, horizon + 1, dtype=np.int64), len(kept))
            inside = origins + steps < n
            origins, steps = origins[inside], steps[inside]
            base = self.base(s, origins, steps)
            usable = np.isfinite(base)
            origins, steps = origins[usable], steps[usable]
            if not len(origins):
                continue
            blocks.append(self.features(s, origins, steps))
            targets.append((s.y[origins + steps] - base[usable]) / s.scale)
        if not blocks:
            raise DatasetRejected("no series is long enough to learn from", "too_short")
        return np.vstack(blocks), np.concatenate(targets)


# --- Methods ---------------------------------------------------------------------------------------------------


def _lightgbm(rows: tuple[FloatArray, FloatArray]) -> Any:
    """LightGBM fit on (features, targets); trees grow larger when there are rows enough to fill them."""
    from lightgbm import LGBMRegressor

    many = len(rows[1]) >= MANY_ROWS
    params = {**LIGHTGBM_PARAMS, "num_leaves": 31 if many else 15, "min_child_samples": 20 if many else 10}
    return LGBMRegressor(**params).fit(*rows)


@dataclass
class _Trained:
    """What the candidates learnt from one history: LightGBM models, and the per-series forecasts of the methods
    that use the target alone (they do not change with the known features asked)."""

    horizon: int
    direct: Any = None
    logged: Any = None  # the direct model on the logarithm of the target
    recursive: Any = None
    alone: dict[str, dict[SeriesKey, FloatArray]] = field(default_factory=dict)


def _needs(candidates: Sequence[str]) -> set[str]:
    """The methods the candidates are made of ("a+b" is the mean of a and b)."""
    return {part for name in candidates for part in name.split("+")}


def _train(design: _Design, series: Sequence[_Series], horizon: int, candidates: Sequence[str]) -> _Trained:
    wanted = _needs(candidates)
    trained = _Trained(horizon)
    if "lightgbm" in wanted:
        trained.direct = _lightgbm(design.training_rows(series, horizon))
    if "lightgbm-log" in wanted and _positive(series):
        trained.logged = _lightgbm(design.training_rows(_logged(series), horizon))
    if "lightgbm-recursive" in wanted:
        trained.recursive = _lightgbm(design.training_rows(series, 1))
    if "seasonal-naive" in wanted:
        trained.alone["seasonal-naive"] = {s.key: seasonal_naive(s.y, design.season, horizon) for s in series}
    if "ets" in wanted:
        trained.alone["ets"] = {s.key: damped_ets(s.y, design.season, horizon) for s in series}
    if "harmonic" in wanted:
        cycle = CYCLES[design.frequency.name]
        trained.alone["harmonic"] = {s.key: harmonic(s.y, cycle, horizon) for s in series}
    return trained


def _positive(series: Sequence[_Series]) -> bool:
    return all(bool((s.y > 0).all()) for s in series)


def _logged(series: Sequence[_Series]) -> list[_Series]:
    """The series on a log scale: changes become ratios, which is how a promotion or a price acts on sales."""
    return [_Series(s.key, s.start, np.log(s.y), s.known, 1.0) for s in series]


def _future_known(s: _Series, horizon: int, given: FloatArray | None) -> _Series:
    """The series with known features for its next periods taken from ``given`` where it has them."""
    if given is None:
        return s
    known = s.known_at(np.arange(s.start, s.end + horizon + 1, dtype=np.int64))
    fill = np.isfinite(given)
    future = known[len(s.y):]
    future[fill] = given[fill]
    return _Series(s.key, s.start, s.y, known, s.scale)


def _direct_paths(design: _Design, model: Any, series: Sequence[_Series], horizon: int) -> FloatArray:
    steps = np.arange(1, horizon + 1, dtype=np.int64)
    paths = []
    for s in series:
        origins = np.full(horizon, len(s.y) - 1, dtype=np.int64)
        base = design.base(s, origins, steps)
        paths.append(base + s.scale * model.predict(design.features(s, origins, steps)))
    return np.vstack(paths)


def _recursive_paths(design: _Design, model: Any, series: Sequence[_Series], horizon: int) -> FloatArray:
    grown = [_Series(s.key, s.start, s.y.copy(), s.known, s.scale) for s in series]
    one = np.ones(1, dtype=np.int64)
    for _ in range(horizon):  # each step's forecast becomes the next step's latest value
        for s in grown:
            origin = np.array([len(s.y) - 1], dtype=np.int64)
            value = design.base(s, origin, one) + s.scale * model.predict(design.features(s, origin, one))
            s.y = np.append(s.y, value)
    return np.vstack([s.y[-horizon:] for s in grown])


def _paths(design: _Design, trained: _Trained, series: Sequence[_Series],
           candidates: Sequence[str]) -> dict[str, FloatArray]:
    """Each candidate's forecasts of the next ``horizon`` periods, one row per series."""
    wanted = _needs(candidates)
    out = {name: np.vstack([by_key[s.key] for s in series]) for name, by_key in trained.alone.items()}
    if "lightgbm" in wanted:
        out["lightgbm"] = _direct_paths(design, trained.direct, series, trained.horizon)
    if "lightgbm-log" in wanted:
        out["lightgbm-log"] = np.exp(_direct_paths(design, trained.logged, _logged(series), trained.horizon)) \
            if trained.logged is not None and _positive(series) else np.full((len(series), trained.horizon), np.nan)
    if "lightgbm-recursive" in wanted:
        out["lightgbm-recursive"] = _recursive_paths(design, trained.recursive, series, trained.horizon)
    for name in candidates:
        if "+" in name:
            out[name] = np.mean([out[part] for part in name.split("+")], axis=0)
    return {name: out[name] for name in candidates}


# --- Rolling-origin cross-validation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fold:
    cutoff: int  # last grid position trained on
    first: int  # first position forecast and scored
    last: int  # last position scored (cutoff + horizon)


def rolling_origin_folds(end: int, horizon: int, folds: int, min_train: int, start: int = 0) -> list[Fold]:
    """Folds in time order, the latest last: each trains on positions up to its cut-off and is scored on the
    ``horizon`` positions after it; cut-offs step back a horizon at a time while ``min_train`` periods remain."""
    out = []
    for back in range(folds, 0, -1):
        cutoff = end - back * horizon
        if cutoff - start + 1 >= min_train:
            out.append(Fold(cutoff, cutoff + 1, cutoff + horizon))
    return out


def backtest(design: _Design, series: Sequence[_Series], horizon: int, candidates: Sequence[str],
             folds: int = DEFAULT_FOLDS, deadline: float | None = None) -> tuple[dict[str, float], int]:
    """Each candidate's mean absolute error over the folds, each series' errors divided by its scale; and the
    folds scored. The latest fold first: past ``deadline`` (a ``time.perf_counter()`` time) no further fold starts
    once one is done, so a tight budget judges on the most recent origins."""
    end = max(s.end for s in series)
    start = min(s.start for s in series)
    chosen = rolling_origin_folds(end, horizon, folds, max(2 * design.season, design.season + horizon), start)
    errors: dict[str, list[float]] = {name: [] for name in candidates}
    scored = 0
    for fold in reversed(chosen):
        if scored and deadline is not None and time.perf_counter() >= deadline:
            break
        scored += 1
        kept = [(s, cut) for s in series if (cut := s.cut(fold.cutoff, fold.last)) is not None]
        past = [cut for _, cut in kept]
        if not past:
            continue
        paths = _paths(design, _train(design, past, horizon, candidates), past, candidates)
        for i, (whole, cut) in enumerate(kept):
            truth = take_at(whole.y, np.arange(len(cut.y), len(cut.y) + horizon, dtype=np.int64))
            known = np.isfinite(truth)
            for name in candidates:
                errors[name] += list(np.abs(paths[name][i][known] - truth[known]) / whole.scale)
    means = {name: float(np.mean(values)) if values else math.inf for name, values in errors.items()}
    return {name: value if math.isfinite(value) else math.inf for name, value in means.items()}, scored


# --- The forecaster --------------------------------------------------------------------------------------------


@dataclass
class Forecaster:
    """Chosen by backtest, refit on the whole history; answers rows of future times, one number per row."""

    spec: ForecastSpec
    frequency: Frequency
    origin: pd.Timestamp
    chosen: str
    scores: dict[str, float]  # each candidate's backtest error (scaled MAE)
    findings: list[Finding]
    series: list[_Series]
    encoding: _Encoding
    trained: _Trained  # the chosen candidate refit on the whole history
    folds: int = 0  # the backtest's folds (fewer than asked when its deadline came first)

    def _design(self) -> _Design:
        return _Design(self.frequency, self.origin, len(self.spec.known))

    def predict(self, rows: pd.DataFrame) -> FloatArray:
        """One forecast per row (its time, series ids and known features). A series the model never saw is
        refused: every candidate forecasts from the series' own recent values, and it has none."""
        spec = self.spec
        absent = [c for c in (spec.time, *spec.series, *spec.known) if c not in rows.columns]
        if absent:
            raise ForecastError(f"column(s) {', '.join(absent)} missing: the model forecasts from them")
        unknown = rows[list(spec.known)].isna().any(axis=1).to_numpy() if spec.known else np.zeros(len(rows), bool)
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise ForecastError(f"row {row} lacks known feature(s) "
                                f"{', '.join(c for c in spec.known if pd.isna(rows[c].iloc[row]))}: known features "
                                "are known in advance and the model uses them for every period it forecasts")
        by_key = self._index
        keys = series_keys(rows, spec)
        times = pd.DatetimeIndex(pd.to_datetime(rows[spec.time], errors="coerce"))
        if times.isna().any():
            row = int(np.flatnonzero(times.isna())[0])
            raise ForecastError(f"row {row} has no time in {spec.time!r}: each row names the period it forecasts")
        positions = self.frequency.positions(times, self.origin)
        known = self.encoding.apply(rows, spec.known)
        given: dict[int, FloatArray] = {}  # per series asked: the known features of each step ahead
        furthest: dict[int, int] = {}  # per series asked: the furthest step
        steps = np.zeros(len(rows), dtype=np.int64)
        for r, key in enumerate(keys):
            steps[r] = self._step(key, by_key, times[r], positions[r])
            index = by_key[key]
            furthest[index] = max(furthest.get(index, 0), int(steps[r]))
            if spec.known:
                given.setdefault(index, np.full((spec.horizon, len(spec.known)), np.nan))[steps[r] - 1] = known[r]
        needed = sorted(furthest)
        series = [_future_known(self.series[i], spec.horizon, given.get(i)) for i in needed]
        if spec.known:
            self._check_known([(s, furthest[i]) for s, i in zip(series, needed, strict=True)])
        path = _paths(self._design(), self.trained, series, [self.chosen])[self.chosen]
        row_of = {index: j for j, index in enumerate(needed)}
        return np.asarray([path[row_of[by_key[k]], steps[r] - 1] for r, k in enumerate(keys)], dtype=np.float64)

    @cached_property
    def _index(self) -> dict[SeriesKey, int]:
        """Each series' place, built once per loaded model rather than per request."""
        return {s.key: i for i, s in enumerate(self.series)}

    def _step(self, key: SeriesKey, by_key: dict[SeriesKey, int], time: pd.Timestamp, position: float) -> int:
        name = series_name(key, self.spec)
        if key not in by_key:
            raise ForecastError(f"series {name!r} has no history in training: it cannot be forecast (each "
                                f"forecast starts from the series' own values; it needs at least "
                                f"{min_history(self.frequency.season, self.spec.horizon)} periods of them)")
        if pd.isna(time):
            raise ForecastError(f"a row of {name} has no readable time")
        s = self.series[by_key[key]]
        end = self.frequency.times(self.origin, np.array([s.end], dtype=np.int64))[0]
        if position != math.floor(position):
            raise ForecastError(f"{time} is not on the {self.frequency.name} grid of {name} "
                                f"({self.frequency.reason})")
        step = int(position) - s.end
        if step < 1:
            raise ForecastError(f"{time} is not after the end of the history of {name} ({end}): forecasts "
                                f"start at the next {self.frequency.name} period")
        if step > self.spec.horizon:
            raise ForecastError(f"{time} is {step} {self.frequency.name} periods after the end of the history "
                                f"of {name} ({end}); the horizon is {self.spec.horizon} periods")
        return step

    def _check_known(self, asked: Sequence[tuple[_Series, int]]) -> None:
        """A recursive forecast steps through every period up to the furthest one asked: the known features of
        each of those periods must be given (the model was trained with them)."""
        if "lightgbm-recursive" not in self.chosen.split("+"):
            return
        for s, furthest in asked:
            future = s.known_at(np.arange(s.end + 1, s.end + furthest + 1, dtype=np.int64))
            if not np.isfinite(future).all():
                gap = int(np.flatnonzero(~np.isfinite(future).all(axis=1))[0])
                when = self.frequency.times(self.origin, np.array([s.end + 1 + gap], dtype=np.int64))[0]
                raise ForecastError(f"{series_name(s.key, self.spec)}: the forecast steps through every period up "
                                    f"to the last one asked, and needs the known features "
                                    f"({', '.join(self.spec.known)}) of each; send a row for {when} too")

    def refit_as(self, method: str) -> Forecaster:
        """The same history forecast by another candidate (to compare methods on the same windows)."""
        if method == self.chosen:
            return self
        return replace(self, chosen=method, scores={}, trained=_train(self._design(), self.series, self.spec.horizon,
                                                                      [method]))

    def forecast(self) -> pd.DataFrame:
        """The next ``horizon`` periods of every series (known features from the data's future rows)."""
        rows = []
        for s in self.series:
            positions = np.arange(s.end + 1, s.end + self.spec.horizon + 1, dtype=np.int64)
            frame = pd.DataFrame({self.spec.time: self.frequency.times(self.origin, positions)})
            for column, value in zip(self.spec.series, s.key, strict=True):
                frame[column] = value
            known = s.known_at(positions)
            for j, column in enumerate(self.spec.known):
                if column in self.encoding.categories:
                    codes = self.encoding.categories[column]
                    frame[column] = [codes[int(v)] if np.isfinite(v) else None for v in known[:, j]]
                else:
                    frame[column] = known[:, j]
            rows.append(frame)
        out = pd.concat(rows, ignore_index=True)
        return out.assign(forecast=self.predict(out))


def fit(frame: pd.DataFrame, spec: ForecastSpec, candidates: Sequence[str] = CANDIDATES,
        folds: int = DEFAULT_FOLDS, held_out: int = 0, deadline: float | None = None) -> Forecaster:
    """Check the data (DatasetRejected with every reason), backtest the candidates, refit the best on it all.
    ``held_out``: periods cut off the end of every series beforehand (``check_series``); ``deadline``: when the
    backtest starts no further fold (``backtest``)."""
    checked = check_series(frame, spec, held_out)
    reject_if_needed(checked)
    assert checked.origin is not None
    encoding = _Encoding()
    encoding.fit(frame, spec.known)
    series = _build_series(frame, spec, checked.frequency, checked.origin, encoding)
    design = _Design(checked.frequency, checked.origin, len(spec.known))
    if not _positive(series):  # no logarithm of zero or less
        candidates = [c for c in candidates if "lightgbm-log" not in c] or ["lightgbm"]
    scores, scored = backtest(design, series, spec.horizon, candidates, folds, deadline) if len(candidates) > 1 \
        else ({candidates[0]: math.nan}, 0)
    chosen = min(candidates, key=lambda name: (scores[name], candidates.index(name)))
    trained = _train(design, series, spec.horizon, [chosen])
    return Forecaster(spec, checked.frequency, checked.origin, chosen, scores, checked.findings, series,
                      encoding, trained, scored)
