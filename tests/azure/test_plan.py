"""``cli plan``: what the Azure backend would do, including the gate on the same rows for a later version."""

from __future__ import annotations

from shared.azure.config import AzureSettings
from shared.azure.plan import plan_upload
from shared.settings import Settings
from tests.azure.conftest import sample_csv


def test_the_plan_shows_a_later_version_compared_with_production_on_the_same_held_out_rows(monkeypatch, tmp_path):
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path))
    plan = plan_upload(sample_csv(count=400), "bank/jan.csv", {}, Settings.from_env(), AzureSettings.example())
    assert plan.promotion is not None and plan.promotion.decision == "deploying"
    assert any(path.endswith("/holdout.csv") for path in plan.blobs)
    steps = plan.beside_steps()
    compared = {s["deployment_name"]: s["request"]["input_data"]["data"] for s in steps
                if s["call"] == "online_endpoints.invoke" and len(s["request"]["input_data"]["data"]) > 1}
    assert set(compared) == {"blue", "green"} and compared["blue"] == compared["green"]
    assert plan.beside_decision is not None and "held out of training" in plan.beside_decision["reason"]


def test_the_plan_shows_a_dropped_file_scored_by_a_batch_job_of_the_production_version(monkeypatch, tmp_path):
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path))
    plan = plan_upload(sample_csv(count=400), "bank/jan.csv", {}, Settings.from_env(), AzureSettings.example())
    steps = plan.drop_steps()
    assert [s["call"] for s in steps] == ["batch_endpoints.begin_create_or_update",
                                          "batch_deployments.begin_create_or_update", "batch_endpoints.invoke"]
    endpoint, deployment, invoke = steps
    assert endpoint["endpoint"]["properties"]["authMode"] == "AADToken"
    assert deployment["deployment"]["properties"]["model"]["assetId"] == "azureml:bank:1"
    assert deployment["deployment"]["properties"]["outputAction"] == "SummaryOnly"
    assert invoke["deployment_name"] == "version-1" and invoke["job_name"].startswith("score-")
    assert invoke["inputs"]["input"].path == "azureml://datastores/scoringinput/paths/bank/jan.csv"
    assert plan.drop_outputs == ["bank/jan.scored.csv", "bank/jan.summary.json"]
