"""The soft vote: greedy weights, one ONNX file that agrees with it, explanations that add up to its output."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import joblib
import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import ElasticNet, LogisticRegression
from sklearn.pipeline import Pipeline

from cli import sample_data
from shared.dataset_validation import ValidatedDataset, validate
from shared.local import artifacts, automl, ensemble, onnx_export
from shared.local.explain import Explainer
from shared.tasks import CLASSIFICATION, REGRESSION

pytestmark = pytest.mark.integration


def test_greedy_selection_weighs_members_that_err_on_different_rows_and_not_a_useless_one():
    y = np.arange(200, dtype=float)
    left = y + np.where(np.arange(200) < 100, 0.0, 30.0)  # right on the first half only
    right = y + np.where(np.arange(200) < 100, -30.0, 0.0)  # right on the second half only
    useless = y + 60.0 * (-1.0) ** np.arange(200)  # wrong everywhere
    oofs = [v.reshape(-1, 1) for v in (left, right, useless)]
    loss = REGRESSION.fold_loss(y)
    weights = ensemble.greedy_weights(oofs, loss)
    assert weights[2] <= 0.1 and weights[0] > 0.3 and weights[1] > 0.3 and weights.sum() == pytest.approx(1)
    blended = np.tensordot(weights, np.stack(oofs), axes=1)
    assert loss(blended) < min(loss(oofs[0]), loss(oofs[1]))
    # Class probabilities: the log loss of the class codes decides.
    codes = np.array([0, 1, 1, 0])
    sure = np.array([[0.9, 0.1], [0.1, 0.9], [0.2, 0.8], [0.8, 0.2]])
    unsure = np.full((4, 2), 0.5)
    assert list(ensemble.greedy_weights([unsure, sure], CLASSIFICATION.fold_loss(codes))) == [0, 1]


def _fitted(dataset: ValidatedDataset, vote: object, regression: bool) -> tuple[Pipeline, pd.DataFrame]:
    schema = dataset.schema
    prep = automl.preprocessor(schema)
    x = prep.fit_transform(automl.feature_frame(dataset.frame, schema)).astype(np.float32)
    target = dataset.frame[schema.target]
    if regression:
        y = target.to_numpy(dtype=np.float64)
    else:
        classes = sorted(set(automl.labels_of(target)))
        y = np.array([classes.index(v) for v in automl.labels_of(target)])
    vote.fit(x, y)  # type: ignore[attr-defined]
    onnx_export.float32_thresholds(vote)
    return Pipeline([("prep", prep), ("model", vote)]), automl.feature_frame(dataset.frame.head(200), schema)


@pytest.mark.parametrize("classes", [2, 3])
def test_a_vote_of_mixed_learners_exports_to_one_onnx_file_and_its_explanations_add_up(classes, tmp_path: Path):
    rows = sample_data.rows(900, seed=4)
    if classes == 3:
        for index, row in enumerate(rows):
            row["y"] = "maybe" if index % 3 == 0 else row["y"]
    dataset = validate(sample_data.to_csv(rows), "y", max_bytes=10**8, min_rows=50)
    members = [("lgbm", LGBMClassifier(n_estimators=40, verbose=-1)),
               ("rf", RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0)),
               ("lrl1", LogisticRegression(max_iter=500))]
    vote = ensemble.vote(members, np.array([0.5, 0.3, 0.2]), CLASSIFICATION)
    model, sample = _fitted(dataset, vote, regression=False)
    native = model.predict_proba(sample)
    assert onnx_export.export(model, dataset.schema, sample, native, tmp_path)[0] == "onnx"
    explainer = Explainer(tmp_path)
    values, unit = explainer.contributions(explainer._transform(_columns(sample, dataset)), classes)
    assert unit == "probability"
    np.testing.assert_allclose(values.sum(axis=2), native, atol=1e-6)  # every class, every row
    prep = model.named_steps["prep"]
    importance = automl.importance(model.named_steps["model"], prep, prep.transform(sample).astype(np.float32))
    assert set(importance) == {c.name for c in dataset.schema.features}  # the members' shares, weighted
    assert sum(importance.values()) == pytest.approx(1, abs=1e-4)


def test_a_vote_of_regressors_exports_and_explains_the_predicted_value(tmp_path: Path):
    dataset = validate(sample_data.to_csv(sample_data.home_rows(600, seed=2)), "price", max_bytes=10**8,
                       min_rows=50)
    members = [("lgbm", LGBMRegressor(n_estimators=60, verbose=-1)),
               ("rf", RandomForestRegressor(n_estimators=15, max_depth=8, random_state=0)),
               ("enet", ElasticNet(alpha=0.1))]
    vote = ensemble.vote(members, np.array([0.6, 0.4, 0.0]), REGRESSION)
    assert [name for name, _ in vote.estimators] == ["lgbm", "rf"]  # a member with no weight is left out
    model, sample = _fitted(dataset, vote, regression=True)
    native = model.predict(sample).reshape(-1, 1)
    assert onnx_export.export(model, dataset.schema, sample, native, tmp_path)[0] == "onnx"
    (tmp_path / "model_meta.json").write_text(pd.Series({
        "target": "price", "task": "regression", "input_names": onnx_export.input_names(dataset.schema),
        "model_format": "onnx", "classes": [], "threshold": None,
        "features": [{"name": c.name, "kind": c.kind, "categories": list(c.categories)}
                     for c in dataset.schema.features]}).to_json())
    served = artifacts.load(tmp_path)
    columns = _columns(sample, dataset)
    np.testing.assert_allclose(served.predict(columns), native, rtol=1e-4)
    explained = served.explain(columns, served.results(native))
    for row, value in zip(cast(list[dict[str, Any]], explained), native[:, 0], strict=True):
        total = row["base"] + sum(row["contributions"].values())
        assert row["output"] == "value" and total == pytest.approx(value, rel=1e-4)
    assert joblib.load(tmp_path / "model.pkl").named_steps["model"] is not None


def _columns(sample: pd.DataFrame, dataset: ValidatedDataset) -> dict[str, np.ndarray]:
    from shared.model_contract import ModelSignature, columns_from_frame

    return columns_from_frame(sample, ModelSignature.from_schema(dataset.schema))
