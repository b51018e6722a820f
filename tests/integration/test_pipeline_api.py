"""The published pipeline over REST on the real stack: start, follow, re-post, cancel, bad bodies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from cli import sample_data
from devhost.process import wait_for
from tests.integration.ml_stack import Stack, running_stack

pytestmark = pytest.mark.integration
PIPELINE = "automl-training"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("pipeline-api")) as running:
        yield running


def start(stack: Stack, body: Any, key: str | None = None, pipeline: str = PIPELINE) -> requests.Response:
    headers = dict(stack.headers)
    if key:
        headers["Idempotency-Key"] = key
    return requests.post(f"{stack.host.url}/api/pipelines/{pipeline}/runs", json=body, headers=headers, timeout=60)


def run_state(stack: Stack, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = stack.get(f"runs/{run_id}")
    return run


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "model"),
        ({"model": "bank", "metric": "speed"}, "metric"),
        ({"model": "bank", "time_budget_s": 0}, "time_budget_s"),
        ({"model": "bank", "time_budget_s": "soon"}, "time_budget_s"),
        ({"model": "bank", "dataset_version": -1}, "dataset_version"),
        ({"model": "bank", "exclude": "duration"}, "exclude"),
        ({"model": "bank", "colour": "blue"}, "colour"),
        ({"model": ""}, "model"),
        ({"model": "bank\n"}, "model"),
        ({"model": "bank", "ExperimentName": "bank"}, "ExperimentName"),  # one name, not two
        ({"model": "bank", "dataset_version": 2**40}, "dataset_version"),
        ({"model": "bank", "metric": 5}, "metric"),
    ],
)
def test_bad_bodies_name_the_field(stack: Stack, body, field):
    response = start(stack, body)
    assert response.status_code == 400
    assert field in [d["field"] for d in response.json()["details"]]


def test_a_body_not_sent_as_json_is_refused_as_on_the_scoring_routes(stack: Stack):
    url = f"{stack.host.url}/api/pipelines/{PIPELINE}/runs"
    for headers in ({}, {"content-type": "text/plain"}):  # requests sends bytes with no Content-Type
        response = requests.post(url, data=b'{"model": "bank"}', headers={**stack.headers, **headers}, timeout=60)
        assert response.status_code == 415, response.text
        assert "send application/json" in response.json()["error"]


def test_unknown_pipeline_or_dataset_is_404(stack: Stack):
    assert start(stack, {"model": "bank"}, pipeline="nope").status_code == 404
    missing = start(stack, {"model": "nothing-uploaded"})
    assert missing.status_code == 404 and "nothing-uploaded" in missing.json()["error"]


def test_a_rest_run_with_another_metric_registers_a_version_with_that_metric(stack: Stack):
    record = stack.wait_final(stack.upload("bank/data.csv", sample_data.to_csv(sample_data.rows(1200, seed=41))))
    assert record["state"] == "promoted"
    response = start(stack, {"ExperimentName": "bank", "metric": "AUC_weighted", "time_budget_s": 3})
    assert response.status_code == 202, response.text
    body = response.json()
    run_id = body["Id"]
    assert body["status"] == "queued" and body["pipeline"] == f"{PIPELINE}:1"
    assert body["links"]["self"] == f"/api/runs/{run_id}"
    final = wait_for(lambda: (lambda r: r if r["decision"] else None)(run_state(stack, run_id)), timeout=300,
                     interval=0.5, what="the run's decision")
    assert final["state"] == "completed"
    assert final["metric"] == "AUC_weighted"
    assert final["result"]["primary_metric"]["name"] == "AUC_weighted"
    assert final["progress"]["step"] == "register"
    version = final["decision"]["version"]
    model = stack.model("bank")
    registered = next(v for v in model["versions"] if v["version"] == version)
    assert registered["metric"] == "AUC_weighted" and registered["dataset"] == "bank:1"


def test_reposting_with_the_same_idempotency_key_starts_one_run(stack: Stack):
    runs_before = len(stack.get("runs", model="bank")["runs"])
    first = start(stack, {"model": "bank", "time_budget_s": 3}, key="nightly-2026-11-26")
    second = start(stack, {"model": "bank", "time_budget_s": 3}, key="nightly-2026-11-26")
    assert first.status_code == second.status_code == 202
    assert first.json()["Id"] == second.json()["Id"]
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert len(stack.get("runs", model="bank")["runs"]) == runs_before + 1
    wait_for(lambda: run_state(stack, first.json()["Id"])["decision"], timeout=300, interval=0.5, what="decision")


def registered(stack: Stack) -> list[tuple[str, str]]:
    """Version and run of each registered model (their decisions may still move: a deployment runs on)."""
    return [(v["version"], v["run_id"]) for v in stack.model("bank")["versions"]]


def test_cancelling_queued_and_running_runs(stack: Stack):
    versions_before = registered(stack)
    running = start(stack, {"model": "bank", "time_budget_s": 120}).json()["Id"]
    wait_for(lambda: run_state(stack, running)["state"] == "running", timeout=120, interval=0.2, what="running")
    queued = start(stack, {"model": "bank", "time_budget_s": 120}).json()["Id"]
    cancel_queued = requests.delete(f"{stack.host.url}/api/runs/{queued}", headers=stack.headers, timeout=60)
    assert cancel_queued.status_code == 202 and cancel_queued.json()["state"] == "cancelled"
    cancel_running = requests.delete(f"{stack.host.url}/api/runs/{running}", headers=stack.headers, timeout=60)
    assert cancel_running.status_code == 202
    final = wait_for(lambda: (lambda r: r if r["state"] == "cancelled" else None)(run_state(stack, running)),
                     timeout=60, interval=0.2, what="the running run to stop")
    assert final["decision"] is None  # no RunCompleted was sent for it
    assert registered(stack) == versions_before  # the cancelled runs registered nothing
    again = requests.delete(f"{stack.host.url}/api/runs/{running}", headers=stack.headers, timeout=60)
    assert again.status_code == 202 and again.json()["state"] == "cancelled"
    assert requests.delete(f"{stack.host.url}/api/runs/run_nope", headers=stack.headers, timeout=60).status_code == 404


def test_openapi_covers_the_pipeline_routes(stack: Stack):
    paths = stack.get("swagger.json")["paths"]
    assert "post" in paths["/pipelines/{name}/runs"]
    assert "delete" in paths["/runs/{run_id}"] and "get" in paths["/runs/{run_id}"]
