"""Forecast accuracy: this project's forecaster vs seasonal naive, statsforecast's AutoETS and AutoARIMA, and
LightGBM on lag features built by hand, on series generated here with fixed seeds.

Benchmarks: (a) one monthly series, 12 years of trend and yearly seasonality, forecast 12 months ahead; (b) one
weekly series, 6 years with a yearly cycle (52.18 weeks, so last year's week is not quite this year's) and
persistent noise, 13 weeks ahead; (c) 20 daily series, 548 days each, with a weekly pattern of their own and two
features known in advance, a promotion flag and a price, 14 days ahead. Each contender trains on everything
before a test window and forecasts it: the last six windows of (a) and (b) (one series each: fewer would measure
the noise of a few weeks), the last one of (c) (20 series). It runs in a process of its own, which reports
its wall time (fit and forecast, imports excluded) and its peak RSS (imports included). statsforecast needs
pandas < 3, so AutoETS and AutoARIMA run in ``.venv-bench`` (``requirements-bench.txt``); AutoARIMA gets the
known features as exogenous regressors, AutoETS cannot use them.

Printed per benchmark: MAE (mean over its series and windows), its ratio to seasonal naive (geometric mean over
the series), the series where it is worse than seasonal naive, wall time and peak RSS; then the issue's targets:
MAE at or below seasonal naive on every series, geometric-mean ratio to seasonal naive <= 0.85, and on average
within 5% of the better of AutoETS and AutoARIMA (per benchmark, the better of the two on its mean MAE).
Run: ``make bench-forecast`` (``BENCH_CONTENDERS=...`` runs only the contenders named, comma-separated).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
PROJECT = "this project"
NAIVE = "seasonal naive"
FLOOR = "LightGBM lags (floor)"
PEERS = ("AutoETS", "AutoARIMA")
CANDIDATE_OF = {"only LightGBM direct": "lightgbm", "only LightGBM log": "lightgbm-log",
                "only LightGBM recursive": "lightgbm-recursive", "only damped ETS": "ets"}
DIAGNOSTIC = tuple(CANDIDATE_OF)


@dataclass(frozen=True)
class Benchmark:
    name: str
    frequency: str  # pandas alias, for statsforecast
    season: int
    horizon: int
    known: tuple[str, ...]
    frame: pd.DataFrame  # unique_id, ds, y, known features
    windows: int  # test windows, the latest last: each contender forecasts each from the history before it


def monthly() -> Benchmark:
    rng = np.random.default_rng(11)
    t = np.arange(144)
    y = 200 + 1.2 * t + (20 + 0.1 * t) * np.sin(2 * np.pi * t / 12) + 8 * np.cos(4 * np.pi * t / 12) \
        + rng.normal(0, 6, len(t))
    frame = pd.DataFrame({"unique_id": "m1", "ds": pd.date_range("2013-01-01", periods=len(t), freq="MS"), "y": y})
    return Benchmark("(a) monthly, 1 series", "MS", 12, 12, (), frame, 6)


def weekly() -> Benchmark:
    rng = np.random.default_rng(12)
    ds = pd.date_range("2018-01-01", periods=313, freq="W-MON")
    day = ds.day_of_year.to_numpy()
    noise = np.zeros(len(ds))
    for i in range(1, len(ds)):  # persistent noise: a bad week tends to be followed by another
        noise[i] = 0.6 * noise[i - 1] + rng.normal(0, 5)
    y = 500 + 0.3 * np.arange(len(ds)) + 60 * np.sin(2 * np.pi * day / 365.25) \
        + 25 * np.cos(4 * np.pi * day / 365.25) + noise
    return Benchmark("(b) weekly, 1 series", "W-MON", 52, 13, (), pd.DataFrame({"unique_id": "w1", "ds": ds, "y": y}),
                     6)


def daily_with_features(count: int = 20) -> Benchmark:
    rng = np.random.default_rng(13)
    ds = pd.date_range("2023-01-01", periods=548, freq="D")
    frames = []
    for i in range(count):
        level = rng.uniform(20, 200)
        week = 1 + rng.uniform(0.05, 0.4) * np.sin(2 * np.pi * (ds.day_of_week.to_numpy() + rng.uniform(0, 7)) / 7)
        promo = np.zeros(len(ds))
        for start in rng.choice(len(ds), size=25, replace=False):  # promotions of 3 to 7 days
            promo[start: start + rng.integers(3, 8)] = 1
        price = np.repeat(rng.uniform(0.8, 1.2, len(ds) // 30 + 1), 30)[: len(ds)] * rng.uniform(2, 20)
        reference = float(np.mean(price))
        trend = 1 + rng.uniform(-0.2, 0.4) * np.arange(len(ds)) / len(ds)
        mean = level * week * trend * (price / reference) ** -1.5 * (1 + rng.uniform(0.2, 0.6) * promo)
        y = mean * rng.lognormal(0, 0.08, len(ds))
        frames.append(pd.DataFrame({"unique_id": f"s{i:02d}", "ds": ds, "y": y, "promotion": promo,
                                    "price": price.round(2)}))
    return Benchmark(f"(c) daily, {count} series + known features", "D", 7, 14, ("promotion", "price"),
                     pd.concat(frames, ignore_index=True), 1)


def split(bench: Benchmark, window: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Window 0 is the last ``horizon`` periods of every series, window 1 the ``horizon`` before, and so on; the
    history is everything before the window."""
    back = bench.frame.groupby("unique_id")["ds"].rank(ascending=False, method="first") - 1
    test = (back >= window * bench.horizon) & (back < (window + 1) * bench.horizon)
    train = back >= (window + 1) * bench.horizon
    return bench.frame[train].reset_index(drop=True), bench.frame[test].reset_index(drop=True)


