from __future__ import annotations

import numpy as np
import pytest

from shared import metrics
from shared.errors import DatasetRejected
from shared.naming import model_name_for, spec_for


@pytest.mark.parametrize(
    ("path", "name"),
    [("bank/jan.csv", "bank"), ("bank/2026/jan.csv", "bank"), ("jan.csv", "jan"), ("churn-v2/x.csv", "churn-v2")],
)
def test_model_name_from_the_first_folder_or_the_file(path, name):
    assert model_name_for(path) == name


@pytest.mark.parametrize("path", ["../etc/passwd.csv", "a/../b.csv", "bad name/x.csv", "%2e%2e/x.csv"])
def test_unsafe_names_are_rejected(path):
    with pytest.raises(DatasetRejected):
        model_name_for(path)


@pytest.mark.parametrize("path", ["nl\n/ansi.csv", "jan\n.csv", "bank/ja\x1b[31mn.csv", "bank/a\rb.csv",
                                  "bank/x\u2028y.csv", "tab\t/x.csv"])
def test_a_control_character_anywhere_in_a_blob_name_is_refused_with_the_reason(path):
    with pytest.raises(DatasetRejected, match="holds a control character") as refused:
        spec_for(path, {}, "y")
    assert refused.value.code == "bad_name"
    assert refused.value.reason.isprintable()  # the reason names the character escaped, never raw
    if not path.startswith("bank/"):
        with pytest.raises(DatasetRejected, match="holds a control character"):
            model_name_for(path)  # a control character in the model's name is no model name
    else:
        assert model_name_for(path) == "bank"  # what the status shows, so its uploader finds it


def test_metadata_chooses_target_metric_and_exclusions():
    spec = spec_for("bank/x.csv", {"Target": "outcome", "metric": "auc_weighted", "exclude": "duration, id",
                                   "Task": " Regression"}, "y")
    assert (spec.model_name, spec.target, spec.metric, spec.excluded_columns, spec.task) == (
        "bank", "outcome", "AUC_weighted", ("duration", "id"), "regression")
    plain = spec_for("bank/x.csv", None, "y")
    assert (plain.metric, plain.task) == (None, None)  # both follow from the file once it is read
    with pytest.raises(DatasetRejected, match="unknown primary metric"):
        spec_for("bank/x.csv", {"metric": "speed"}, "y")
    with pytest.raises(DatasetRejected, match="'classification', 'regression' or 'forecasting'"):
        spec_for("bank/x.csv", {"task": "timeseries"}, "y")


@pytest.mark.parametrize("column", ["Résultat", "東京の売上", "a,b", "50% off", "plain_name", "with space"])
def test_a_column_name_beyond_ascii_travels_percent_encoded_in_metadata_and_back(column):
    from cli.uploads import ascii_safe

    sent = ascii_safe(column)
    assert sent.isascii() and "," not in sent  # blob metadata is ASCII; commas separate excluded columns
    spec = spec_for("sales/x.csv", {"target": sent, "exclude": f"{sent},id"}, "y")
    assert spec.target == column and spec.excluded_columns == (column, "id")
    assert ascii_safe("plain_name") == "plain_name"  # what needs no encoding is sent as it is


def test_the_primary_metric_follows_the_task():
    assert metrics.for_task(None, "classification", "AUC_weighted").name == "AUC_weighted"
    # The configured default is a classification metric: a regression run takes Azure AutoML's default.
    assert metrics.for_task(None, "regression", "accuracy").name == "normalized_root_mean_squared_error"
    assert metrics.for_task("r2", "regression", "accuracy").name == "r2_score"
    with pytest.raises(ValueError, match="accuracy is for classification, and this is regression"):
        metrics.for_task("accuracy", "regression", "accuracy")


def test_metrics_on_a_known_case():
    y = np.array(["no", "yes", "yes", "no"], dtype=object)
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    classes = ["no", "yes"]
    assert metrics.METRICS["accuracy"].compute(y, proba, classes, 0.5) == 0.75
    assert metrics.METRICS["accuracy"].compute(y, proba, classes, 0.35) == 1.0
    assert metrics.METRICS["AUC_weighted"].compute(y, proba, classes, 0.5) == 1.0
    assert metrics.better(metrics.resolve("log_loss"), 0.2, 0.3)
    assert not metrics.better(metrics.resolve("accuracy"), 0.2, 0.3)
    assert metrics.better(metrics.resolve("accuracy"), 0.3, 0.3)  # a tie deploys the newer model


def test_a_bad_default_metric_fails_at_start_up_with_the_variable_name(monkeypatch):
    import pytest

    from shared.settings import Settings

    monkeypatch.setenv("DEFAULT_METRIC", "auc_weighted_please")
    with pytest.raises(ValueError, match="DEFAULT_METRIC"):
        Settings.from_env()
    monkeypatch.setenv("DEFAULT_METRIC", "AUC_weighted")
    assert Settings.from_env().default_metric == "AUC_weighted"
