"""What ``"explain": true`` costs per request, per learner, beside the prediction alone (in process).

Trains each learner briefly on generated bank-like rows, then times 1-row and
100-row calls of the served artefact's prediction and of its explanation.
Target: a 1-row explanation within a few milliseconds. Run: ``make bench-explain``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from unittest import mock

import pandas as pd

from cli import sample_data
from shared.dataset_validation import validate
from shared.local import artifacts, automl
from shared.model_contract import columns_from_frame
from shared.tasks import CLASSIFICATION


def per_call_ms(call: object, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        call()  # type: ignore[operator]
    return (time.perf_counter() - started) / repeat * 1000


def main() -> int:
    data = validate(sample_data.to_csv(sample_data.rows(3000, seed=4)), "y", max_bytes=10**8, min_rows=50)
    print(f"{'learner':<12} {'predict 1 row':>14} {'explain 1 row':>14} {'predict 100':>12} {'explain 100':>12}  ms")
    worst = 0.0
    for learner in ("lgbm", "xgboost", "rf", "extra_tree", "lrl1"):
        with tempfile.TemporaryDirectory() as folder, mock.patch.object(CLASSIFICATION, "learners", (learner,)):
            automl.train(data.frame, data.schema, "accuracy", 3, Path(folder))
            model = artifacts.load(folder)
            rows = pd.read_csv(Path(folder) / "validation.csv")
            timings = []
            for count in (1, 100):
                columns = columns_from_frame(rows.head(count), model.signature)
                labels = model.results(model.predict(columns))
                model.explain(columns, labels)  # loads the native model once
                timings += [per_call_ms(lambda m=model, c=columns: m.predict(c), 200),
                            per_call_ms(lambda m=model, c=columns, y=labels: m.explain(c, y), 20)]
            worst = max(worst, timings[1])
            print(f"{learner:<12} {timings[0]:>14.3f} {timings[1]:>14.3f} {timings[2]:>12.3f} {timings[3]:>12.3f}")
    print(f"slowest 1-row explanation: {worst:.2f} ms (target: a few ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
