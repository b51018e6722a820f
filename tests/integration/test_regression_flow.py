"""A numeric target on the real local stack: read as regression, trained, gated, served and batch-scored as
numbers (Azurite, the host process, the training worker)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from cli import sample_data
from devhost.process import wait_for
from tests.integration.ml_stack import Stack, running_stack

pytestmark = pytest.mark.integration

HOMES = sample_data.home_rows(800, seed=21)


def without_price(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: v for k, v in row.items() if k != "price"} for row in rows]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("regression")) as running:
        yield running


def score(stack: Stack, body: dict[str, object]) -> requests.Response:
    return requests.post(f"{stack.host.url}/api/models/homes/score", json=body, headers=stack.headers, timeout=60)


def test_a_numeric_target_is_trained_as_regression_promoted_and_scored_with_numbers(stack: Stack):
    record = stack.wait_final(stack.upload("homes/2026-01.csv", sample_data.to_csv(HOMES), {"target": "price"}))
    assert record["state"] == "promoted", record
    details = record["details"]
    assert details["task"] == "regression" and "distinct" in details["task_reason"]  # the status says why
    assert details["metric"] == "normalized_root_mean_squared_error"  # Azure AutoML's default for regression
    checks = {g["check"] for g in details["guardrails"]}
    assert "target_range" in checks and "class_balance" not in checks
    run = stack.get(f"runs/{record['run_id']}")["result"]
    assert run["task"] == "regression" and run["classes"] == [] and run["threshold"] is None
    assert set(run["validation_metrics"]) == {"normalized_root_mean_squared_error", "r2_score",
                                              "normalized_mean_absolute_error", "spearman_correlation"}
    assert run["validation_metrics"]["r2_score"] > 0.5  # price follows size and district: there is signal
    assert run["model_format"] == "onnx", run["notes"]

    rows = without_price(HOMES[:4])
    answer = score(stack, {"data": rows, "explain": True})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert all(isinstance(v, float) for v in body["result"]) and len(body["result"]) == 4
    truth = [float(str(row["price"])) for row in HOMES[:4]]
    spread = max(float(str(r["price"])) for r in HOMES) - min(float(str(r["price"])) for r in HOMES)
    assert all(abs(p - t) < 0.5 * spread for p, t in zip(body["result"], truth, strict=True))
    for value, explained in zip(body["result"], body["explanations"], strict=True):
        assert explained["output"] == "value" and "class" not in explained
        assert math.isclose(explained["base"] + sum(explained["contributions"].values()), value, abs_tol=1e-2)
    refused = score(stack, {"data": rows, "probabilities": True})
    assert refused.status_code == 400 and "regression model" in refused.json()["error"]
    document = requests.get(f"{stack.host.url}/api/swagger.json", headers=stack.headers, timeout=30).json()
    assert document["components"]["schemas"]["Result_homes"]["properties"]["result"]["items"] == {
        "type": ["number", "null"]}  # null: an answer beyond any number


def test_a_second_upload_is_gated_on_the_regression_metric(stack: Stack):
    newer = sample_data.home_rows(800, seed=22)
    record = stack.wait_final(stack.upload("homes/2026-02.csv", sample_data.to_csv(newer), {"target": "price"}))
    assert record["state"] in ("promoted", "not_promoted"), record
    decision = record["details"]["decision"]
    assert decision["metric"] == "normalized_root_mean_squared_error"
    # The champion was re-scored on the challenger's validation rows: both numbers are errors in (0, 1).
    assert 0 < decision["challenger"] < 1 and 0 < decision["champion"] < 1
    better = decision["challenger"] <= decision["champion"]  # lower error wins
    assert (record["state"] == "promoted") == better


def test_batch_scoring_of_a_regression_model_writes_the_numbers_it_serves(stack: Stack):
    blobs = BlobServiceClient.from_connection_string(stack.host.storage)
    rows = without_price(sample_data.home_rows(1200, seed=23))
    blobs.get_container_client("scoring-input").get_blob_client("homes/listings.csv").upload_blob(
        sample_data.to_csv(rows), overwrite=True)
    output = blobs.get_container_client("scoring-output")

    def summary() -> dict | None:
        blob = output.get_blob_client("homes/listings.summary.json")
        return json.loads(blob.download_blob().readall()) if output.exists() and blob.exists() else None

    result = wait_for(summary, timeout=120, interval=0.2, what="batch summary")
    assert result["rows"] == 1200 and set(result["predictions"]) == {"min", "mean", "max"}
    scored = list(csv.DictReader(io.StringIO(
        output.get_blob_client("homes/listings.scored.csv").download_blob().readall().decode())))
    assert len(scored) == 1200 and not any(name.startswith("probability_") for name in scored[0])
    online = score(stack, {"data": rows[:5]}).json()["result"]
    assert [float(r["prediction"]) for r in scored[:5]] == pytest.approx(online, abs=1e-5)
    assert result["predictions"]["min"] <= min(online) and max(online) <= result["predictions"]["max"]


def test_the_report_of_a_regression_run_plots_predictions_against_truth(stack: Stack, tmp_path: Path):
    runs = stack.get("runs", model="homes")["runs"]
    run_id = runs[-1]["run_id"]
    page = requests.get(f"{stack.host.url}/api/runs/{run_id}/report", headers=stack.headers, timeout=30)
    assert page.status_code == 200
    assert "Predicted against actual" in page.text and "Residuals" in page.text and "ROC curve" not in page.text
