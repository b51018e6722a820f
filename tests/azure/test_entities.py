"""Each SDK entity the Azure backend builds, in the REST form azure-ai-ml sends, checked field by field."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import pytest

from cli import sample_data
from shared.azure import entities
from shared.azure.dry_run import rest_form
from shared.errors import BadRequest
from tests.azure.conftest import AzureStack, sample_csv


def test_the_dataset_is_a_uri_file_asset_versioned_by_content_over_an_immutable_copy(stack: AzureStack):
    stack.upload(sample_csv())
    data = stack.workspace.last("data.create_or_update")["data"]
    body = rest_form(data)["properties"]
    content_hash = body["tags"]["content_hash"]
    assert data.name == "bank" and data.version == content_hash[:16]
    assert body["dataType"] == "uri_file"
    assert body["dataUri"] == f"azureml://datastores/datasetversions/paths/bank/{content_hash[:16]}/data.csv"
    assert body["tags"]["app"] == "csv-to-endpoint" and body["tags"]["sequence"] == "1"
    assert body["tags"]["rows"] == "200" and body["tags"]["source_uri"].endswith("datasets/bank/jan.csv")
    assert '"target":"y"' in body["properties"]["schema"]
    assert stack.store.blobs[f"bank/{content_hash[:16]}/data.csv"] == sample_csv()


def test_the_copy_is_the_upload_as_the_mltable_reads_it_whatever_the_file_looked_like(stack: AzureStack):
    """The run's MLTable declares ',' and UTF-8: a ';' file with a BOM, row names, decimal commas, an empty
    trailing column, '?' and a row without a target is copied as that table, the other cells as written."""
    rows = sample_data.rows(120, seed=3)
    lines = [";" + ";".join(rows[0]) + ";"]
    for index, row in enumerate(rows):
        cells = {**row, "euribor3m": str(row["euribor3m"]).replace(".", ","), "y": "" if index == 5 else row["y"]}
        if index == 7:
            cells["job"] = "?"
        lines.append(f"{index};" + ";".join(str(v) for v in cells.values()) + ";")
    content = b"\xef\xbb\xbf" + "\n".join(lines).encode()
    stack.upload(content)
    [copy] = [b for p, b in stack.store.blobs.items() if p.endswith("/data.csv")]
    table = list(csv.reader(io.StringIO(copy.decode("utf-8"), newline="")))  # strict: ',' and UTF-8
    assert table[0] == list(rows[0]) and not copy.startswith(b"\xef\xbb\xbf")
    assert len(table) == 1 + 119  # the row without a target is not there
    kept = [row for index, row in enumerate(rows) if index != 5]
    column = table[0].index("euribor3m")
    assert [float(line[column]) for line in table[1:]] == [float(str(r["euribor3m"])) for r in kept]
    assert table[1 + 6][table[0].index("job")] == ""  # '?' is a missing value, as ingest read it
    assert [line[table[0].index("age")] for line in table[1:]] == [str(r["age"]) for r in kept]
    assert rest_form(stack.workspace.last("data.create_or_update")["data"])["properties"]["tags"]["rows"] == "119"


def test_the_training_job_is_a_pipeline_with_one_automl_classification_node(stack: AzureStack):
    run_id = stack.upload(sample_csv(), metadata={"metric": "AUC_weighted", "exclude": "duration"})
    call = stack.workspace.last("jobs.create_or_update")
    rest = rest_form(call["job"])
    props = rest["properties"]
    assert rest["name"] == run_id and call["experiment_name"] == "bank"
    assert props["jobType"] == "Pipeline" and props["settings"]["default_compute"] == "cpu-cluster"
    assert props["inputs"]["training_data"] == {
        "jobInputType": "mltable", "uri": f"azureml://datastores/datasetversions/paths/runs/{run_id}/"}
    assert props["outputs"]["best_model"]["jobOutputType"] == "mlflow_model"
    tags = props["tags"]
    assert tags["app"] == "csv-to-endpoint" and tags["pipeline_job"] == run_id and tags["model"] == "bank"
    assert tags["upload_id"] == 'bank/jan.csv@"0x1"' and tags["metric"] == "AUC_weighted"
    (node,) = props["jobs"].values()
    assert node["type"] == "automl" and node["task"] == "classification"
    assert node["training_data"] == "${{parent.inputs.training_data}}"
    assert node["target_column_name"] == "y" and node["primary_metric"] == "auc_weighted"
    assert node["validation_data_size"] == 0.2
    assert node["limits"] == {"enable_early_termination": True, "max_trials": 20, "timeout_minutes": 15}
    assert node["training"]["enable_onnx_compatible_models"] is True
    assert node["tags"]["pipeline_job"] == run_id  # the AutoML parent's RunCompleted event carries them
    assert node["outputs"]["best_model"]["value"] == "${{parent.outputs.best_model}}"
    table = stack.store.blobs[f"runs/{run_id}/MLTable"].decode()
    # Training reads the rows ingest did not hold out for the gate (shared.azure.holdout).
    assert "file: azureml://datastores/datasetversions/paths/bank/" in table and "/train.csv" in table
    assert 'drop_columns: ["duration"]' in table  # excluded columns never reach AutoML


def test_a_long_budget_becomes_the_experiment_timeout_in_minutes(stack: AzureStack):
    stack.settings = replace(stack.settings, time_budget_s=3600)
    stack.upload(sample_csv())
    node = next(iter(rest_form(stack.workspace.last("jobs.create_or_update")["job"])["properties"]["jobs"].values()))
    assert node["limits"]["timeout_minutes"] == 60


def test_metrics_azure_automl_cannot_optimise_are_refused_naming_the_field(stack: AzureStack):
    from shared import pipelines

    stack.upload(sample_csv())
    with pytest.raises(BadRequest) as refused:
        pipelines.start("automl-classification", pipelines.RunParameters("bank", metric="log_loss"),
                        stack.backend, stack.settings)
    assert refused.value.details[0]["field"] == "metric"
    assert stack.workspace.operations("jobs.create_or_update") == ["jobs.create_or_update"]


def test_the_model_is_the_best_childs_mlflow_output_with_lineage_tags(stack: AzureStack):
    model = entities.model_asset("bank", "run_automl_3", {"pipeline_run_id": "run", "metric.accuracy": "0.91"})
    body = rest_form(model)["properties"]
    assert body["modelType"] == "mlflow_model"
    assert body["modelUri"] == "azureml://jobs/run_automl_3/outputs/artifacts/outputs/mlflow-model/"
    assert body["tags"] == {"app": "csv-to-endpoint", "pipeline_run_id": "run", "metric.accuracy": "0.91"}
    assert model.version is None  # the registry assigns the next version


def test_the_endpoint_and_its_deployments(stack: AzureStack):
    endpoint = rest_form(entities.online_endpoint(stack.azure, "Bank Marketing", {"green": 100, "blue": 0}))
    assert entities.endpoint_name(stack.azure, "Bank Marketing") == "bank-marketing-x7k2"
    assert endpoint["properties"]["authMode"] == "AADToken"
    assert endpoint["properties"]["traffic"] == {"green": 100, "blue": 0}
    assert endpoint["tags"] == {"app": "csv-to-endpoint", "model": "Bank Marketing"}
    deployment = rest_form(entities.online_deployment(stack.azure, "bank", "green", "4"))
    assert deployment["properties"]["model"] == "azureml:bank:4"
    assert deployment["properties"]["instanceType"] == "Standard_DS3_v2"
    assert deployment["properties"]["endpointComputeType"] == "Managed"
    assert deployment["properties"]["appInsightsEnabled"] is False  # key-based logging is off (Entra ID only)
    assert deployment["sku"]["capacity"] == 1


@pytest.mark.parametrize(("model", "expected"), [
    ("bank", "bank-x7k2"), ("1st", "m-1st-x7k2"), ("a" * 40, "a" * 27 + "-x7k2"), ("__", "model-x7k2")])
def test_endpoint_names_fit_azure_rules(stack: AzureStack, model: str, expected: str):
    name = entities.endpoint_name(stack.azure, model)
    assert name == expected and 3 <= len(name) <= 32 and name[0].isalpha()
