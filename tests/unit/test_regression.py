"""Regression without training: task detection, its metrics against scikit-learn's and SciPy's, scoring,
batch scoring, drift on the predictions and the OpenAPI result type."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from cli import sample_data
from shared import drift, metrics, openapi, scoring, tasks
from shared.batch import score_csv
from shared.dataset_validation import validate
from shared.errors import BadRequest, DatasetRejected
from shared.model_contract import Columns, ModelSignature, Outputs
from shared.schema import Column
from tests.unit.fakes import ConstantModel

HOMES = sample_data.to_csv(sample_data.home_rows(300))


def series(values: list[object], name: str = "target") -> pd.Series:
    return pd.Series(values, name=name)


@pytest.mark.parametrize(("values", "task", "reason"), [
    (["yes", "no"] * 30, "classification", "holds labels"),
    ([0.5, 1.25, 3.0] * 20, "regression", "fractional numbers"),
    ([1, 2, 3, 4, 5] * 12, "classification", "5 distinct whole numbers"),
    (list(range(60)), "regression", "60 distinct whole numbers"),
    ([True, False] * 30, "classification", "holds labels"),
    (["1.0", "0.0"] * 30, "classification", "2 distinct whole numbers"),  # codes written as floats
])
def test_the_target_values_decide_the_task_and_say_why(values, task, reason):
    choice = tasks.choose(series(values), None)
    assert choice.task == task and reason in choice.reason


def test_the_upload_can_override_the_guess_but_not_into_nonsense():
    codes = series([1, 2, 3] * 20)
    assert tasks.choose(codes, tasks.Task.REGRESSION).task == "regression"
    assert tasks.choose(series(list(range(60))), tasks.Task.CLASSIFICATION).task == "classification"
    with pytest.raises(DatasetRejected, match=r"not numeric .*'high'") as rejected:
        tasks.choose(series([1.5, "high"] * 30), tasks.Task.REGRESSION)
    assert rejected.value.code == "target_not_numeric"


def test_a_numeric_target_validates_as_regression_with_a_float_target_and_its_missing_rows_dropped():
    text = HOMES.decode().splitlines()
    text[3] = text[3].rsplit(",", 1)[0] + ",NA"  # one row without a price
    dataset = validate("\n".join(text).encode(), "price", max_bytes=10**7, min_rows=50)
    assert dataset.schema.task == "regression" and dataset.task.task == "regression"
    assert dataset.dropped_rows == 1 and dataset.frame["price"].dtype == np.float64
    assert dataset.schema.column("garden").kind == "boolean"
    # Classification limits do not apply: hundreds of distinct prices are fine.
    assert dataset.frame["price"].nunique() > 100
    # Forced to classification, the same file says why it cannot be, and what to do.
    with pytest.raises(DatasetRejected, match="set metadata 'task' to regression"):
        validate(HOMES, "price", max_bytes=10**7, min_rows=50, task=tasks.Task.CLASSIFICATION)


def test_regression_metrics_match_scikit_learn_and_scipy():
    rng = np.random.default_rng(3)
    y = rng.normal(200, 40, 500)
    predicted = y + rng.normal(0, 15, 500)
    outputs = predicted.reshape(-1, 1)
    spread = y.max() - y.min()
    found = metrics.all_metrics(y, outputs, [], 0.5, "regression")
    assert set(found) == {"normalized_root_mean_squared_error", "r2_score", "normalized_mean_absolute_error",
                          "spearman_correlation"}
    assert found["r2_score"] == pytest.approx(r2_score(y, predicted))
    assert found["normalized_root_mean_squared_error"] == pytest.approx(np.sqrt(mean_squared_error(y, predicted))
                                                                        / spread)
    assert found["normalized_mean_absolute_error"] == pytest.approx(mean_absolute_error(y, predicted) / spread)
    assert found["spearman_correlation"] == pytest.approx(spearmanr(y, predicted).statistic)
    # Lower errors are better, higher r2 and rank correlation are; the gate reads that from the metric.
    nrmse = metrics.resolve("nrmse")
    assert metrics.better(nrmse, 0.1, 0.2) and not metrics.better(nrmse, 0.3, 0.2)
    assert metrics.better(metrics.resolve("r2"), 0.6, 0.5)
    # A constant prediction ranks nothing: 0, not NaN, so that a gate can still compare it.
    assert metrics.resolve("spearman_correlation").compute(y, np.full((500, 1), 3.0), [], 0.5) == 0.0


SIGNATURE = ModelSignature((Column("size_m2", "number"), Column("district", "string", categories=("centre",))),
                           "price", (), task=tasks.REGRESSION)


def test_scoring_a_regression_model_returns_numbers_and_refuses_probabilities():
    model = ConstantModel(SIGNATURE, [412.34567891])
    rows: list[dict[str, object]] = [{"size_m2": 80.0, "district": "centre"}, {"size_m2": None, "district": "hills"}]
    answer = scoring.score(scoring.ScoreRequest(rows, False), model)
    assert answer["result"] == [412.345679, 412.345679] and answer["unseen_categories"] == 1
    with pytest.raises(BadRequest, match="regression model: it predicts a number for 'price'") as refused:
        scoring.score(scoring.ScoreRequest(rows, True), model)
    assert refused.value.status_code == 400


def test_an_answer_beyond_any_number_is_null_so_the_response_stays_json():
    """Inputs far beyond the training data can drive a model to infinity (or NaN): JSON has no word for those."""
    rows: list[dict[str, object]] = [{"size_m2": 3e38, "district": "centre"}]
    for overflow in (math.inf, -math.inf, math.nan):
        answer = scoring.score(scoring.ScoreRequest(rows, False), ConstantModel(SIGNATURE, [overflow]))
        assert answer["result"] == [None]
        json.dumps(answer, allow_nan=False)


def test_batch_scoring_a_regression_model_writes_numbers_and_summarises_them():
    pieces: list[bytes] = []
    summary = score_csv(b"size_m2,district\n80,centre\n120,harbour\n", ConstantModel(SIGNATURE, [250.5]), 100,
                        pieces.append)
    lines = b"".join(pieces).decode().splitlines()
    assert lines[0] == "size_m2,district,prediction" and lines[1].endswith(",250.5")
    assert summary["predictions"] == {"min": 250.5, "mean": 250.5, "max": 250.5}


def test_a_prediction_beyond_float_range_is_an_empty_cell_counted_in_the_summary_not_inf():
    class Overflowing(ConstantModel):
        def predict(self, columns: Columns) -> Outputs:
            return np.array([[250.5], [np.inf], [-np.inf], [100.0]])

    pieces: list[bytes] = []
    content = b"size_m2,district\n80,centre\n1e300,harbour\n-1e300,harbour\n60,centre\n"
    summary = score_csv(content, Overflowing(SIGNATURE, [0.0]), 100, pieces.append)
    lines = b"".join(pieces).decode().splitlines()
    assert [line.rsplit(",", 1)[-1] for line in lines[1:]] == ["250.5", "", "", "100.0"]
    assert "inf" not in b"".join(pieces).decode()
    assert summary["rows"] == 4
    assert summary["predictions"] == {"min": 100.0, "mean": 175.25, "max": 250.5, "not_finite": 2}


def test_the_openapi_result_of_a_regression_model_is_a_number_and_of_a_classifier_its_labels():
    classifier = ModelSignature((Column("age", "integer"),), "y", ("no", "yes"), threshold=0.5)
    document = openapi.document({"homes": SIGNATURE, "bank": classifier}, "homes")
    schemas = document["components"]["schemas"]
    assert schemas["Result_homes"]["properties"]["result"]["items"] == {"type": ["number", "null"]}
    assert "probabilities" not in schemas["Result_homes"]["properties"]
    assert schemas["Result_bank"]["properties"]["result"]["items"] == {"type": "string", "enum": ["no", "yes"]}
    ok = document["paths"]["/score"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/Result_homes"}


def test_drift_of_a_regression_model_watches_its_predictions():
    training = np.random.default_rng(1).normal(300, 50, 2000)
    frame = pd.DataFrame({"size_m2": np.linspace(30, 200, 2000), "district": ["centre"] * 2000})
    reference = drift.baseline(frame, SIGNATURE.features, predictions=training)
    assert "positive_rate" not in reference and reference["prediction"]["kind"] == "number"

    def window(predictions: np.ndarray) -> drift.WindowSummary:
        watch = drift.DriftMonitor("homes", "1", "run_1", "homes:1", reference, "", 0.2, min_rows=100)
        for start in range(0, 1000, 10):
            columns, _ = scoring.columns_for(
                [{"size_m2": float(v), "district": "centre"} for v in np.linspace(30, 200, 1000)[start:start + 10]],
                SIGNATURE)
            watch.observe(columns, [float(p) for p in predictions[start:start + 10]])
        summary = watch.summarise()
        assert summary is not None and summary.positive_rate is None
        return summary

    alike = window(np.random.default_rng(2).normal(300, 50, 1000))
    assert alike.prediction_psi is not None and alike.prediction_psi < 0.1
    shifted = window(np.random.default_rng(3).normal(420, 50, 1000))  # predictions moved up a lot
    assert shifted.prediction_psi is not None and shifted.prediction_psi > 0.5
    watch = drift.DriftMonitor("homes", "1", "run_1", "homes:1", reference, "", 0.2, min_rows=100)
    assert watch.drifted(shifted) and watch.event(shifted)["predictionDriftCoefficient"] == shifted.prediction_psi
