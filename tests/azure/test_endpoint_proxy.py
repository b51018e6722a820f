"""The scoring proxy against a real local HTTP server that plays a managed online endpoint."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from cli import sample_data
from shared.azure.endpoint_client import EndpointClient, pooled_session
from shared.errors import BadGateway, BadRequest, GatewayTimeout, NotSupported, ServiceUnavailable
from shared.promotion import RUN_COMPLETED, handle_run_completed
from shared.scoring import ScoreRequest
from tests.azure.conftest import AzureStack, sample_csv


@dataclass
class Reply:
    status: int = 200
    body: str = '["no"]'
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeEndpoint:
    url: str
    replies: list[Reply] = field(default_factory=list)  # served in order; the last one repeats
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture()
def endpoint() -> Iterator[FakeEndpoint]:
    fake = FakeEndpoint("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            fake.received.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
            reply = fake.replies.pop(0) if len(fake.replies) > 1 else fake.replies[0]
            time.sleep(reply.delay_s)
            payload = reply.body.encode()
            self.send_response(reply.status)
            for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that timed out and hung up is what the slow test wants

    server = Server(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    fake.replies.append(Reply())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


def client(retries: int = 3, timeout_s: float = 5.0) -> tuple[EndpointClient, list[float]]:
    slept: list[float] = []
    return EndpointClient(pooled_session(), timeout_s=timeout_s, retries=retries, backoff_s=0.01,
                          sleep=slept.append), slept


def test_429_and_503_are_retried_with_backoff_honouring_retry_after(endpoint: FakeEndpoint):
    endpoint.replies[:] = [Reply(429, "{}", headers={"Retry-After": "2"}), Reply(503, "{}"), Reply(200, '["yes"]')]
    proxy, slept = client()
    assert proxy.post(f"{endpoint.url}/score", {"x": 1}, {}) == ["yes"]
    assert len(endpoint.received) == 3
    assert slept[0] == 2.0 and 0 < slept[1] < 0.05


def test_retries_are_bounded_then_503_says_so(endpoint: FakeEndpoint):
    endpoint.replies[:] = [Reply(503, '{"error": "scaling"}')]
    proxy, slept = client(retries=2)
    with pytest.raises(ServiceUnavailable, match="busy"):
        proxy.post(f"{endpoint.url}/score", {}, {})
    assert len(endpoint.received) == 3 and len(slept) == 2


def test_a_slow_endpoint_times_out_once_without_retries(endpoint: FakeEndpoint):
    endpoint.replies[:] = [Reply(delay_s=1.0)]
    proxy, _ = client(timeout_s=0.2)
    with pytest.raises(GatewayTimeout, match=r"0\.2 s"):
        proxy.post(f"{endpoint.url}/score", {}, {})
    assert len(endpoint.received) == 1


def test_bad_json_and_errors_from_the_endpoint_are_named(endpoint: FakeEndpoint):
    proxy, _ = client(retries=0)
    endpoint.replies[:] = [Reply(200, "<html>oops")]
    with pytest.raises(BadGateway, match="invalid JSON"):
        proxy.post(f"{endpoint.url}/score", {}, {})
    endpoint.replies[:] = [Reply(400, '{"message": "column age missing"}')]
    with pytest.raises(BadRequest, match="column age missing"):
        proxy.post(f"{endpoint.url}/score", {}, {})
    endpoint.replies[:] = [Reply(403, "{}")]
    with pytest.raises(BadGateway, match="role assignment"):
        proxy.post(f"{endpoint.url}/score", {}, {})
    endpoint.replies[:] = [Reply(500, "{}")]
    with pytest.raises(BadGateway, match="HTTP 500"):
        proxy.post(f"{endpoint.url}/score", {}, {})


def test_an_unreachable_endpoint_is_503_after_retries():
    proxy, slept = client(retries=1)
    with pytest.raises(ServiceUnavailable, match="cannot be reached"):
        proxy.post("http://127.0.0.1:9/score", {}, {})
    assert len(slept) == 1


class Token:
    def __init__(self) -> None:
        self.calls = 0

    def get_token(self, scope: str) -> Any:
        self.calls += 1
        assert scope == "https://ml.azure.com/.default"
        return SimpleNamespace(token=f"token-{self.calls}", expires_on=time.time() + 3600)


def deployed_stack(stack: AzureStack, endpoint: FakeEndpoint, metadata: dict[str, str] | None = None,
                   content: bytes | None = None, path: str = "bank/jan.csv") -> tuple[Any, Token]:
    """A model deployed through the real promotion path, its endpoint played by the local server."""
    from shared.azure.serving import EndpointModelServer

    stack.workspace.scoring_base = endpoint.url
    run_id = stack.upload(content or sample_csv(), path=path, metadata=metadata)
    assert handle_run_completed(RUN_COMPLETED, stack.workspace.complete_run(run_id), stack.backend).decision \
        == "deploying"
    assert stack.queue.drain(stack.backend)[-1] == "done"
    token = Token()
    server = stack.backend.server
    assert isinstance(server, EndpointModelServer)
    server.credential = token
    server.client = client()[0]
    return server, token


ROW = {"age": 41, "job": "admin.", "marital": "married", "education": "high.school", "default": "no",
       "housing": "yes", "loan": "no", "contact": "cellular", "month": "may", "day_of_week": "mon",
       "duration": 200, "campaign": 1, "pdays": 999, "previous": 0, "poutcome": "nonexistent",
       "emp.var.rate": 1.1, "cons.price.idx": 93.9, "cons.conf.idx": -36.4, "euribor3m": 4.8,
       "nr.employed": 5191.0}


def test_scoring_forwards_valid_rows_with_the_managed_identity_token(stack: AzureStack, endpoint: FakeEndpoint):
    server, token = deployed_stack(stack, endpoint)
    endpoint.replies[:] = [Reply(200, '["no", "yes"]')]
    answer = server.score("bank", ScoreRequest([ROW, {**ROW, "age": 60}], False))
    assert answer == {"result": ["no", "yes"], "model": {"name": "bank", "version": "1"}}
    sent = endpoint.received[-1]
    assert sent["path"] == "/bank-x7k2/score"
    assert sent["headers"]["Authorization"] == "Bearer token-1"
    assert sent["headers"]["azureml-model-deployment"] == "blue"
    columns = sent["body"]["input_data"]["columns"]
    assert set(columns) == set(ROW) and sent["body"]["input_data"]["index"] == [0, 1]
    assert sent["body"]["input_data"]["data"][1][columns.index("age")] == 60
    endpoint.replies[:] = [Reply(200, '["no"]')]
    server.score("bank", ScoreRequest([ROW], False))
    assert token.calls == 1  # the token is reused until it nears expiry


def test_a_regression_model_answers_numbers_and_refuses_probabilities(stack: AzureStack, endpoint: FakeEndpoint):
    homes = sample_data.home_rows(200)
    server, _ = deployed_stack(stack, endpoint, {"target": "price"}, sample_data.to_csv(homes), "homes/jan.csv")
    row = {k: v for k, v in homes[0].items() if k != "price"}
    endpoint.replies[:] = [Reply(200, "[412.5, 97]")]
    answer = server.score("homes", ScoreRequest([row, {**row, "garden": False}], False))
    assert answer == {"result": [412.5, 97.0], "model": {"name": "homes", "version": "1"}}
    assert server.deployed()["homes"].regression  # the OpenAPI document types its result as numbers
    endpoint.replies[:] = [Reply(200, '["high"]')]
    with pytest.raises(BadGateway, match="non-number"):
        server.score("homes", ScoreRequest([row], False))
    with pytest.raises(BadRequest, match="regression model: it predicts a number for 'price', not class prob"):
        server.score("homes", ScoreRequest([row], True))


def test_a_number_the_model_has_none_for_is_null_in_the_answer(stack: AzureStack, endpoint: FakeEndpoint):
    """The scoring script answers null where a model has no number (a forecast beyond its horizon, say)."""
    homes = sample_data.home_rows(200)
    server, _ = deployed_stack(stack, endpoint, {"target": "price"}, sample_data.to_csv(homes), "homes/jan.csv")
    row = {k: v for k, v in homes[0].items() if k != "price"}
    endpoint.replies[:] = [Reply(200, '{"predictions": [412.5, null]}')]
    answer = server.score("homes", ScoreRequest([row, row], False))
    assert answer == {"result": [412.5, None], "model": {"name": "homes", "version": "1"}}


def test_a_regression_models_served_predictions_are_held_against_its_answers_on_held_out_rows(
        stack: AzureStack, endpoint: FakeEndpoint):
    homes = sample_data.home_rows(600)
    server, _ = deployed_stack(stack, endpoint, {"target": "price"}, sample_data.to_csv(homes), "homes/jan.csv")
    kept = stack.store.blobs.get("models/homes/v1/prediction_reference.json")
    assert kept is not None  # written by the smoke test from the deployment's answers on the held-out rows
    reference = json.loads(kept)
    assert reference["kind"] == "number" and len(reference["edges"]) >= 5
    rows = [{k: v for k, v in r.items() if k != "price"} for r in homes[:300]]
    for start in range(0, 300, 10):  # the features as in training, the predictions ten times higher
        endpoint.replies[:] = [Reply(200, json.dumps([reference["edges"][-1] * 10] * 10))]
        server.score("homes", ScoreRequest(rows[start:start + 10], False))
    assert server.windows is not None
    server.drift.close_windows()
    server.windows.clock = lambda: time.time() + 2 * 300
    summary = server.drift_summary("homes")
    assert summary is not None and summary["training_positive_rate"] is None
    window = summary["last_window"]
    assert window["rows"] == 300 and window["prediction_psi"] > 1 and window["positive_rate"] is None
    assert max(window["psi"].values()) < 0.5  # the rows themselves are like training's


def test_bad_rows_are_refused_before_any_call(stack: AzureStack, endpoint: FakeEndpoint):
    server, _ = deployed_stack(stack, endpoint)
    calls = len(endpoint.received)
    with pytest.raises(BadRequest) as refused:
        server.score("bank", ScoreRequest([{**ROW, "age": "old"}, {"age": 3}], False))
    fields = {(d["row"], d["field"]) for d in refused.value.details}
    assert (0, "age") in fields and (1, "job") in fields
    assert len(endpoint.received) == calls


def test_an_answer_of_the_wrong_length_is_a_bad_gateway(stack: AzureStack, endpoint: FakeEndpoint):
    server, _ = deployed_stack(stack, endpoint)
    endpoint.replies[:] = [Reply(200, '{"predictions": ["no", "no", "no"]}')]
    with pytest.raises(BadGateway):
        server.score("bank", ScoreRequest([ROW], False))


def test_nothing_deployed_is_none_and_the_default_model_comes_from_endpoint_tags(stack: AzureStack,
                                                                                 endpoint: FakeEndpoint):
    server = stack.backend.server
    assert server.default_model() is None
    assert server.score("bank", ScoreRequest([ROW], False)) is None
    deployed, _ = deployed_stack(stack, endpoint)
    deployed._names = None
    assert deployed.default_model() == "bank"


def test_columns_left_out_of_training_are_accepted_and_not_forwarded(stack: AzureStack, endpoint: FakeEndpoint):
    server, _ = deployed_stack(stack, endpoint, {"exclude": "duration"})
    endpoint.replies[:] = [Reply(200, '["no"]')]
    assert server.score("bank", ScoreRequest([ROW], False))["result"] == ["no"]
    assert "duration" not in endpoint.received[-1]["body"]["input_data"]["columns"]
    assert server.deployed()["bank"].ignored == frozenset({"duration"})


def test_the_capabilities_azure_ml_owns_answer_not_supported_with_what_to_use(stack: AzureStack,
                                                                                endpoint: FakeEndpoint):
    from shared.batch import score_drop
    from tests.unit.fakes import MemoryBatchOutputs

    server, _ = deployed_stack(stack, endpoint)
    signature = server.deployed()["bank"]
    assert set(signature.names) == set(ROW) and "y" not in signature.names  # the OpenAPI rows of the model
    assert stack.backend.reports.html("some-run") is None  # written once a run's model is decided
    outputs = MemoryBatchOutputs()
    # The function never asks the server in Azure (shared.batch_flow submits a batch endpoint job); if asked, it
    # says so rather than scoring a whole file in the function.
    assert "batch endpoint" in str(score_drop(server, "bank/march.csv", sample_csv(), 100, outputs)["error"])
    assert list(outputs.json) == ["bank/march.error.json"] and not outputs.committed


def test_production_traffic_is_watched_for_drift_across_windows_as_locally(stack: AzureStack, endpoint: FakeEndpoint,
                                                                          monkeypatch: pytest.MonkeyPatch):
    """The baseline kept at registration, the monitor fed by scoring, the window flushed to the state records
    and merged: the same summary and the same DataDriftDetected event as the local backend's."""
    from shared import telemetry

    events: list[tuple[str, dict]] = []
    monkeypatch.setattr(telemetry, "event", lambda name, **props: events.append((name, props)))
    server, _ = deployed_stack(stack, endpoint)
    labels = [str(r["y"]) for r in sample_data.rows(200, seed=7)]  # what sample_csv() uploaded
    yes_share = labels.count("yes") / len(labels)
    assert server.drift_summary("bank") == {  # a monitor, and no window closed yet
        "model": "bank", "version": "1", "threshold": 0.2, "window_s": 300,
        "training_positive_rate": pytest.approx(yes_share, abs=0.001), "last_window": None, "at_most_s_old": 600}
    older = [{**row, "age": int(str(row["age"])) + 30, "job": "retired"}
             for row in (dict(r) for r in sample_data.rows(300, seed=5))]
    for start in range(0, 300, 10):
        endpoint.replies[:] = [Reply(200, json.dumps(["yes"] * 10))]
        server.score("bank", ScoreRequest([{k: v for k, v in r.items() if k != "y"}
                                           for r in older[start:start + 10]], False))
    version = stack.backend.registry.get("bank", "1")
    assert version is not None
    endpoint.replies[:] = [Reply(200, '["no"]')]
    server.score("bank", ScoreRequest([ROW], False), version)  # a named version is not production traffic
    assert server.windows is not None
    server.drift.close_windows()  # the window's end: this instance's counts go to the state records
    flushed = [p for p in stack.records.records if p.startswith("drift/bank/v1/windows/")]
    assert len(flushed) == 1 and stack.records.records[flushed[0]][0]["rows"] == 300
    server.windows.clock = lambda: time.time() + 2 * 300  # every instance has flushed the window by now
    summary = server.drift_summary("bank")
    assert summary is not None
    window = summary["last_window"]
    assert window["rows"] == 300 and window["instances"] == 1 and window["positive_rate"] == 1.0
    assert set(window["drifted"]) >= {"age", "job"} and window["psi"]["campaign"] < 0.2
    drifted = [props for name, props in events if name == "DataDriftDetected"]
    assert len(drifted) == 1 and drifted[0]["dataDriftName"] == "bank-v1" and drifted[0]["rows"] == 300
    assert drifted[0]["baseDatasetId"] == "bank:1" and drifted[0]["trainingPositiveRate"] is not None
    assert not [p for p in stack.records.records if p.startswith("drift/bank/v1/windows/")]  # merged once
    assert server.drift_summary("bank") == summary  # read again: nothing merged, nothing published twice
    assert len([1 for name, _ in events if name == "DataDriftDetected"]) == 1


