"""statsforecast's AutoETS or AutoARIMA on the forecasting benchmark's files, in ``.venv-bench``.

Run by ``benchmarks.forecast`` as ``.venv-bench/bin/python -m benchmarks.forecast_peers MODEL FOLDER``: reads
the folder's ``meta.json`` and each benchmark's train and test files, writes ``MODEL.json`` with the forecast of
every test row (in the test file's order), the seconds each benchmark took and the process's peak RSS. Imports
nothing of the project: statsforecast needs pandas < 3, the project's venv has pandas 3.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


def forecast(model_name: str, train: pd.DataFrame, test: pd.DataFrame, meta: dict[str, Any]) -> list[float]:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS

    season = meta["season"]
    known = list(meta["known"])
    if model_name == "AutoARIMA":  # the known features as exogenous regressors
        model: Any = AutoARIMA(season_length=season)
        history, future = train[["unique_id", "ds", "y", *known]], test[["unique_id", "ds", *known]]
    else:  # AutoETS has no exogenous regressors
        model = AutoETS(season_length=season)
        history, future = train[["unique_id", "ds", "y"]], None
    engine = StatsForecast(models=[model], freq=meta["frequency"], n_jobs=1)
    out = engine.forecast(df=history, h=meta["horizon"], X_df=future)
    merged = test[["unique_id", "ds"]].merge(out, on=["unique_id", "ds"], how="left")
    return [float(v) for v in merged[model_name]]


def main(model_name: str, folder: Path) -> None:
    result: dict[str, Any] = {}
    for meta in json.loads((folder / "meta.json").read_text()):
        train = pd.read_csv(folder / f"{meta['key']}-train.csv", parse_dates=["ds"])
        test = pd.read_csv(folder / f"{meta['key']}-test.csv", parse_dates=["ds"])
        started = time.perf_counter()
        values = forecast(model_name, train, test, meta)
        result[meta["key"]] = {"forecast": values, "seconds": time.perf_counter() - started, "note": ""}
    result["peak_rss_mib"] = peak_rss_mib()
    (folder / f"{model_name}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
