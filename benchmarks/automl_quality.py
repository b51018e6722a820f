"""Model quality on held-out rows: this project's AutoML vs LightGBM's defaults vs plain FLAML, over public tables.

Tables that ship with PyPI packages (so it runs offline): scikit-learn's breast_cancer (binary), wine
(three classes) and diabetes (regression), plus the bank file (``DATA`` or the kit's file). Each table is
turned into a CSV and read by the project's own validation, as an upload would be; then, for each of
``BENCH_SPLITS`` (default 3) seeded, stratified 80/20 splits, the three contenders train on the same 80%
and are judged on the same 20%. This project is judged through its deployed artefact (ONNX when it
exported). Printed: mean ± standard deviation of AUC (weighted one-vs-rest), accuracy and macro F1, and the
training wall time. Target: at least LightGBM's defaults on every table, better on average; on the bank
file, AUC >= 0.950. Run: ``make bench-quality`` (``AUTOML_TIME_BUDGET_S`` is the budget of both AutoMLs;
``BENCH_TABLES=wine,bank`` picks tables).
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
    auc: float
    accuracy: float
    macro_f1: float
    seconds: float


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
    return Scores(metrics.METRICS["AUC_weighted"].compute(y, proba, classes, threshold),
                  metrics.METRICS["accuracy"].compute(y, proba, classes, threshold),
                  float(f1_score(y, labels, average="macro")), seconds)


def _split(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(frame, test_size=0.2, random_state=seed, stratify=frame["y"])
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _contenders(data: ValidatedDataset, seed: int, budget: float) -> dict[str, Scores]:
    schema = data.schema
    train, test = _split(data.frame, seed)
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


def _cell(values: list[float], digits: int = 4) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"


def main() -> int:
    budget = Settings.from_env().time_budget_s
    chosen = tables()
    print(f"{SPLITS} seeded 80/20 splits per table; AutoML budget {budget}s; {os.cpu_count()} cores")
    print(f"{'table':<22} {'contender':<18} {'AUC':>17} {'accuracy':>17} {'macro F1':>17} {'train s':>13}")
    wins: list[float] = []
    for name, (content, target) in chosen.items():
        try:
            data = validate(content, target, max_bytes=len(content) + 1, min_rows=50)
        except DatasetRejected as rejected:
            print(f"{name:<22} skipped: the project refuses it ({rejected.reason})")
            continue
        runs = [_contenders(data, seed, budget) for seed in range(SPLITS)]
        for contender in CONTENDERS:
            scores = [run[contender] for run in runs]
            print(f"{name:<22} {contender:<18} {_cell([s.auc for s in scores]):>17} "
                  f"{_cell([s.accuracy for s in scores]):>17} {_cell([s.macro_f1 for s in scores]):>17} "
                  f"{_cell([s.seconds for s in scores], 1):>13}")
        gap = statistics.mean(r[CONTENDERS[0]].auc - r[CONTENDERS[1]].auc for r in runs)
        wins.append(gap)
        print(f"{name:<22} AUC vs LightGBM defaults: {gap:+.4f}")
    if wins:
        print(f"mean AUC gain over LightGBM defaults: {statistics.mean(wins):+.4f} "
              f"(target: >= 0 on every table, > 0 on average); tables below: {sum(w < 0 for w in wins)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
