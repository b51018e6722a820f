"""An upload's forecasting settings, as blob metadata gives them (short names or Azure AutoML's)."""

from __future__ import annotations

import pytest

from shared import metrics
from shared.errors import DatasetRejected
from shared.naming import spec_for
from shared.schema import Schema, TimeSeries
from shared.tasks import FORECASTING, REGRESSION, Task, kind_of


def test_a_time_column_makes_a_forecast_with_its_horizon_and_series():
    spec = spec_for("sales/2026.csv", {"target": "units", "time_column": "month", "horizon": "12",
                                       "series": "store, item"}, "y")
    assert spec.task is Task.FORECASTING
    assert spec.time_series == TimeSeries("month", 12, ("store", "item"))


def test_azure_automl_names_are_read_too_and_the_horizon_defaults_to_one_as_there():
    spec = spec_for("sales/a.csv", {"task": "Forecasting", "time_column_name": "W%C3%A9ek",
                                    "time_series_id_column_names": "store"}, "y")
    assert spec.time_series == TimeSeries("Wéek", 1, ("store",))


@pytest.mark.parametrize(("metadata", "says"), [
    ({"task": "forecasting"}, "no 'time_column'"),
    ({"horizon": "3"}, "'horizon' is a forecasting setting: give 'time_column'"),
    ({"time_column": "t", "horizon": "0"}, "whole number of periods from 1 to 1000"),
    ({"time_column": "t", "horizon": "2.5"}, "whole number of periods"),
    ({"time_column": "t", "horizon": "1001"}, "from 1 to 1000"),
    ({"time_column": "t", "task": "regression"}, "'task' is regression"),
    ({"time_column": "y"}, "target 'y' cannot also be the time column"),
    ({"time_column": "t", "series": "y"}, "target 'y' cannot also be a series id"),
    ({"time_column": "t", "series": "t"}, "more than one forecasting role"),
    ({"time_column": "t", "series": "s,s"}, "more than one forecasting role"),
    ({"time_column": "t", "exclude": "t"}, "more than one forecasting role"),
    ({"time_column": "t", "time_column_name": "u"}, "both 'time_column' and 'time_column_name'"),
])
def test_settings_that_cannot_be_honoured_are_refused_saying_which(metadata: dict[str, str], says: str):
    with pytest.raises(DatasetRejected, match=says) as refused:
        spec_for("m.csv", metadata, "y")
    assert refused.value.code == "bad_forecast_settings"


def test_forecasting_is_judged_by_the_regression_metrics_and_defaults_to_azures_primary():
    assert [m.name for m in metrics.of_task(FORECASTING)] == [m.name for m in metrics.of_task(REGRESSION)]
    assert metrics.for_task(None, FORECASTING, "accuracy").name == "normalized_root_mean_squared_error"
    with pytest.raises(ValueError, match="is for classification, and this is forecasting"):
        metrics.for_task("AUC_weighted", FORECASTING, "accuracy")


def test_the_schema_keeps_its_forecasting_settings_through_storage():
    settings = TimeSeries("month", 12, ("store",), "monthly", "1")
    schema = Schema((), "units", FORECASTING, settings)
    again = Schema.from_dict(schema.to_dict())
    assert again.time_series == settings and again.task is kind_of("forecasting") is FORECASTING
    assert not FORECASTING.tabular and not FORECASTING.predicts_classes
    with pytest.raises(TypeError, match="time order"):
        FORECASTING.folds(5, 0)
