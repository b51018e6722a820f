"""The published-pipeline REST functions on the Azure backend: the same routes start and watch Azure ML jobs."""

from __future__ import annotations

import json

import azure.functions as func
import pytest

from functions import runs as module
from tests.azure.conftest import AzureStack, declared_functions, sample_csv


def call(function: str, method: str, url: str, body: dict | None = None, headers: dict | None = None,
         **route: str) -> func.HttpResponse:
    typed = {"content-type": "application/json"} if body is not None else {}
    request = func.HttpRequest(method, url, headers={**typed, **(headers or {})}, route_params=route,
                               body=json.dumps(body).encode() if body is not None else b"")
    response: func.HttpResponse = declared_functions()[function].get_user_function()(request)
    return response


@pytest.fixture()
def api(stack: AzureStack, monkeypatch: pytest.MonkeyPatch) -> AzureStack:
    monkeypatch.setattr(module, "get_backend", lambda: stack.backend)
    monkeypatch.setattr(module, "get_settings", lambda: stack.settings)
    stack.upload(sample_csv())
    return stack


def test_post_starts_one_azure_job_per_idempotency_key_and_get_reads_its_status(api: AzureStack):
    body = {"ExperimentName": "bank", "metric": "AUC_weighted", "time_budget_s": 1800}
    first = call("start_run", "POST", "/api/pipelines/automl-classification/runs", body,
                 {"Idempotency-Key": "nightly-2026-11-26"}, name="automl-classification")
    again = call("start_run", "POST", "/api/pipelines/automl-classification/runs", body,
                 {"Idempotency-Key": "nightly-2026-11-26"}, name="automl-classification")
    assert first.status_code == again.status_code == 202
    run_id = json.loads(first.get_body())["Id"]
    assert json.loads(again.get_body())["Id"] == run_id and again.headers["Idempotent-Replayed"] == "true"
    job = api.workspace.last("jobs.create_or_update")["job"]
    assert job.name == run_id and job.tags["metric"] == "AUC_weighted" and job.tags["time_budget_s"] == "1800"
    assert api.workspace.operations("jobs.create_or_update") == ["jobs.create_or_update"] * 2  # upload + POST
    shown = json.loads(call("get_run", "GET", f"/api/runs/{run_id}", run_id=run_id).get_body())
    assert shown["state"] == "queued" and shown["progress"]["azure_status"] == "NotStarted"
    api.workspace.complete_run(run_id, score=0.95)
    shown = json.loads(call("get_run", "GET", f"/api/runs/{run_id}", run_id=run_id).get_body())
    assert shown["state"] == "completed" and shown["result"]["primary_metric"]["value"] == 0.95


def test_delete_cancels_the_azure_job_and_unknown_runs_are_404(api: AzureStack):
    started = call("start_run", "POST", "/api/pipelines/automl-classification/runs", {"model": "bank"},
                   name="automl-classification")
    run_id = json.loads(started.get_body())["Id"]
    cancelled = call("cancel_run", "DELETE", f"/api/runs/{run_id}", run_id=run_id)
    assert cancelled.status_code == 202 and json.loads(cancelled.get_body())["state"] == "cancelled"
    assert api.workspace.last("jobs.begin_cancel") == {"name": run_id}
    assert call("get_run", "GET", "/api/runs/nope", run_id="nope").status_code == 404


def test_bad_bodies_and_unknown_datasets_never_reach_azure(api: AzureStack):
    submitted = len(api.workspace.operations("jobs."))
    bad = call("start_run", "POST", "/api/pipelines/automl-classification/runs", {"model": "bank", "metric": "f1"},
               name="automl-classification")
    assert bad.status_code == 400 and json.loads(bad.get_body())["details"][0]["field"] == "metric"
    missing = call("start_run", "POST", "/api/pipelines/automl-classification/runs", {"model": "cars"},
                   name="automl-classification")
    assert missing.status_code == 404
    assert len(api.workspace.operations("jobs.")) == submitted