def test_one_scoring_call_leaves_the_same_telemetry_as_locally(stack: AzureStack, endpoint: FakeEndpoint):
    """The model's latency histogram, its rows, its labels and the categories it never saw: recorded by the
    same code (shared.scoring.record_scored) whichever backend answered."""
    from shared import telemetry

    server, _ = deployed_stack(stack, endpoint)
    key = (("model", "bank"), ("version", "1"))
    before = (telemetry.score_latency.totals().get(key, 0), telemetry.rows_scored.totals().get(key, 0),
              telemetry.predicted_labels.totals().get((*key, ("label", "yes")), 0),
              telemetry.unseen_categories.totals().get(key, 0))
    endpoint.replies[:] = [Reply(200, '["no", "yes"]')]
    answer = server.score("bank", ScoreRequest([ROW, {**ROW, "job": "astronaut"}], False))
    assert answer["unseen_categories"] == 1 and answer["result"] == ["no", "yes"]
    after = (telemetry.score_latency.totals().get(key, 0), telemetry.rows_scored.totals().get(key, 0),
             telemetry.predicted_labels.totals().get((*key, ("label", "yes")), 0),
             telemetry.unseen_categories.totals().get(key, 0))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 2, 1, 1]


SCRIPT_ANSWER = json.dumps({"predictions": ["no", "yes"], "classes": ["no", "yes"],
                            "probabilities": [[0.875, 0.125], [0.25, 0.75]]})


