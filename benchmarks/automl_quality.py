"""Model quality on a hold-out: this project's AutoML vs a default LightGBM vs a plain FLAML run.

All three train on the same 80% of the file and are judged on the same held-back
20%, in one run. Targets on the bank file: AUC >= 0.948, accuracy >= 0.912, never
more than 0.002 below the default LightGBM, training wall time <= 150 s.
Run: ``make bench-quality`` (``DATA=path.csv`` and ``AUTOML_TIME_BUDGET_S`` apply; ``EXCLUDE=duration``
leaves columns out of every model, e.g. a target-leakage suspect).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import dataset_bytes, holdout
from shared import metrics
from shared.dataset_validation import validate
from shared.local import artifacts, automl
from shared.model_contract import columns_from_frame
from shared.settings import Settings


def judge(y: Any, proba: Any, classes: list[str], threshold: float) -> tuple[float, float]:
    return (metrics.METRICS["accuracy"].compute(y, proba, classes, threshold),
            metrics.METRICS["AUC_weighted"].compute(y, proba, classes, threshold))


def main() -> int:
    content, source = dataset_bytes()
    budget = Settings.from_env().time_budget_s
    data = validate(content, "y", max_bytes=len(content) + 1, min_rows=50)
    excluded = [c for c in os.environ.get("EXCLUDE", "").split(",") if c.strip()]
    schema = data.schema.without(set(excluded))
    train, test = holdout(data.frame.drop(columns=excluded))
    y_test = automl.labels_of(test["y"])
    classes = sorted(set(automl.labels_of(data.frame["y"])))
    rows = []

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        outcome = automl.train(train, schema, "accuracy", budget, Path(tmp))
        ours_s = time.perf_counter() - started
        served = artifacts.load(tmp)  # the deployed artefact itself (ONNX), not the in-memory model
        proba = served.predict_proba(columns_from_frame(test, served.signature))
        rows.append(("this project (deployed artefact)", *judge(y_test, proba, outcome.classes, outcome.threshold),
                     ours_s, f"{outcome.best_learner}, {len(outcome.trials)} trials, t={outcome.threshold}"))

    from lightgbm import LGBMClassifier
    from sklearn.pipeline import Pipeline

    started = time.perf_counter()
    baseline = Pipeline([("prep", automl.preprocessor(schema)), ("model", LGBMClassifier(verbose=-1))])
    baseline.fit(automl.feature_frame(train, schema), automl.labels_of(train["y"]))
    base_proba = baseline.predict_proba(automl.feature_frame(test, schema))
    rows.append(("default LightGBM", *judge(y_test, base_proba, classes, 0.5), time.perf_counter() - started,
                 "LGBMClassifier() defaults"))

    from flaml import AutoML

    started = time.perf_counter()
    plain = AutoML()
    x_train = train.drop(columns=["y"])
    plain.fit(x_train, automl.labels_of(train["y"]), task="classification", metric="accuracy",
              time_budget=budget, verbose=0, seed=1)
    plain_proba = np.asarray(plain.predict_proba(test.drop(columns=["y"])))
    rows.append(("plain FLAML (metric=accuracy)", *judge(y_test, plain_proba, list(plain.classes_), 0.5),
                 time.perf_counter() - started, f"{plain.best_estimator}"))

    print(f"Data: {source}: {len(train):,} training rows, {len(test):,} held-out rows; budget {budget}s, "
          f"{os.cpu_count()} cores; excluded columns: {', '.join(excluded) or 'none'}")
    print(f"{'model':<34} {'accuracy':>9} {'AUC':>8} {'wall s':>8}  notes")
    for name, acc, auc, seconds, notes in rows:
        print(f"{name:<34} {acc:>9.4f} {auc:>8.4f} {seconds:>8.1f}  {notes}")
    ours, default = rows[0], rows[1]
    print(f"vs default LightGBM: accuracy {ours[1] - default[1]:+.4f}, AUC {ours[2] - default[2]:+.4f} "
          "(target: never below by more than 0.002)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
