"""The ML flow on the real local stack: Azurite, the host process, the training worker, MLflow.

A tiny AutoML budget and generated data of the Bank Marketing schema keep it quick;
the tests run in order and share one stack, as a user's uploads would.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from cli import sample_data
from devhost.process import wait_for
from shared.run_events import APP_TAG, APP_TAG_KEY
from tests.browser import read_page
from tests.integration.ml_stack import Stack, features, running_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("ml-flow")) as running:
        yield running


GOOD = sample_data.to_csv(sample_data.rows(1500, seed=1))


def test_scoring_says_503_before_any_deployment(stack: Stack):
    response = stack.score(features(sample_data.rows(1)))
    assert response.status_code == 503
    assert "no model is deployed" in response.json()["error"]


def test_a_good_csv_ends_deployed_and_scorable(stack: Stack):
    upload_id = stack.upload("bank/good.csv", GOOD)
    record = stack.wait_final(upload_id)
    assert record["state"] == "promoted", record
    assert record["model_name"] == "bank" and record["dataset_version"] == 1
    assert record["reason"] == "no model in production yet"
    checks = {g["check"]: g for g in record["details"]["guardrails"]}  # computed at ingest, shown in status
    assert {"class_balance", "missing_values", "duplicate_rows"} <= checks.keys()
    assert all(g["message"] and g["severity"] in ("info", "warning", "alert") for g in checks.values())
    response = stack.score(features(sample_data.rows(3, seed=99)), probabilities=True)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {"name": "bank", "version": "1"}
    assert len(body["result"]) == 3 and set(body["result"]) <= {"yes", "no"}
    assert all(abs(sum(p.values()) - 1) < 1e-4 for p in body["probabilities"])
    run = stack.get(f"runs/{record['run_id']}")
    assert run["state"] == "completed"
    assert run["result"]["trials"] >= 1 and run["result"]["leaderboard"]
    assert run["result"]["model_format"] == "onnx"
    artifact_dir = state_folder(stack) / run["result"]["artifact_dir"]
    assert (artifact_dir / "validation.csv").exists() and (artifact_dir / "model.onnx").exists()
    model = stack.model("bank")
    assert model["production"]["version"] == "1"
    assert [v["decision"] for v in model["versions"]] == ["deployed"]
    importance = model["versions"][0]["feature_importance"]  # global importance of every registered version
    assert importance and list(importance.values()) == sorted(importance.values(), reverse=True)


def state_folder(stack: Stack) -> Path:
    """The stack's LOCAL_STATE_DIR (tests.integration.ml_stack)."""
    return stack.host.state_dir.parent / "localstack"


def test_the_api_shows_local_paths_relative_to_the_state_folder(stack: Stack):
    run_id = stack.get("runs", model="bank")["runs"][0]["run_id"]
    root = str(stack.host.state_dir.parent)  # every folder of this stack lies below it
    for path in ("status", "models", "runs", f"runs/{run_id}"):
        text = requests.get(f"{stack.host.url}/api/{path}", headers=stack.headers, timeout=30).text
        assert root not in text, (path, text[text.index(root) - 100:][:300])
    production = stack.model("bank")["production"]
    assert not Path(production["artifact_uri"]).is_absolute()
    assert (state_folder(stack) / production["artifact_uri"] / "model.onnx").exists()
    artifact_dir = stack.get(f"runs/{run_id}")["result"]["artifact_dir"]
    assert artifact_dir == production["artifact_uri"] and not Path(artifact_dir).is_absolute()


def test_the_same_content_uploaded_again_trains_nothing(stack: Stack):
    runs_before = stack.get("runs", model="bank")["runs"]
    record = stack.wait_final(stack.upload("bank/good-again.csv", GOOD))
    assert record["state"] == "duplicate"
    assert "same content as dataset bank v1" in record["reason"]
    assert stack.get("runs", model="bank")["runs"] == runs_before


