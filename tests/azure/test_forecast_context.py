"""A forecaster deployed in Azure answers the periods after the end of the uploaded data, through the real MLClient.

The SDK uploads each deployment's code folder (to Azurite, at the SAS the REST
stand-in hands out), and the stand-in's scoring route runs the script it
uploaded, as Azure ML's inference server would, over the test's stand-in for
AutoML's forecasting model (``test_scoring_script.ForecastingPipelineStandIn``;
no machine here reaches Azure or installs AutoML's runtime), fitted on the
version's ``train.csv`` as AutoML is. So what is checked is the folder the
deployment really ships and the script that really reads it.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from cli import sample_data
from shared.azure import entities, holdout
from shared.promotion import RUN_COMPLETED, handle_run_completed
from tests.azure.conftest import SdkStack
from tests.azure.test_scoring_script import FORECAST_SIGNATURE, ForecastingPipelineStandIn, saved

METADATA = {"target": "sales", "time_column": "date", "horizon": "3", "series": "store"}
ENDPOINT = "shop-x7k2"


def months(count: int) -> list[dict[str, object]]:
    """Two stores' monthly sales (month ends), each a number more a month."""
    dates = pd.date_range("2022-01-31", periods=count, freq="ME").strftime("%Y-%m-%d")
    return [{"date": d, "store": store, "price": 2, "sales": base + i}
            for store, base in (("north", 100.0), ("south", 40.0)) for i, d in enumerate(dates)]


class Deployed:
    """Azure ML serving the deployments: each runs the code folder the SDK uploaded for it, over the model of its
    version (a stand-in fitted on that version's train.csv). Keeps every call's request and what the model got."""

    def __init__(self, stack: SdkStack, blobs: BlobServiceClient, monkeypatch: pytest.MonkeyPatch,
                 folder: Path) -> None:
        self.stack = stack
        self.blobs = blobs
        self.monkeypatch = monkeypatch
        self.folder = folder
        self.models: dict[str, Path] = {}  # model version -> its MLflow folder
        self.scripts: dict[str, Any] = {}  # deployment resource id -> its loaded score.py
        self.calls: list[tuple[str, Any, pd.DataFrame, Any]] = []  # deployment, request, X, y

    def fit(self, version: str) -> None:
        """The model AutoML would register as ``version``: fitted on the latest dataset version's train.csv."""
        dataset = self.stack.backend.datasets.get("shop")
        assert dataset is not None
        train = self.stack.service.store.blobs[
            f"{entities.dataset_folder('shop', dataset.content_hash)}/{holdout.TRAIN_FILE}"]
        rows = pd.read_csv(io.BytesIO(train)).sort_values("date").groupby("store").last()
        last = {str(store): (str(row["date"]), float(row["sales"])) for store, row in rows.iterrows()}
        self.models[version] = saved(self.folder / f"model-{version}", ForecastingPipelineStandIn(last, horizon=3),
                                     FORECAST_SIGNATURE)

    def code(self, deployment: dict[str, Any]) -> dict[str, bytes]:
        """The files the SDK uploaded for the deployment's code (its codeId names the Code version)."""
        name, version = deployment["properties"]["codeConfiguration"]["codeId"].split("/codes/")[1].split(
            "/versions/")
        uri = self.stack.service.codes[(name, version)]["properties"]["codeUri"]
        container, prefix = uri.split(f"/{self.blobs.account_name}/", 1)[1].split("/", 1)
        uploads = self.blobs.get_container_client(container)
        return {b.name.rsplit("/", 1)[-1]: uploads.download_blob(b.name).readall()
                for b in uploads.list_blobs(name_starts_with=prefix.strip("/") + "/")}

    def upload_location(self, name: str) -> str:
        """A container of its own for each upload of a code folder, as Azure ML gives each pending upload."""
        container = self.blobs.create_container(f"code-{name}"[:63].lower())
        sas = generate_container_sas(str(self.blobs.account_name), container.container_name,
                                     account_key=self.blobs.credential.account_key,
                                     permission=ContainerSasPermissions(read=True, write=True, create=True,
                                                                        list=True),
                                     expiry=datetime.now(UTC) + timedelta(hours=1))
        return f"{container.url}?{sas}"

    def __call__(self, deployment: dict[str, Any], body: Any) -> str:
        key = deployment["id"] + deployment["properties"]["codeConfiguration"]["codeId"]
        if key not in self.scripts:
            folder = Path(tempfile.mkdtemp(dir=self.folder))
            for name, content in self.code(deployment).items():
                (folder / name).write_bytes(content)
            spec = importlib.util.spec_from_file_location(f"score_{len(self.scripts)}", folder / "score.py")
            assert spec is not None and spec.loader is not None
            script = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(script)
            self.monkeypatch.setenv("AZUREML_MODEL_DIR",
                                    str(self.models[deployment["properties"]["model"].rsplit("/", 1)[-1]]))
            script.init()
            self.scripts[key] = script
        script = self.scripts[key]
        before = len(script._model.calls)
        answer = script.run(json.dumps(body))
        for X, y in script._model.calls[before:]:
            self.calls.append((deployment["name"], body, X, y))
        return json.dumps(answer)


