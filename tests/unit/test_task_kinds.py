"""Each task is one object that answers for everything that differs between tasks."""

from __future__ import annotations

import numpy as np
import pytest
from azure.ai.ml import automl

from shared import metrics, tasks
from shared.model_contract import ModelSignature
from shared.schema import Column, Schema


@pytest.mark.parametrize("kind", list(tasks.KINDS.values()), ids=str)
def test_every_task_names_what_it_owns_consistently(kind: tasks.TaskKind):
    assert tasks.kind_of(kind.name) is kind and tasks.kind_of(str(kind)) is kind
    assert metrics.resolve(kind.default_metric) in metrics.of_task(kind)
    assert kind.learners and kind.search_loss and (kind.onnx_output or not kind.tabular)
    assert callable(getattr(automl, kind.azure_node))  # the SDK's AutoML node factory of the task
    assert "result" in kind.result_schema(("a", "b"))


def test_the_metrics_are_split_between_the_metric_families_without_overlap():
    families = {kind.metric_family: kind for kind in tasks.KINDS.values()}
    owned = [m.name for kind in families.values() for m in metrics.of_task(kind)]
    assert sorted(owned) == sorted(metrics.METRICS)


def test_a_schema_and_a_signature_carry_the_task_object_and_store_its_name():
    schema = Schema((Column("x", "number"), Column("y", "number")), "y", tasks.REGRESSION)
    stored = schema.to_dict()
    assert stored["task"] == "regression"
    assert Schema.from_dict(stored).task is tasks.REGRESSION
    assert Schema.from_dict({**stored, "task": None}).task is tasks.CLASSIFICATION  # records from before tasks
    signature = ModelSignature.from_meta({"target": "y", "features": stored["columns"][:1], "task": "regression"})
    assert signature.task is tasks.REGRESSION and signature.regression


def test_outputs_are_decoded_by_their_task():
    probabilities = np.array([[0.7, 0.3], [0.2, 0.8]])
    assert tasks.CLASSIFICATION.results(probabilities, ("no", "yes"), 0.25) == ["yes", "yes"]
    assert tasks.CLASSIFICATION.results(probabilities, ("no", "yes"), None) == ["no", "yes"]
    assert tasks.REGRESSION.results(np.array([[1.23456789], [2.0]]), (), None) == [1.234568, 2.0]
    assert tasks.CLASSIFICATION.stratify([1, 0]) == [1, 0] and tasks.REGRESSION.stratify([1.5]) is None
