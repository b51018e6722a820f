"""Model quality on held-out rows: this project's AutoML vs LightGBM's defaults vs plain FLAML, over public tables.

Tables that ship with PyPI packages (so it runs offline): scikit-learn's breast_cancer (binary), wine
(three classes) and diabetes (regression), plus the bank file (``DATA`` or the kit's file). Each table is
turned into a CSV and read by the project's own validation, as an upload would be; then, for each of
``BENCH_SPLITS`` (default 3) seeded 80/20 splits (stratified for classes), the three contenders train on
the same 80% and are judged on the same 20%. This project is judged through its deployed artefact (ONNX
when it exported). Printed: mean ± standard deviation of AUC (weighted one-vs-rest), accuracy and macro
F1, or for regression R² and normalized RMSE, and the training wall time. Target: at least LightGBM's
defaults on every table, better on average; on the bank file, AUC >= 0.950. Run: ``make bench-quality``
(``AUTOML_TIME_BUDGET_S`` is the budget of both AutoMLs; ``BENCH_TABLES=wine,bank`` picks tables).
"""

from __future__ import annotations

import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from benchmarks.common import dataset_bytes
from shared import metrics
from shared.dataset_validation import ValidatedDataset, validate
from shared.errors import DatasetRejected
from shared.local import artifacts, automl
from shared.model_contract import columns_from_frame
from shared.settings import Settings

SPLITS = int(os.environ.get("BENCH_SPLITS", "3"))
CONTENDERS = ("this project", "LightGBM defaults", "plain FLAML")


@dataclass(frozen=True)
class Scores:
    values: dict[str, float]  # the task's columns (COLUMNS), higher or lower as each metric says
    seconds: float


COLUMNS = {"classification": ("AUC", "accuracy", "macro F1"), "regression": ("R2", "NRMSE")}
HEADLINE = {"classification": "AUC", "regression": "R2"}  # compared with LightGBM's defaults


def _sklearn_table(loader: Callable[..., Any], names: list[str] | None) -> bytes:
    bunch = loader(as_frame=True)
    frame = bunch.frame.rename(columns={"target": "y"})
    if names is not None:
        frame["y"] = [names[int(v)] for v in frame["y"]]
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def tables() -> dict[str, tuple[bytes, str]]:
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

    content, source = dataset_bytes()
    found = {
        "breast_cancer": (_sklearn_table(load_breast_cancer, ["malignant", "benign"]), "y"),
        "wine": (_sklearn_table(load_wine, ["class_0", "class_1", "class_2"]), "y"),
        "diabetes": (_sklearn_table(load_diabetes, None), "y"),
        "bank": (content, "y"),
    }
    print(f"bank: {source}")
    chosen = [t.strip() for t in os.environ.get("BENCH_TABLES", "").split(",") if t.strip()]
    return {name: table for name, table in found.items() if not chosen or name in chosen}


def _judge(y: Any, proba: Any, classes: list[str], threshold: float, seconds: float) -> Scores:
    if len(classes) == 2:
        labels = np.where(proba[:, 1] >= threshold, classes[1], classes[0])
    else:
        labels = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    return Scores({"AUC": metrics.METRICS["AUC_weighted"].compute(y, proba, classes, threshold),
                   "accuracy": metrics.METRICS["accuracy"].compute(y, proba, classes, threshold),
                   "macro F1": float(f1_score(y, labels, average="macro"))}, seconds)


def _judge_numbers(y: Any, predicted: Any, seconds: float) -> Scores:
    outputs = np.asarray(predicted, dtype=np.float64).reshape(-1, 1)
    return Scores({"R2": metrics.METRICS["r2_score"].compute(y, outputs, [], 0.5),
                   "NRMSE": metrics.METRICS["normalized_root_mean_squared_error"].compute(y, outputs, [], 0.5)},
                  seconds)