def seasonal_naive(train: pd.DataFrame, test: pd.DataFrame, season: int) -> np.ndarray:
    out = np.empty(len(test))
    for key, rows in test.groupby("unique_id"):
        history = train.loc[train["unique_id"] == key, "y"].to_numpy()
        for j, index in enumerate(rows.sort_values("ds").index):
            out[index] = history[len(history) - season + j % season]
    return out


# --- Contenders run in a child process --------------------------------------------------------------------------


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


def _project(train: pd.DataFrame, test: pd.DataFrame, meta: dict[str, Any], candidates: tuple[str, ...] | None
             ) -> tuple[np.ndarray, str]:
    from shared import forecasting

    spec = forecasting.ForecastSpec("ds", "y", meta["horizon"], ("unique_id",), tuple(meta["known"]))
    model = forecasting.fit(train, spec, candidates or forecasting.CANDIDATES)
    scores = ", ".join(f"{name} {value:.4f}" for name, value in model.scores.items())
    return model.predict(test), f"chose {model.chosen} (backtest scaled MAE: {scores})"


def _floor(train: pd.DataFrame, test: pd.DataFrame, meta: dict[str, Any]) -> np.ndarray:
    """LightGBM's defaults on the last ``season`` values (and known features), pooled, one step at a time."""
    from lightgbm import LGBMRegressor

    lags = max(meta["season"], 7)
    known = list(meta["known"])
    rows, targets = [], []
    for _, part in train.groupby("unique_id"):
        y = part["y"].to_numpy()
        extra = part[known].to_numpy(dtype=float)
        for t in range(lags, len(y)):
            rows.append(np.concatenate([y[t - lags: t], extra[t]]))
            targets.append(y[t])
    model = LGBMRegressor(verbose=-1, n_jobs=1).fit(np.asarray(rows), np.asarray(targets))
    out = np.empty(len(test))
    for key, part in test.groupby("unique_id"):
        history = list(train.loc[train["unique_id"] == key, "y"].to_numpy())
        part = part.sort_values("ds")
        for index, features in zip(part.index, part[known].to_numpy(dtype=float), strict=True):
            value = float(model.predict(np.concatenate([history[-lags:], features])[None, :])[0])
            history.append(value)
            out[index] = value
    return out


def child(contender: str, folder: Path) -> None:
    """Forecast every benchmark's test rows; write the forecasts, the time each took and the peak RSS."""
    result: dict[str, Any] = {}
    for meta in json.loads((folder / "meta.json").read_text()):
        train = pd.read_csv(folder / f"{meta['key']}-train.csv", parse_dates=["ds"])
        test = pd.read_csv(folder / f"{meta['key']}-test.csv", parse_dates=["ds"])
        started = time.perf_counter()
        note = ""
        if contender == PROJECT:
            values, note = _project(train, test, meta, None)
        elif contender in CANDIDATE_OF:
            values, note = _project(train, test, meta, (CANDIDATE_OF[contender],))
        else:
            values = _floor(train, test, meta)
        result[meta["key"]] = {"forecast": [float(v) for v in values], "seconds": time.perf_counter() - started,
                               "note": note}
    result["peak_rss_mib"] = peak_rss_mib()
    (folder / f"{contender}.json").write_text(json.dumps(result))


# --- The comparison ---------------------------------------------------------------------------------------------


def run_child(contender: str, folder: Path) -> dict[str, Any]:
    if contender in PEERS:
        if not PEER_PYTHON.exists():
            raise SystemExit(f"{PEER_PYTHON} is missing: run `make bench-forecast`, which installs the peers")
        command = [str(PEER_PYTHON), "-m", "benchmarks.forecast_peers", contender, str(folder)]
    else:
        command = [sys.executable, "-m", "benchmarks.forecast", "--child", contender, str(folder)]
    subprocess.run(command, check=True, cwd=ROOT)
    loaded: dict[str, Any] = json.loads((folder / f"{contender}.json").read_text())
    return loaded


