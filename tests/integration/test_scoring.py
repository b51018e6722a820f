"""The scoring surface on the real stack: strict validation, routes, OpenAPI, docs, batch, hot swap."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from cli import sample_data
from devhost.process import wait_for
from shared import scoring
from shared.local.serving import LocalModelServer, ModelCache
from tests.browser import chromium
from tests.integration.ml_stack import Stack, features, running_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"MAX_SCORE_ROWS": "50", "MAX_SCORE_BYTES": "60000", "BATCH_CHUNK_ROWS": "700", "DRIFT_WINDOW_S": "1",
           "DRIFT_MIN_ROWS": "300"}
    with running_stack(tmp_path_factory.mktemp("scoring"), **env) as running:
        # A deliberately weak first model (key columns excluded), so a later upload beats it.
        weak = sample_data.to_csv(sample_data.rows(300, seed=3))
        record = running.wait_final(running.upload("bank/weak.csv", weak, {"exclude": "duration,poutcome,euribor3m"}))
        assert record["state"] == "promoted", record
        yield running


ROW = features(sample_data.rows(1, seed=21))[0]


def post(stack: Stack, body: object, path: str = "score", raw: bytes | None = None,
         content_type: str | None = "application/json", **params: str) -> requests.Response:
    """None for ``content_type``: the request names no type at all."""
    data = raw if raw is not None else json.dumps(body).encode()
    return requests.post(f"{stack.host.url}/api/{path}", data=data, params=params, timeout=60,
                         headers={**stack.headers, "content-type": content_type})


def test_one_row_with_and_without_probabilities(stack: Stack):
    plain = post(stack, {"data": [ROW]})
    assert plain.status_code == 200
    assert set(plain.json()) == {"result", "model"}
    with_proba = post(stack, {"data": [ROW]}, probabilities="true").json()
    assert with_proba["result"] == plain.json()["result"]
    [probabilities] = with_proba["probabilities"]
    assert set(probabilities) == {"no", "yes"} and abs(sum(probabilities.values()) - 1) < 1e-4


def test_explain_returns_each_rows_contributions_on_request_only(stack: Stack):
    rows = features(sample_data.rows(3, seed=41))
    plain = post(stack, {"data": rows}).json()
    assert "explanations" not in plain
    explained = post(stack, {"data": rows, "explain": True}).json()
    assert explained["result"] == plain["result"]
    assert len(explained["explanations"]) == 3
    for row in explained["explanations"]:
        trained_on = set(rows[0]) - {"duration", "poutcome", "euribor3m"}  # the first model excludes these
        assert set(row["contributions"]) == trained_on and row["output"] in ("log_odds", "probability")
        values = list(row["contributions"].values())
        assert values == sorted(values, key=lambda v: -abs(v))  # strongest first
    assert post(stack, {"data": rows, "explain": "yes"}).status_code == 400


def test_shifted_scoring_traffic_raises_data_drift(stack: Stack):
    like_training = features(sample_data.rows(300, seed=61))  # PSI needs a few hundred rows to mean anything
    for start in range(0, 300, 50):
        assert post(stack, {"data": like_training[start:start + 50]}).status_code == 200

    def window() -> dict | None:
        response = requests.get(f"{stack.host.url}/api/models/bank/drift", headers=stack.headers, timeout=30)
        last = response.json().get("last_window") if response.status_code == 200 else None
        return last if last and last["rows"] >= 300 else None

    quiet = wait_for(window, timeout=30, what="a drift window")
    assert quiet["drifted"] == [] and "DataDriftDetected" not in stack.host.log_text()
    shifted = [{**row, "age": int(str(row["age"])) + 35, "job": "retired"}
               for row in features(sample_data.rows(300, seed=62))]
    for start in range(0, 300, 50):
        assert post(stack, {"data": shifted[start:start + 50]}).status_code == 200

    def drifted() -> dict | None:
        last = window()
        return last if last and last["drifted"] else None

    found = wait_for(drifted, timeout=30, what="drift on the shifted features")
    assert {"age", "job"} <= set(found["drifted"]) and found["psi"]["age"] >= 0.2
    wait_for(lambda: "Data drift on bank" in stack.host.log_text(), timeout=10, what="the drift warning")


def test_the_split_input_data_form_gives_the_same_answer(stack: Stack):
    columns = list(ROW)
    split = post(stack, {"input_data": {"columns": columns, "data": [[ROW[c] for c in columns]]},
                         "probabilities": True})
    assert split.status_code == 200
    assert split.json()["probabilities"] == post(stack, {"data": [ROW], "probabilities": True}).json()["probabilities"]


@pytest.mark.parametrize("form", ["dataframe_records", "instances", "inputs", "dataframe_split"])
def test_the_forms_of_mlflows_scoring_server_give_the_same_answer(stack: Stack, form: str):
    columns = list(ROW)
    rows: object = ({"columns": columns, "index": [0], "data": [[ROW[c] for c in columns]]}
                    if form == "dataframe_split" else [ROW])
    answer = post(stack, {form: rows, "probabilities": True})
    assert answer.status_code == 200, answer.text
    assert answer.json() == post(stack, {"data": [ROW], "probabilities": True}).json()


def test_every_bad_field_is_named_by_row(stack: Stack):
    rows = [dict(ROW), dict(ROW), dict(ROW)]
    rows[0]["surprise"] = 1
    del rows[1]["age"]
    rows[2]["campaign"] = "often"
    rows[2]["job"] = 7
    response = post(stack, {"data": rows})
    assert response.status_code == 400
    details = {(d["row"], d["field"], d["error"].split(",")[0]) for d in response.json()["details"]}
    assert details == {(0, "surprise", "unknown column"), (1, "age", "missing column"),
                       (2, "campaign", "expected a number within float32 range"), (2, "job", "expected a string")}


@pytest.mark.parametrize(
    ("body", "raw", "content_type", "status", "words"),
    [
        (None, b"{not json", "application/json", 400, "not valid JSON"),
        (None, b"[1, 2]", "application/json", 400, "JSON object"),
        ({"data": []}, None, "application/json", 400, "empty"),
        ({"rows": [1]}, None, "application/json", 400, "missing 'data'"),
        ({"data": [1, 2]}, None, "application/json", 400, "list of objects"),
        ({"data": [ROW]}, None, "text/csv", 415, "application/json"),
        ({"data": [ROW] * 51}, None, "application/json", 413, "too many rows"),
        (None, b"{\"data\": [" + b" " * 70000 + b"]}", "application/json", 413, "limit is 60,000"),
        ({"input_data": {"columns": ["age"], "data": [[1, 2]]}}, None, "application/json", 400, "1 values"),
        ({"dataframe_split": {"data": [[1]]}}, None, "application/json", 400, "'dataframe_split' must be"),
        ({"instances": {"age": [1]}}, None, "application/json", 400, "'instances' must be a list of objects"),
        ({"data": [ROW]}, None, None, 415, "no Content-Type"),
        (None, b'{"data": ' + b"[" * 1200 + b"]" * 1200 + b"}", "application/json", 400, "nested too deeply"),
        ({"data": [ROW], "inputs": [ROW]}, None, "application/json", 400, "one form, not 2: 'data', 'inputs'"),
        ({"instances": [ROW], "dataframe_split": {"columns": [], "data": []}}, None, "application/json", 400,
         "one form, not 2"),
        ({"input_data": {"columns": [1], "data": [[41]]}}, None, "application/json", 400, "column names (strings)"),
    ],
)
def test_bad_requests_get_clear_4xx_never_500(stack: Stack, body, raw, content_type, status, words):
    response = post(stack, body, raw=raw, content_type=content_type)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]


@pytest.mark.parametrize(("body", "params", "field"), [
    ({"data": [ROW], "probabilities": "yes"}, {}, "probabilities"),
    ({"data": [ROW], "probabilities": None}, {}, "probabilities"),
    ({"data": [ROW]}, {"probabilities": "maybe"}, "probabilities"),
    ({"data": [ROW], "explain": 1}, {}, "explain"),
    ({"data": [ROW], "explain": "true"}, {}, "explain"),
])
def test_a_flag_that_is_not_a_boolean_is_refused_by_name(stack: Stack, body, params, field):
    response = post(stack, body, **params)
    assert response.status_code == 400, response.text
    assert response.json()["details"] == [{"row": None, "field": field, "error": "expected true or false"}]
    assert f"'{field}' must be true or false" in response.json()["error"]


def test_flags_in_the_query_string_read_true_false_one_and_zero(stack: Stack):
    assert "probabilities" in post(stack, {"data": [ROW]}, probabilities="1").json()
    assert "probabilities" not in post(stack, {"data": [ROW]}, probabilities="false").json()
    assert "probabilities" in post(stack, {"data": [ROW], "probabilities": True}, probabilities="0").json()


def test_a_key_sent_twice_in_one_object_is_refused_by_name(stack: Stack):
    text = json.dumps({"data": [ROW]})
    twice = text.replace('"age": ', '"age": "nope", "age": ', 1).encode()  # json would keep the last value
    response = post(stack, None, raw=twice)
    assert response.status_code == 400, response.text
    assert response.json()["details"] == [{"row": None, "field": "age", "error": "duplicate key"}]
    assert "'age' appears more than once" in response.json()["error"]
    top = post(stack, None, raw=b'{"data": [], "data": ' + json.dumps([ROW]).encode() + b"}")
    assert top.status_code == 400 and top.json()["details"][0]["field"] == "data"


def test_unseen_categories_are_accepted_and_counted(stack: Stack):
    row = {**ROW, "job": "astronaut", "month": "never"}
    body = post(stack, {"data": [row]}).json()
    assert body["unseen_categories"] == 2
    assert body["result"][0] in ("yes", "no")


def test_named_and_versioned_routes(stack: Stack):
    named = post(stack, {"data": [ROW]}, path="models/bank/score")
    assert named.status_code == 200 and named.json()["model"]["name"] == "bank"
    versioned = post(stack, {"data": [ROW]}, path="models/bank/versions/1/score")
    assert versioned.status_code == 200 and versioned.json()["model"] == {"name": "bank", "version": "1"}
    assert post(stack, {"data": [ROW]}, path="models/bank/versions/99/score").status_code == 404
    unknown = post(stack, {"data": [ROW]}, path="models/nothing/score")  # never uploaded: not found, not "wait"
    assert unknown.status_code == 404 and "nothing was ever uploaded" in unknown.json()["error"]


def test_openapi_is_generated_from_the_deployed_signature(stack: Stack):
    spec = stack.get("swagger.json")
    assert spec["openapi"].startswith("3.")
    row = spec["components"]["schemas"]["Row_bank"]
    assert set(row["properties"]) == set(ROW)
    assert set(row["required"]) == set(ROW) - {"duration", "poutcome", "euribor3m"}
    assert row["properties"]["age"]["type"][0] in ("integer", "number")
    example = spec["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert set(example["data"][0]) == set(row["required"])
    assert post(stack, example).status_code == 200  # the documented example really scores
    for path in ("/score", "/models/bank/score", "/models/bank/versions/{version}/score", "/health", "/models",
                 "/runs/{run_id}"):
        assert path in spec["paths"]
    named = spec["paths"]["/models/bank/score"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert named["properties"]["data"]["items"] == {"$ref": "#/components/schemas/Row_bank"}  # bank's own rows
    assert spec["components"]["securitySchemes"]["functionKey"]["name"] == "x-functions-key"


def test_swagger_ui_is_served_from_the_pinned_package(stack: Stack):
    key = stack.host.function_key
    page = requests.get(f"{stack.host.url}/api/docs", params={"code": key}, timeout=30)
    assert page.status_code == 200 and "<script>" not in page.text  # no inline script: the policy forbids it
    # Every asset from the host itself (the random key it carries could spell anything: it is left out).
    assert "cdn" not in page.text.replace(key, "").lower() and "//" not in page.text.replace(key, "")
    assert "script-src 'self';" in page.headers["content-security-policy"]
    asset = requests.get(f"{stack.host.url}/api/docs/assets/swagger-ui-bundle.js", params={"code": key}, timeout=30)
    assert asset.status_code == 200 and len(asset.content) > 100_000
    assert requests.get(f"{stack.host.url}/api/docs/assets/secret.txt", params={"code": key},
                        timeout=30).status_code == 404
    assert requests.get(f"{stack.host.url}/api/docs", timeout=30).status_code == 401
    assert requests.get(f"{stack.host.url}/api/docs/assets/docs.js", timeout=30).status_code == 401


METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def test_swagger_ui_renders_every_route_and_tries_a_scoring_request(stack: Stack):
    """As a person uses it: the page lists each documented operation, and "Try it out" on /score answers 200
    with the key from the page's address (never written into the page's script)."""
    key = stack.host.function_key
    document = stack.get("swagger.json")
    operations = sum(len(METHODS & set(item)) for item in document["paths"].values())
    with chromium() as browser:
        page = browser.new_page()
        refused: list[str] = []  # what the page's security policy blocked
        page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(f"{stack.host.url}/api/docs?code={key}")
        page.wait_for_selector(".opblock, .version-pragma, .errors-wrapper", timeout=60_000)  # rendered, or not
        assert "Unable to render" not in page.inner_text("body")
        assert page.locator(".opblock").count() == operations
        block = page.locator(".opblock:has(.opblock-summary-path[data-path='/score'])")
        block.locator(".opblock-summary").click()
        block.get_by_role("button", name="Try it out").click()
        block.get_by_role("button", name="Execute").click()
        status = block.locator(".live-responses-table tr.response .response-col_status").first
        status.wait_for(timeout=60_000)
        answer = block.locator(".live-responses-table tr.response .response-col_description").first.inner_text()
        assert status.inner_text().strip() == "200", answer
        assert '"result"' in answer and '"model"' in answer
    assert refused == []


def test_health_is_anonymous_and_models_need_a_key(stack: Stack):
    assert requests.get(f"{stack.host.url}/api/health", timeout=30).json() == {"status": "ok"}
    assert requests.get(f"{stack.host.url}/api/models", timeout=30).status_code == 401


def _csv(rows: list[dict[str, object]]) -> bytes:
    return sample_data.to_csv(rows)


def test_batch_scoring_by_drop_in_chunks(stack: Stack):
    blobs = BlobServiceClient.from_connection_string(stack.host.storage)
    inputs = blobs.get_container_client("scoring-input")
    rows = features(sample_data.rows(2000, seed=8))
    inputs.get_blob_client("bank/customers.csv").upload_blob(_csv(rows), overwrite=True)
    output = blobs.get_container_client("scoring-output")

    def summary() -> dict | None:
        blob = output.get_blob_client("bank/customers.summary.json")
        return json.loads(blob.download_blob().readall()) if output.exists() and blob.exists() else None

    result = wait_for(summary, timeout=120, interval=0.2, what="batch summary")
    assert result["rows"] == 2000 and result["chunks"] == 3
    assert sum(result["predictions"].values()) == 2000
    scored = list(csv.DictReader(io.StringIO(
        output.get_blob_client("bank/customers.scored.csv").download_blob().readall().decode())))
    assert len(scored) == 2000
    assert {"prediction", "probability_no", "probability_yes"} <= set(scored[0])
    online = post(stack, {"data": rows[:5]}).json()["result"]
    assert [r["prediction"] for r in scored[:5]] == online

    inputs.get_blob_client("bank/broken.csv").upload_blob(b"age,job\n1,admin.\n", overwrite=True)
    error = wait_for(lambda: output.get_blob_client("bank/broken.error.json").exists(), timeout=60,
                     what="batch error file")
    assert error
    assert "lacks the model's column" in output.get_blob_client("bank/broken.error.json").download_blob().readall() \
        .decode()


def test_hot_swap_under_load_fails_no_request(stack: Stack):
    seen: Counter[str] = Counter()
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        session = requests.Session()
        while not stop.is_set():
            response = session.post(f"{stack.host.url}/api/score", json={"data": [ROW]}, headers=stack.headers,
                                    timeout=60)
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text[:200]}")
            else:
                seen[response.json()["model"]["version"]] += 1

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        strong = sample_data.to_csv(sample_data.rows(2500, seed=4))
        record = stack.wait_final(stack.upload("bank/strong.csv", strong))
        assert record["state"] == "promoted", record
        new_version = record["details"]["decision"]["version"]
        wait_for(lambda: seen[new_version] >= 20, timeout=60, what="requests served by the new model")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert seen["1"] > 0 and seen[new_version] >= 20


def test_the_fast_path_scores_with_the_model_its_check_found(stack: Stack, tmp_path: Path):
    """A small request to a loaded model is scored on the event loop with the model the check handed over: a
    deployment landing in between is loaded by a later request, in a worker thread, never by this one."""
    state = tmp_path / "state"
    shutil.copytree(stack.host.state_dir.parent / "localstack" / "deployments", state / "deployments")
    server = LocalModelServer(ModelCache(state), "")
    assert server.loaded("bank") is None  # not loaded in this process yet: the request goes to a thread
    server.cache.get("bank")
    checked = server.loaded(None)  # the default model: the only one deployed
    assert checked is not None and checked.name == "bank"
    pointer = state / "deployments" / "bank.json"
    newer = {**json.loads(pointer.read_text()), "version": "99", "artifact_uri": str(tmp_path / "not-loaded")}
    staged = pointer.with_suffix(".staged")
    staged.write_text(json.dumps(newer))
    os.replace(staged, pointer)  # the deployment lands
    result = scoring.score(scoring.ScoreRequest([ROW], probabilities=False), checked)
    assert result["model"] == {"name": "bank", "version": checked.version} and len(result["result"]) == 1
    assert server.loaded("bank") is None  # the next request sees the new deployment: it loads in a thread


def test_numbers_beyond_float32_are_refused_by_row_and_field(stack: Stack):
    row = {**ROW, "age": 1e300}
    for body in ({"data": [row]}, {"data": [row], "explain": True}):
        response = post(stack, body)
        assert response.status_code == 400, response.text
        assert response.json()["details"] == [{"row": 0, "field": "age",
                                               "error": "expected a number within float32 range, got 1e+300"}]