def _split(frame: pd.DataFrame, seed: int, stratify: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(frame, test_size=0.2, random_state=seed, stratify=frame["y"] if stratify else None)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _contenders(data: ValidatedDataset, seed: int, budget: float) -> dict[str, Scores]:
    if data.schema.task == "regression":
        return _regression_contenders(data, seed, budget)
    schema = data.schema
    train, test = _split(data.frame, seed, stratify=True)
    y_test = automl.labels_of(test["y"])
    classes = sorted(set(automl.labels_of(data.frame["y"])))
    out: dict[str, Scores] = {}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        outcome = automl.train(train, schema, "AUC_weighted", budget, Path(tmp))
        served = artifacts.load(tmp)  # the deployed artefact itself
        proba = served.predict(columns_from_frame(test, served.signature))
        out[CONTENDERS[0]] = _judge(y_test, proba, outcome.classes, outcome.threshold or 0.5,
                                    time.perf_counter() - started)

    from lightgbm import LGBMClassifier
    from sklearn.pipeline import Pipeline

    started = time.perf_counter()
    baseline = Pipeline([("prep", automl.preprocessor(schema)), ("model", LGBMClassifier(verbose=-1))])
    baseline.fit(automl.feature_frame(train, schema), automl.labels_of(train["y"]))
    out[CONTENDERS[1]] = _judge(y_test, baseline.predict_proba(automl.feature_frame(test, schema)), classes, 0.5,
                                time.perf_counter() - started)

    from flaml.automl import AutoML

    started = time.perf_counter()
    plain = AutoML()
    auc = "roc_auc" if len(classes) == 2 else "roc_auc_ovr_weighted"  # FLAML's names for AUC_weighted
    plain.fit(train.drop(columns=["y"]), automl.labels_of(train["y"]), task="classification", metric=auc,
              time_budget=budget, verbose=0, seed=seed)
    out[CONTENDERS[2]] = _judge(y_test, np.asarray(plain.predict_proba(test.drop(columns=["y"]))),
                                [str(c) for c in plain.classes_], 0.5, time.perf_counter() - started)
    return out


def _regression_contenders(data: ValidatedDataset, seed: int, budget: float) -> dict[str, Scores]:
    schema = data.schema
    train, test = _split(data.frame, seed, stratify=False)
    y_test = test["y"].to_numpy(dtype=np.float64)
    out: dict[str, Scores] = {}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        automl.train(train, schema, "normalized_root_mean_squared_error", budget, Path(tmp))
        served = artifacts.load(tmp)  # the deployed artefact itself
        out[CONTENDERS[0]] = _judge_numbers(y_test, served.predict(columns_from_frame(test, served.signature)),
                                            time.perf_counter() - started)

    from lightgbm import LGBMRegressor
    from sklearn.pipeline import Pipeline

    started = time.perf_counter()
    baseline = Pipeline([("prep", automl.preprocessor(schema)), ("model", LGBMRegressor(verbose=-1))])
    baseline.fit(automl.feature_frame(train, schema), train["y"].to_numpy(dtype=np.float64))
    out[CONTENDERS[1]] = _judge_numbers(y_test, baseline.predict(automl.feature_frame(test, schema)),
                                        time.perf_counter() - started)

    from flaml.automl import AutoML

    started = time.perf_counter()
    plain = AutoML()
    plain.fit(train.drop(columns=["y"]), train["y"].to_numpy(dtype=np.float64), task="regression", metric="r2",
              time_budget=budget, verbose=0, seed=seed)
    out[CONTENDERS[2]] = _judge_numbers(y_test, plain.predict(test.drop(columns=["y"])),
                                        time.perf_counter() - started)
    return out


def _cell(values: list[float], digits: int = 4) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"


def main() -> int:
    budget = Settings.from_env().time_budget_s
    chosen = tables()
    print(f"{SPLITS} seeded 80/20 splits per table; AutoML budget {budget}s; {os.cpu_count()} cores")
    wins: list[float] = []
    for name, (content, target) in chosen.items():
        try:
            data = validate(content, target, max_bytes=len(content) + 1, min_rows=50)
        except DatasetRejected as rejected:
            print(f"{name:<22} skipped: the project refuses it ({rejected.reason})")
            continue
        task = str(data.schema.task)
        columns = COLUMNS[task]
        print(f"{name + ' (' + task + ')':<30} {'contender':<18} "
              + " ".join(f"{c:>17}" for c in columns) + f" {'train s':>13}")
        runs = [_contenders(data, seed, budget) for seed in range(SPLITS)]
        for contender in CONTENDERS:
            scores = [run[contender] for run in runs]
            print(f"{'':<30} {contender:<18} " + " ".join(f"{_cell([s.values[c] for s in scores]):>17}"
                                                           for c in columns)
                  + f" {_cell([s.seconds for s in scores], 1):>13}")
        headline = HEADLINE[task]
        gap = statistics.mean(r[CONTENDERS[0]].values[headline] - r[CONTENDERS[1]].values[headline] for r in runs)
        wins.append(gap)
        print(f"{'':<30} {headline} vs LightGBM defaults: {gap:+.4f}")
    if wins:
        print(f"mean gain over LightGBM defaults (AUC, or R2 for regression): {statistics.mean(wins):+.4f} "
              f"(target: >= 0 on every table, > 0 on average); tables below: {sum(w < 0 for w in wins)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