def geometric_mean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def main() -> int:
    benchmarks = [monthly(), weekly(), daily_with_features()]
    chosen = [c.strip() for c in os.environ.get("BENCH_CONTENDERS", "").split(",") if c.strip()]
    contenders = tuple(c for c in (PROJECT, FLOOR, *PEERS, *DIAGNOSTIC) if not chosen or c in chosen)
    print(f"{os.cpu_count()} cores; each contender in a process of its own; windows: "
          + ", ".join(f"{b.name.split()[0]} {b.windows} of {b.horizon}" for b in benchmarks))
    splits = {(i, w): split(b, w) for i, b in enumerate(benchmarks) for w in range(b.windows)}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        meta = []
        for (i, w), (train, test) in splits.items():
            bench = benchmarks[i]
            train.to_csv(folder / f"b{i}w{w}-train.csv", index=False)
            test.drop(columns="y").to_csv(folder / f"b{i}w{w}-test.csv", index=False)
            meta.append({"key": f"b{i}w{w}", "frequency": bench.frequency, "season": bench.season,
                         "horizon": bench.horizon, "known": list(bench.known)})
        (folder / "meta.json").write_text(json.dumps(meta))
        results = {name: run_child(name, folder) for name in contenders}
    return report(benchmarks, splits, results, contenders)


def _errors(tests: list[pd.DataFrame], forecasts: list[np.ndarray]) -> dict[str, float]:
    """MAE per series over every window of a benchmark."""
    errors = pd.concat([test.assign(error=np.abs(forecast - test["y"].to_numpy()))
                        for test, forecast in zip(tests, forecasts, strict=True)])
    return {str(k): float(v) for k, v in errors.groupby("unique_id")["error"].mean().items()}


def print_per_series(per_series: dict[str, dict[str, float]]) -> None:
    """MAE per series, each contender a column; * marks the series' best."""
    names = list(per_series)
    print(f"{'':<40}   MAE per series: " + " | ".join(names))
    for series in sorted(per_series[NAIVE]):
        values = [per_series[name].get(series, float("nan")) for name in names]
        best = min(v for v in values if v == v)
        cells = " | ".join(f"{v:.3f}{'*' if v == best else ''}" for v in values)
        print(f"{'':<40}   {series:<10} {cells}")


def report(benchmarks: list[Benchmark], splits: dict[tuple[int, int], tuple[pd.DataFrame, pd.DataFrame]],
           results: dict[str, dict[str, Any]], contenders: tuple[str, ...]) -> int:
    print(f"{'benchmark':<40} {'contender':<26} {'MAE':>9} {'/ naive':>8} {'worse':>6} {'wall s':>7} "
          f"{'peak RSS MiB':>12}")
    project_ratios: list[float] = []
    worse_total = 0
    peer_gaps: list[float] = []
    for i, bench in enumerate(benchmarks):
        windows = [splits[(i, w)] for w in range(bench.windows)]
        tests = [test for _, test in windows]
        naive = _errors(tests, [seasonal_naive(train, test, bench.season) for train, test in windows])
        maes: dict[str, float] = {NAIVE: statistics.fmean(naive.values())}
        per_series: dict[str, dict[str, float]] = {NAIVE: naive}
        print(f"{bench.name:<40} {NAIVE:<26} {maes[NAIVE]:>9.3f} {1.0:>8.3f} {'':>6} {'':>7} {'':>12}")
        for name in contenders:
            got = results[name]
            per = _errors(tests, [np.asarray(got[f"b{i}w{w}"]["forecast"]) for w in range(bench.windows)])
            per_series[name] = per
            ratios = [per[k] / naive[k] for k in per]
            worse = sum(r > 1 for r in ratios)
            maes[name] = statistics.fmean(per.values())
            seconds = sum(got[f"b{i}w{w}"]["seconds"] for w in range(bench.windows))
            print(f"{'':<40} {name:<26} {maes[name]:>9.3f} {geometric_mean(ratios):>8.3f} "
                  f"{worse:>3}/{len(ratios):<2} {seconds:>7.1f} {got['peak_rss_mib']:>12.0f}")
            if name == PROJECT:
                project_ratios += ratios
                worse_total += worse
                for w in range(bench.windows):
                    print(f"{'':<40}   window {w}: {got[f'b{i}w{w}']['note']}")
        print_per_series(per_series)
        if PROJECT in maes and all(p in maes for p in PEERS):
            gap = maes[PROJECT] / min(maes[p] for p in PEERS) - 1
            peer_gaps.append(gap)
            print(f"{'':<40} gap to the better of AutoETS/AutoARIMA: {gap:+.1%}")
    if project_ratios:
        geo = geometric_mean(project_ratios)
        print(f"\ntargets: MAE <= seasonal naive on every series: {worse_total} worse "
              f"({'met' if not worse_total else 'NOT met'}); geometric-mean ratio to seasonal naive over "
              f"{len(project_ratios)} series {geo:.3f} <= 0.85 ({'met' if geo <= 0.85 else 'NOT met'})")
    if peer_gaps:
        mean_gap = statistics.fmean(peer_gaps)
        print(f"mean gap to the better of AutoETS/AutoARIMA {mean_gap:+.1%} <= +5% "
              f"({'met' if mean_gap <= 0.05 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=2, metavar=("CONTENDER", "FOLDER"))
    arguments = parser.parse_args()
    if arguments.child:
        child(arguments.child[0], Path(arguments.child[1]))
        raise SystemExit(0)
    raise SystemExit(main())