BAD_FILES = {
    "empty.csv": (b"", "empty"),
    "header.csv": (GOOD.splitlines(keepends=True)[0], "header only"),
    "binary.csv": (b"\x00\x01\x02PK\x03\x04", "binary"),
    "few.csv": (sample_data.to_csv(sample_data.rows(20)), "too few rows"),
    "dupes.csv": (b"age,age,y\n" + b"1,2,no\n" * 60, "duplicate column names"),
    "notarget.csv": (GOOD.replace(b",y\n", b",outcome\n", 1), "target column 'y' is missing"),
    "oneclass.csv": (sample_data.to_csv([{**r, "y": "no"} for r in sample_data.rows(80)]), "one class only"),
}


def test_bad_csvs_are_rejected_with_their_reason_and_production_keeps_serving(stack: Stack):
    ids = {name: stack.upload(f"bank/{name}", content) for name, (content, _) in BAD_FILES.items()}
    for name, upload_id in ids.items():
        record = stack.wait_final(upload_id)
        assert record["state"] == "rejected", (name, record)
        assert BAD_FILES[name][1] in record["reason"], (name, record["reason"])
        assert stack.container.get_blob_client(f"bank/{name}").exists()  # the upload stays where it was
    response = stack.score(features(sample_data.rows(2, seed=5)))
    assert response.status_code == 200
    assert response.json()["model"]["version"] == "1"


def test_a_worse_model_is_registered_but_not_deployed(stack: Stack):
    weak = sample_data.to_csv(sample_data.rows(400, seed=2))
    upload_id = stack.upload("bank/weak.csv", weak, {"exclude": "duration,poutcome,euribor3m"})
    record = stack.wait_final(upload_id)
    assert record["state"] == "not_promoted", record
    decision = record["details"]["decision"]
    assert decision["version"] == "2" and decision["champion_version"] == "1"
    assert decision["champion"] > decision["challenger"]
    assert "worse than production v1" in record["reason"]
    model = stack.model("bank")
    assert model["production"]["version"] == "1"
    assert [(v["version"], v["decision"]) for v in model["versions"]] == [("1", "deployed"), ("2", "rejected")]
    assert stack.score(features(sample_data.rows(1))).json()["model"]["version"] == "1"


def test_a_replayed_run_completed_event_does_nothing_twice(stack: Stack):
    run = stack.get("runs", model="bank")["runs"][-1]  # the first run, already promoted
    event = {"id": "replay-1", "eventType": "Microsoft.MachineLearningServices.RunCompleted",
             "subject": f"experiments/x/runs/{run['run_id']}", "eventTime": "2026-01-01T00:00:00Z",
             "dataVersion": "2", "topic": "/local",
             "data": {"runId": run["run_id"], "experimentName": "bank", "runType": None,
                      "runTags": {APP_TAG_KEY: APP_TAG}, "runProperties": {}}}
    before = stack.model("bank")
    for _ in range(2):
        response = requests.post(f"{stack.host.url}/runtime/webhooks/eventgrid",
                                 params={"functionName": "promote", "code": stack.host.eventgrid_key},
                                 data=json.dumps([event]), headers={"aeg-event-type": "Notification"}, timeout=60)
        assert response.status_code == 202
    assert stack.model("bank") == before
    assert "already handled" in stack.host.log_text()


def test_uploads_queue_per_model_and_the_newest_wins(stack: Stack):
    first = stack.upload("queue/a.csv", sample_data.to_csv(sample_data.rows(1500, seed=31)))

    def running() -> bool:
        run_id = (stack.upload_record(first) or {}).get("run_id")
        return bool(run_id) and stack.get(f"runs/{run_id}")["state"] == "running"

    wait_for(running, timeout=120, what="the first run to start")
    middle = stack.upload("queue/b.csv", sample_data.to_csv(sample_data.rows(600, seed=32)))
    wait_for(lambda: (stack.upload_record(middle) or {}).get("state") == "training", timeout=120, what="queued")
    newest = stack.upload("queue/c.csv", sample_data.to_csv(sample_data.rows(600, seed=33)))
    records = {name: stack.wait_final(upload) for name, upload in (("a", first), ("b", middle), ("c", newest))}
    assert records["a"]["state"] == "promoted"
    assert records["b"]["state"] == "superseded"
    assert "newer upload" in records["b"]["reason"]
    assert records["c"]["state"] in ("promoted", "not_promoted")
    runs = stack.get("runs", model="queue")["runs"]
    assert sorted(r["state"] for r in runs) == ["completed", "completed", "superseded"]