def test_probabilities_come_from_the_deployment_in_the_same_form_as_locally(stack: AzureStack,
                                                                            endpoint: FakeEndpoint):
    """The app's scoring script answers labels, classes and probabilities (shared/azure/endpoint_code/score.py);
    the answer is the local one: a label per row and each class's probability, named."""
    server, _ = deployed_stack(stack, endpoint)
    endpoint.replies[:] = [Reply(200, SCRIPT_ANSWER)]
    answer = server.score("bank", ScoreRequest([ROW, {**ROW, "age": 61}], True))
    assert answer == {"result": ["no", "yes"], "model": {"name": "bank", "version": "1"},
                      "probabilities": [{"no": 0.875, "yes": 0.125}, {"no": 0.25, "yes": 0.75}]}
    assert server.deployed()["bank"].names == tuple(endpoint.received[-1]["body"]["input_data"]["columns"])


@pytest.mark.parametrize("answer", [
    '{"predictions": ["no"], "classes": ["no", "yes"], "probabilities": [[0.5, 0.25, 0.25]]}',
    '{"predictions": ["no"], "classes": ["no", "no"], "probabilities": [[0.5, 0.5]]}',
    '{"predictions": ["no"], "classes": ["no", "yes"], "probabilities": [["a", "b"]]}'])