@pytest.fixture()
def deployed(sdk_stack: SdkStack, blob_service: BlobServiceClient, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Deployed:
    playing = Deployed(sdk_stack, blob_service, monkeypatch, tmp_path)
    sdk_stack.service.code_stored, sdk_stack.service.upload_location = False, playing.upload_location
    sdk_stack.service.scorer = playing
    return playing


def train_and_deploy(stack: SdkStack, deployed: Deployed, count: int, etag: str, version: str) -> dict[str, Any]:
    """Upload ``count`` months, let AutoML finish, register and deploy: the upload's record at the end."""
    run_id = stack.upload(sample_data.to_csv(months(count)), path="shop/history.csv", etag=etag, metadata=METADATA)
    stack.service.finish_pipeline(run_id, score=0.1)
    deployed.fit(version)
    job = stack.service.jobs[run_id]
    event = {"experimentId": "0fa9dfaa-cba3-4fa7-b590-23e48548f5c1", "experimentName": "shop", "runId": run_id,
             "runType": None, "runTags": dict(job["properties"]["tags"]),
             "runProperties": {"azureml.runsource": "azureml.PipelineRun"}}
    assert handle_run_completed(RUN_COMPLETED, event, stack.backend).decision == "deploying"
    stack.deploy_until_done()
    record = stack.backend.uploads.get(f"shop/history.csv@{etag}")
    assert record is not None
    return record


def invoke(stack: SdkStack, rows: list[list[Any]], deployment: str) -> list[float | None]:
    """The endpoint asked through the SDK, as the app's own callers ask."""
    request = Path(tempfile.mkdtemp()) / "request.json"
    request.write_text(json.dumps({"input_data": {"columns": ["date", "store", "price"],
                                                  "index": list(range(len(rows))), "data": rows}}))
    answer = stack.ml.online_endpoints.invoke(endpoint_name=ENDPOINT, deployment_name=deployment,
                                              request_file=str(request))
    return list(json.loads(answer)["predictions"])


def test_a_deployed_forecaster_answers_the_horizon_after_the_last_uploaded_month(sdk_stack: SdkStack,
                                                                                deployed: Deployed):
    record = train_and_deploy(sdk_stack, deployed, 36, '"a"', "1")
    assert record["state"] == "promoted", record
    # The deployment shipped its version's held-out months (each store's last 3) with their actual sales.
    [deployment] = sdk_stack.service.deployments.values()
    shipped = deployed.code(deployment)
    assert set(shipped) == {"score.py", "batch_score.py", "context.csv", "context.json"}
    context = list(csv.DictReader(io.StringIO(shipped["context.csv"].decode())))
    assert sorted((r["store"], r["date"], r["sales"]) for r in context) == sorted(
        (str(r["store"]), str(r["date"]), str(r["sales"])) for r in months(36) if str(r["date"]) >= "2024-10-31")
    assert json.loads(shipped["context.json"])["target"] == "sales"
    # The smoke test asked for the month after the last uploaded one, and got a forecast.
    _, smoke, _, answered = deployed.calls[0]
    assert smoke["input_data"]["data"] == [["2025-01-31", "north", "2"]]
    assert np.isfinite(answered[:-1]).all() and np.isnan(answered[-1])  # north's context, then the month asked
    # Asked for the three months after the upload, each store is forecast from its last uploaded month: December
    # 2024 (north 135, south 75), not from where training ended (September).
    future = [[d, store, 2] for store in ("north", "south") for d in ("2025-01-31", "2025-02-28", "2025-03-31")]
    assert invoke(sdk_stack, future, deployment["name"]) == [136.0, 137.0, 138.0, 76.0, 77.0, 78.0]
    _, _, X, y = deployed.calls[-1]
    assert len(X) == 12 and np.isfinite(y[:6]).all() and np.isnan(y[6:]).all()  # the context, then the asked rows
    # Beyond the horizon from there: no forecast.
    assert invoke(sdk_stack, [["2025-04-30", "north", 2]], deployment["name"]) == [None]


def test_the_gate_compares_on_the_held_out_windows_without_giving_a_model_their_actual_values(
        sdk_stack: SdkStack, deployed: Deployed):
    assert train_and_deploy(sdk_stack, deployed, 36, '"a"', "1")["state"] == "promoted"
    # Three months more: the new version holds out January-March 2025, the months after v1's data.
    record = train_and_deploy(sdk_stack, deployed, 39, '"b"', "2")
    chosen = record["details"]["decision"]
    assert chosen["compared_rows"] == 6 and chosen["champion"] is not None and chosen["challenger"] is not None
    windows = {(store, d) for store in ("north", "south") for d in ("2025-01-31", "2025-02-28", "2025-03-31")}
    compared = [(name, X, y) for name, body, X, y in deployed.calls
                if len(body["input_data"]["data"]) == 6 and name in ("blue", "green")][-2:]
    assert {name for name, _, _ in compared} == {"blue", "green"}  # both colours, the same rows
    for name, X, y in compared:
        asked = X[np.isnan(y)]
        assert {(s, d.strftime("%Y-%m-%d")) for s, d in zip(asked["store"], asked["date"], strict=True)} == windows
        given = X[np.isfinite(y)]
        # No actual value of a window's month reaches either model: only months before the windows.
        assert (given["date"] < pd.Timestamp("2025-01-31")).all(), name
    # The champion (v1) forecast them from its own context (October-December 2024, before the windows); the new
    # model has none (its held-out months are the windows): it forecasts from where its training ended.
    assert {name: len(X[np.isfinite(y)]) for name, X, y in compared} == {"blue": 6, "green": 0}


def test_a_batch_deployment_of_a_forecaster_ships_its_context(sdk_stack: SdkStack, deployed: Deployed):
    assert train_and_deploy(sdk_stack, deployed, 36, '"a"', "1")["state"] == "promoted"
    production = sdk_stack.backend.deployer.production("shop")
    assert production is not None
    sdk_stack.service.provision_all()
    scorer = sdk_stack.backend.batch
    assert scorer is not None
    assert scorer.prepare(production) is None  # the endpoint first
    sdk_stack.service.provision_all()
    assert scorer.prepare(production) is None  # then the version's deployment, with its code folder
    [batch] = sdk_stack.service.batch_deployments.values()
    shipped = deployed.code(batch)
    assert {"batch_score.py", "score.py", "context.csv", "context.json"} == set(shipped)
    assert shipped["context.csv"] == next(
        deployed.code(d) for d in sdk_stack.service.deployments.values())["context.csv"]