def test_one_operation_links_upload_training_and_promotion_in_the_telemetry(stack: Stack):
    """The local Application Insights store holds the same envelopes Azure would receive."""
    import sqlite3

    from cli.telemetry import operation_of_upload

    record = next(u for u in stack.get("status", limit="100")["uploads"] if u["blob"] == "bank/good.csv")
    db = sqlite3.connect(stack.host.state_dir / "telemetry.db")
    db.row_factory = sqlite3.Row
    operation = wait_for(lambda: operation_of_upload(db, record["upload_id"]), timeout=30, what="UploadReceived")

    def envelopes() -> list[sqlite3.Row] | None:
        rows = db.execute("SELECT * FROM envelopes WHERE operation_id=?", (operation,)).fetchall()
        names = {(r["type"], r["name"]) for r in rows}
        return rows if ("Event", "ModelDeployed") in names else None

    rows = wait_for(envelopes, timeout=30, what="the promotion's telemetry")
    requests_by_name = {r["name"]: r for r in rows if r["type"] == "Request"}
    assert {"ingest", "train bank", "promote"} <= set(requests_by_name)
    assert requests_by_name["train bank"]["role"] == "training-worker"
    assert all(r["success"] == 1 for r in requests_by_name.values())
    events = {r["name"]: json.loads(r["body"])["data"]["baseData"]["properties"] for r in rows if r["type"] == "Event"}
    assert {"DatasetRegistered", "TrainingSubmitted", "TrainingCompleted", "ModelRegistered", "ModelDeployed"} <= set(
        events)
    assert events["DatasetRegistered"]["rows"] == "1500"
    assert events["TrainingCompleted"]["metric"] == "accuracy" and events["TrainingCompleted"]["best_learner"]
    assert events["ModelDeployed"]["version"] == "1"
    dependencies = {r["name"] for r in rows if r["type"] == "RemoteDependency"}
    assert {"registry.register", "deployment", "deploy smoke", "deploy switch"} <= dependencies

    stack.score(features(sample_data.rows(1)), probabilities=True)

    def scoring_request() -> sqlite3.Row | None:
        row: sqlite3.Row | None = db.execute("SELECT * FROM envelopes WHERE type='Request' AND name='POST score' "
                          "AND operation_id IN (SELECT operation_id FROM envelopes WHERE name='predict')").fetchone()
        return row

    request = wait_for(scoring_request, timeout=30, what="a scoring request with its dependency")
    body = json.loads(request["body"])
    assert body["data"]["baseData"]["responseCode"] == "200"
    assert "code=" not in json.dumps(body)  # keys never reach telemetry


def test_the_telemetry_page_shows_runs_latency_and_errors(stack: Stack):
    url = f"{stack.host.url}/telemetry"
    assert requests.get(url, timeout=30).status_code == 401
    _, headings, text = read_page(f"{url}?code={stack.host.function_key}")
    assert headings["h1"] == ["Local telemetry"]
    assert headings["h2"] == ["Pipeline runs", "Scoring latency (p50 per 10 s)", "Errors"]
    # The newest uploads are shown: the queue test's last one trained (and its runs show as timelines).
    assert any(h.startswith("queue/c.csv@") for h in headings["h3"]), headings["h3"]
    assert "train queue" in text and "TrainingCompleted" in text
    assert "No scoring requests yet." not in text and " ms" in text  # the latency chart has points
    assert "{" not in text and "}" not in text