def test_probabilities_that_do_not_fit_the_rows_or_classes_are_a_bad_gateway(stack: AzureStack,
                                                                             endpoint: FakeEndpoint, answer: str):
    server, _ = deployed_stack(stack, endpoint)
    endpoint.replies[:] = [Reply(200, answer)]
    with pytest.raises(BadGateway, match="probabilities"):
        server.score("bank", ScoreRequest([ROW], True))


def test_explanations_answer_501_before_any_call_naming_where_they_are(stack: AzureStack, endpoint: FakeEndpoint):
    server, _ = deployed_stack(stack, endpoint)
    calls = len(endpoint.received)
    with pytest.raises(NotSupported) as refused:
        server.score("bank", ScoreRequest([ROW], False, True))
    assert refused.value.status_code == 501
    assert "/report" in str(refused.value) and "local backend" in str(refused.value)
    assert len(endpoint.received) == calls  # refused before the call


def test_a_deployment_that_answers_labels_only_still_serves_labels_but_not_probabilities(stack: AzureStack,
                                                                                         endpoint: FakeEndpoint):
    """Azure ML's MLflow server, without the app's script, answers ``{"predictions": [...]}``."""
    server, _ = deployed_stack(stack, endpoint)
    endpoint.replies[:] = [Reply(200, '{"predictions": ["yes"]}')]
    assert server.score("bank", ScoreRequest([ROW], False))["result"] == ["yes"]
    with pytest.raises(NotSupported, match=r"labels only.*redeploy"):
        server.score("bank", ScoreRequest([ROW], True))
