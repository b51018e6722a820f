"""A forecasting dataset version in Azure: its AutoML forecasting node, through the real MLClient.

The versions are registered here as ingest registers them (``backend.datasets.register`` with a schema read as
series), so these tests hold whatever reads the upload's metadata. The node's body is checked as sent, and as the
AutoML job it reads as against the published spec (``spec_schemas``).
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import replace

import pandas as pd
import pytest
from azure.ai.ml import Input, automl
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import Job

from shared.azure import entities
from shared.azure.config import AzureSettings
from shared.azure.dry_run import rest_form
from shared.errors import BadRequest
from shared.ports import Backend, DatasetVersion, TrainingRequest
from shared.schema import Column, Schema, TimeSeries
from shared.tasks import FORECASTING
from tests.azure.conftest import AzureStack, SdkStack
from tests.azure.spec_schemas import check

HORIZON = 3
# Four series of month-end sales, by store and item: of unequal lengths, starting at different months, one only
# HORIZON months long (too short to give up a window), and one missing a month of its last HORIZON.
SERIES = {("north", "a"): ("2022-01-31", 24), ("north", "b"): ("2022-07-31", 18), ("south", "a"): ("2023-01-31", 12),
          ("south", "b"): ("2023-10-31", HORIZON)}
GAP = (("north", "b"), "2023-11-30")


def monthly_rows() -> list[dict[str, str]]:
    """The rows in no order of time: months of each series interleaved, as an export might give them."""
    rows: list[dict[str, str]] = []
    for (store, item), (start, months) in SERIES.items():
        for index, month in enumerate(pd.date_range(start, periods=months, freq="ME")):
            if ((store, item), month.strftime("%Y-%m-%d")) == GAP:
                continue
            rows.append({"date": month.strftime("%Y-%m-%d"), "store": store, "item": item,
                         "price": f"{2 + index % 5 * 0.25:.2f}", "sales": str(100 + 3 * index + len(store))})
    rows.sort(key=lambda r: (r["date"][5:7], r["store"], r["date"]))  # shuffled in time, deterministically
    return rows


def to_csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def schema(frequency: str = "monthly", anchor: str = "end", series: tuple[str, ...] = ("store", "item")) -> Schema:
    columns = (Column("date", "datetime"), Column("store", "string", categories=("north", "south")),
               Column("item", "string", categories=("a", "b")), Column("price", "number"), Column("sales", "number"))
    return Schema(columns, "sales", FORECASTING, TimeSeries("date", HORIZON, series, frequency, anchor))


def registered(backend: Backend, content: bytes, read_as: Schema, name: str = "shop") -> DatasetVersion:
    key = hashlib.sha256(content + repr(read_as.time_series).encode()).hexdigest()
    version, created = backend.datasets.register(name, io.BytesIO(content), key, read_as, content.count(b"\n") - 1,
                                                 f"https://acct.blob.core.windows.net/datasets/{name}/sales.csv")
    assert created
    return version


def request(version: DatasetVersion, metric: str = "normalized_root_mean_squared_error") -> TrainingRequest:
    return TrainingRequest(version.name, version, version.schema.target, metric, 600, upload_id="shop/sales.csv@1")


def table(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


# ---- the training job -----------------------------------------------------------------------------------------


def test_a_forecast_submits_an_automl_forecasting_node_with_its_series_settings(sdk_stack: SdkStack):
    """Job/PipelineJob/createOrUpdate.json, whose node is AutoML's forecasting task (the SDK's ForecastingJob)."""
    version = registered(sdk_stack.backend, to_csv(monthly_rows()), schema())
    run, _ = sdk_stack.backend.pipeline.submit(request(version, "normalized_mean_absolute_error"))
    [body] = sdk_stack.service.bodies("PUT jobs/{}")
    check("JobBaseResource/PipelineJob", body)
    [(name, node)] = body["properties"]["jobs"].items()
    assert name == entities.AUTOML_NODE and body["properties"]["tags"]["pipeline_job"] == run.run_id
    assert (node["type"], node["task"], node["target_column_name"]) == ("automl", "forecasting", "sales")
    assert node["primary_metric"] == "normalized_mean_absolute_error"
    assert node["forecasting"] == {"time_column_name": "date", "forecast_horizon": HORIZON,
                                   "time_series_id_column_names": ["store", "item"], "frequency": "M"}
    # Rolling-origin cross-validation in time order: AutoML takes no random validation share for a forecast.
    assert node["n_cross_validations"] == "auto" and "validation_data_size" not in node
    assert node["limits"] == {"enable_early_termination": True, "max_trials": 20, "timeout_minutes": 15}
    assert node["training"]["enable_onnx_compatible_models"] is False  # no forecaster converts to ONNX
    assert node["tags"]["node"] == entities.AUTOML_NODE
    table_text = sdk_stack.service.store.blobs[f"runs/{run.run_id}/MLTable"].decode()
    assert "/train.csv" in table_text  # the windows held out for the gate are not trained on

    # The node, read as the AutoML job it describes, is what the published spec accepts.
    automl_job = Job._load(data={**{k: v for k, v in node.items() if k != "outputs"}, "compute": "cpu-cluster",
                                 "training_data": {"type": "mltable", "path": "azureml://datastores/d/paths/t/"}})
    rest = rest_form(automl_job)
    check("JobBaseResource/AutoMLJob/Forecasting", rest)
    task = rest["properties"]["taskDetails"]
    assert task["taskType"] == "Forecasting" and task["primaryMetric"] == "NormalizedMeanAbsoluteError"
    assert task["forecastingSettings"] == {"timeColumnName": "date", "forecastHorizon": {"mode": "Custom", "value": 3},
                                           "timeSeriesIdColumnNames": ["store", "item"], "frequency": "M"}
    assert task["nCrossValidations"] == {"mode": "Auto"} and "validationDataSize" not in task
    assert task["limitSettings"]["timeout"] == "PT15M" and task["limitSettings"]["maxTrials"] == 20


def test_one_series_sends_no_id_columns(stack: AzureStack):
    one = [r for r in monthly_rows() if (r["store"], r["item"]) == ("north", "a")]
    version = registered(stack.backend, to_csv(one), schema(series=()))
    stack.backend.pipeline.submit(request(version))
    node = next(iter(rest_form(stack.workspace.last("jobs.create_or_update")["job"])["properties"]["jobs"].values()))
    assert node["forecasting"] == {"time_column_name": "date", "forecast_horizon": HORIZON, "frequency": "M"}


def test_the_sdk_alone_would_send_the_series_ids_as_one_name():
    """Why the node is written by ``entities._ForecastingNode``: the SDK's pipeline schema tries a string before a
    list for ``time_series_id_column_names``. Should this start failing, the SDK writes lists itself."""
    node = automl.forecasting(training_data=Input(type=AssetTypes.MLTABLE, path="azureml://datastores/d/paths/t/"),
                              target_column_name="sales", n_cross_validations="auto")
    node.set_forecast_settings(time_column_name="date", forecast_horizon=3,
                               time_series_id_column_names=["store", "item"])
    assert node._to_dict(inside_pipeline=True)["forecasting"]["time_series_id_column_names"] == "['store', 'item']"


@pytest.mark.parametrize(("frequency", "anchor", "alias"), [
    ("hourly", "", "H"), ("daily", "", "D"), ("monthly", "1", "MS"), ("monthly", "end", "M"),
    ("quarterly", "1", "3MS"), ("quarterly", "end", "3M"), ("yearly", "1", "12MS"), ("yearly", "end", "12M"),
    # AutoML infers these from the timestamps: the weekday, or a day of the month pandas has no alias for
    ("weekly", "", None), ("monthly", "15", None), ("irregular", "", None), ("", "", None)])
def test_the_frequency_is_the_pandas_alias_of_the_grid_or_left_to_automl(frequency: str, anchor: str,
                                                                         alias: str | None):
    settings = entities.forecast_settings(TimeSeries("date", 4, (), frequency, anchor))
    assert settings.get("frequency") == alias


def test_a_metric_azure_cannot_optimise_for_a_forecast_is_refused_naming_the_choices(sdk_stack: SdkStack):
    accepted = entities.AUTOML_PRIMARY_METRICS[FORECASTING.name]
    assert set(accepted) == {"normalized_root_mean_squared_error", "r2_score", "normalized_mean_absolute_error",
                             "spearman_correlation"}  # the SDK's ForecastingPrimaryMetrics, in our names
    assert all(entities.metric_refused(name, FORECASTING) is None for name in accepted)
    refused = entities.metric_refused("AUC_weighted", FORECASTING)
    assert refused is not None and refused.startswith("Azure AutoML forecasting cannot optimise AUC_weighted")
    assert all(name in refused for name in accepted)
    version = registered(sdk_stack.backend, to_csv(monthly_rows()), schema())
    with pytest.raises(BadRequest) as error:
        sdk_stack.backend.pipeline.submit(request(version, "accuracy"))
    assert error.value.details[0]["field"] == "metric" and "normalized_mean_absolute_error" in str(error.value)
    assert sdk_stack.service.bodies("PUT jobs/{}") == []


def test_a_forecast_without_its_time_settings_is_no_job():
    version = DatasetVersion("shop", 1, "ab" * 32, 10, 5, replace(schema(), time_series=None), "u", "s", "")
    with pytest.raises(ValueError, match="without its time column"):
        entities.training_job(AzureSettings.example(), request(version), "train-1", "azureml://x/")