def test_each_promoted_run_has_an_html_report_with_pictures(stack: Stack):
    run = next(r for r in stack.get("runs", model="bank")["runs"] if r["state"] == "completed")
    url = f"{stack.host.url}/api/runs/{run['run_id']}/report"
    assert requests.get(url, timeout=30).status_code == 401
    assert requests.get(f"{stack.host.url}/api/runs/nope/report", headers=stack.headers, timeout=30).status_code == 404
    headers, headings, text = read_page(f"{url}?code={stack.host.function_key}")
    assert headers["content-type"].startswith("text/html")
    assert "script-src" not in headers["content-security-policy"]  # no script may run in the report
    version = next(v["version"] for v in stack.model("bank")["versions"] if v["run_id"] == run["run_id"])
    assert headings["h1"] == [f"bank v{version} · run {run['run_id']}"]
    assert headings["h2"][:6] == ["ROC curve", "Precision and recall", "Calibration",
                                  f"Confusion matrix at threshold {headings['h2'][3].rsplit(' ', 1)[1]}",
                                  "Feature importance", "Leaderboard"]
    assert headings["h2"][-1] == "Data guardrails" and "class balance" in text
    primary = run["result"]["primary_metric"]
    assert f"primary metric {primary['name']}" in text
    assert f"{primary['name']} {primary['value']:.4f}" in text  # its value on the validation rows
    decision = stack.get(f"runs/{run['run_id']}")["decision"]
    assert f"{decision['decision'].capitalize()}: {decision['reason']}" in text
    assert "{" not in text and "}" not in text  # no template text left unfilled
    assert (state_folder(stack) / run["result"]["artifact_dir"] / "report.html").exists()  # beside the model


def test_cli_upload_drops_a_file_follows_it_and_says_how_it_ended(stack: Stack, tmp_path: Path):
    """As a user runs it beside `make up`: the storage from AzureWebJobsStorage, the host from --url and --key;
    a spreadsheet's ';' file with decimal commas trains, a broken file exits 1 with the reason."""
    import csv
    import io
    import os
    import sys

    from devhost.process import ROOT

    rows = sample_data.rows(600, seed=21)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), delimiter=";", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: str(v).replace(".", ",") if isinstance(v, float) else v for k, v in row.items()}
                     for row in rows)
    spreadsheet, broken = tmp_path / "eu.csv", tmp_path / "broken.csv"
    spreadsheet.write_text(buffer.getvalue(), encoding="utf-8")
    broken.write_text("age;y\n1;yes\n", encoding="utf-8")
    env = {**os.environ, "AzureWebJobsStorage": stack.host.storage}

    def upload(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", "upload", str(path), "--model", "eu", "--metric",
                               "AUC_weighted", "--url", stack.host.url, "--key", stack.host.function_key],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)

    trained = upload(spreadsheet)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "read as numbers" in trained.stdout and "Decision: promoted (model eu v1)" in trained.stdout
    etag = str(stack.container.get_blob_client("eu/eu.csv").get_blob_properties().etag).strip('"')
    record = stack.upload_record(f"eu/eu.csv@{etag}")
    assert record is not None and record["details"]["metric"] == "AUC_weighted"  # the metadata went with it
    refused = upload(broken)
    assert refused.returncode == 1 and "Upload rejected: too few rows" in refused.stdout, refused.stdout


def test_the_report_draws_the_judged_fit_from_the_outputs_training_recorded(stack: Stack):
    """The host renders the report from the judged fit's outputs on the validation rows, recorded by training,
    without loading that fit: the outputs it would predict again, and the same page."""
    from shared.local import artifacts, report
    from shared.local.pipeline import LocalTrainingPipeline
    from shared.model_contract import columns_from_frame

    listed = next(r for r in stack.get("runs", model="bank")["runs"] if r["state"] == "completed")
    run = LocalTrainingPipeline(state_folder(stack)).get_run(listed["run_id"])
    assert run is not None
    folder = Path(run.result["artifact_dir"])
    recorded = np.load(folder / artifacts.JUDGED_OUTPUTS)
    judged = artifacts.load_judged(folder)
    frame = pd.read_csv(folder / "validation.csv", keep_default_na=True)
    assert recorded.shape == (len(frame), 2)
    assert np.allclose(recorded, judged.predict(columns_from_frame(frame, judged.signature)))
    decision = {"decision": "deployed", "reason": "as measured"}
    from_record = report.render(run, folder, decision, [], "1")
    (folder / artifacts.JUDGED_OUTPUTS).rename(folder / "recorded.npy")  # as a run from before they were kept
    try:
        assert report.render(run, folder, decision, [], "1") == from_record
    finally:
        (folder / "recorded.npy").rename(folder / artifacts.JUDGED_OUTPUTS)
