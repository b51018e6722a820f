"""Batch scoring by drop in Azure: the real MLClient against the REST double, storage on Azurite.

The drop is a blob in Azurite's ``scoring-input``, handed to the ``batch_score`` function as the BlobClient the
SDK-type binding gives; the job's output lands in Azurite's ``scoring-jobs``, written by the deployment's own
script (``endpoint_code/batch_score.py``) run here as Azure ML runs it, over an MLflow model folder. Request bodies
are checked against the specification's schemas: ``Workspace/BatchEndpoint/createOrUpdate.json`` and ``get.json``
(BatchEndpointTrackedResource), ``Workspace/BatchDeployment/createOrUpdate.json`` and ``get.json``
(BatchDeploymentTrackedResource), the data-plane ``BatchJobResource`` (``2020-09-01-dataplanepreview/mfe.json``)
for the job, and ``Job/PipelineJob/get.json`` for its status.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import pickle
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from shared import batch_flow, telemetry
from shared import status as status_view
from shared.azure import entities
from shared.azure.batch_scoring import AzureBatchScorer, ContainerJobOutputs
from shared.azure.dry_run import InMemoryQueue, drain_batch
from shared.ports import Backend, BatchSummary
from shared.storage import BlobBatchOutputs
from tests.azure.conftest import SdkStack, declared_functions, sample_csv
from tests.azure.spec_schemas import check
from tests.azure.test_sdk_contract import promoted

BATCH_ENDPOINT = "bank-batch-x7k2"


class AgeRule:
    """A stand-in for AutoML's pipeline: 'yes' past 50, with probabilities in a DataFrame named by class."""

    def predict(self, table: pd.DataFrame) -> Any:
        return np.where(table["age"].fillna(0) > 50, "yes", "no")

    def predict_proba(self, table: pd.DataFrame) -> pd.DataFrame:
        yes = np.where(table["age"].fillna(0) > 50, 0.8, 0.3)
        return pd.DataFrame({"no": 1 - yes, "yes": yes})


def model_folder(root: Path, backend: Backend) -> Path:
    """The registered model's files as a batch deployment gets them: MLflow's sklearn flavour, with the signature
    of the dataset version it was trained on."""
    dataset = backend.datasets.get("bank")
    assert dataset is not None
    signature = [{"name": c.name, "type": "double" if c.is_numeric else "string"} for c in dataset.schema.features]
    folder = root / "model" / "mlflow-model"
    folder.mkdir(parents=True)
    (folder / "model.pkl").write_bytes(pickle.dumps(AgeRule()))
    (folder / "MLmodel").write_text("flavors:\n  sklearn:\n    pickled_model: model.pkl\n"
                                    f"signature:\n  inputs: '{json.dumps(signature)}'\n", encoding="utf-8")
    return root / "model"


def batch_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("batch_score", entities.SCORING_CODE / entities.BATCH_SCORING_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class BatchStack:
    sdk: SdkStack
    backend: Backend
    queue: InMemoryQueue
    blobs: BlobServiceClient
    inputs: ContainerClient
    outputs: ContainerClient
    jobs: ContainerClient
    tmp: Path
    monkeypatch: pytest.MonkeyPatch

    def drop(self, name: str, content: bytes) -> Any:
        """Write the blob and hand it to the batch_score function, as the blob trigger does."""
        self.inputs.upload_blob(name, content, overwrite=True)
        return self.deliver(name)

    def deliver(self, name: str) -> Any:
        from functions import batch as module

        self.monkeypatch.setattr(module, "get_backend", lambda: self.backend)
        declared_functions()["batch_score"].get_user_function()(self.inputs.get_blob_client(name))

    def run(self, limit: int = 30) -> list[str]:
        """Run batch job messages until one waits on Azure or the job's record is final."""
        outcomes: list[str] = []
        while self.queue.messages and len(outcomes) < limit:
            outcomes += drain_batch(self.queue, self.backend, BlobBatchOutputs(self.outputs), limit=1)
            if outcomes[-1] == "polling" or " -> " not in outcomes[-1]:
                break
        return outcomes

    def play_job(self, job: str, status: str = "Completed") -> None:
        """Azure ML running the job: the deployment's script over the input file, its files in the output folder."""
        service = self.sdk.service
        properties = service.jobs[job]["properties"]
        source = properties["inputs"][entities.BATCH_INPUT]["uri"].split("/paths/", 1)[1]
        folder = properties["outputs"][entities.BATCH_OUTPUT]["uri"].split("/paths/", 1)[1].rsplit("/", 1)[0]
        if status == "Completed":
            local = self.tmp / "job" / job
            (local / "out").mkdir(parents=True)
            (local / "input.csv").write_bytes(self.inputs.download_blob(source).readall())
            self.monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_folder(local, self.sdk.backend)))
            self.monkeypatch.setenv("AZUREML_BI_OUTPUT_PATH", str(local / "out"))
            self.monkeypatch.setenv("BATCH_CHUNK_ROWS", "50")
            script = batch_script()
            script.init()
            assert script.run([str(local / "input.csv")]) == [str(local / "input.csv")]
            for file in (local / "out").iterdir():
                self.jobs.upload_blob(f"{folder}/{file.name}", file.read_bytes(), overwrite=True)
        else:
            properties["properties"]["azureml.failure_reason"] = "UserError: the scoring script failed"
        properties["status"] = status


@pytest.fixture()
def batch(sdk_stack: SdkStack, blob_service: BlobServiceClient, azurite_conn: str, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> BatchStack:
    monkeypatch.setenv("AzureWebJobsStorage", azurite_conn)
    inputs, outputs, jobs = (blob_service.create_container(n) for n in
                             ("scoring-input", "scoring-output", "scoring-jobs"))
    queue = InMemoryQueue()
    azure = sdk_stack.backend.deployer.settings  # type: ignore[attr-defined]
    scorer = AzureBatchScorer(sdk_stack.ml, azure, ContainerJobOutputs(jobs, range_bytes=4096), chunk_rows=50,
                              datasets=sdk_stack.backend.datasets,
                              store=sdk_stack.backend.deployer.store)  # type: ignore[attr-defined]
    backend = replace(sdk_stack.backend, batch=scorer, batch_queue=queue)
    return BatchStack(sdk_stack, backend, queue, blob_service, inputs, outputs, jobs, tmp_path, monkeypatch)


def drop_rows(count: int = 300, seed: int = 5) -> bytes:
    """Rows to score: the model's columns, without the target."""
    rows = list(csv.reader(io.StringIO(sample_csv(count, seed).decode())))
    target = rows[0].index("y")
    return "\n".join(",".join(r[:target] + r[target + 1:]) for r in rows).encode() + b"\n"


def until_job(batch: BatchStack) -> str:
    """Azure provisions whatever the flow asked for until a new job is submitted; returns the job's name."""
    known = len(batch.sdk.service.batch_jobs)
    for _ in range(6):
        outcomes = batch.run()
        if len(batch.sdk.service.batch_jobs) > known:
            return str(batch.sdk.service.batch_jobs[-1])
        assert outcomes and outcomes[-1] == "polling", outcomes
        batch.sdk.service.provision_all()
    raise AssertionError("no job was submitted")


def test_a_drop_is_scored_by_a_batch_job_of_the_production_version_in_the_local_form(batch: BatchStack):
    promoted(batch.sdk, 1, '"a"', 0.91)
    service = batch.sdk.service
    before = len(service.sent)
    content = drop_rows()
    batch.drop("bank/march.csv", content)
    assert len(batch.queue.messages) == 1 and service.writes()[-1:] != ["POST batch-scoring/jobs"]
    assert batch.run() == ["polling"]  # the batch endpoint is created, still Creating
    [endpoint] = service.bodies("PUT batchEndpoints/{}")
    check("BatchEndpointTrackedResource", endpoint)
    assert endpoint["properties"]["authMode"] == "AADToken" and endpoint["tags"]["model"] == "bank"
    service.provision_all()
    assert batch.run() == ["polling"]  # its deployment of the production version, Creating
    [deployment] = service.bodies("PUT batchEndpoints/{}/deployments/{}")
    check("BatchDeploymentTrackedResource", deployment)
    properties = deployment["properties"]
    assert properties["model"]["assetId"].endswith("/models/bank/versions/1")
    assert properties["codeConfiguration"]["scoringScript"] == entities.BATCH_SCORING_SCRIPT
    assert properties["outputAction"] == "SummaryOnly" and properties["miniBatchSize"] == 1
    assert properties["environmentId"] == "azureml:AzureML-ai-ml-automl:7"  # where the model was trained
    assert properties["compute"].endswith("/computes/cpu-cluster")
    service.provision_all()
    assert batch.run() == ["prepare -> submit", "submit -> wait", "polling"]
    [job] = service.batch_jobs
    [invoke] = [s for s in service.sent[before:] if s.operation == "POST batch-scoring/jobs"]
    check("BatchJobResource", invoke.body)
    assert invoke.host == f"{BATCH_ENDPOINT}.westeurope.inference.ml.azure.com"
    assert invoke.headers["azureml-model-deployment"] == "version-1"
    assert invoke.body["properties"]["name"] == job
    assert invoke.body["properties"]["inputData"][entities.BATCH_INPUT] == {
        "jobInputType": "UriFile", "uri": "azureml://datastores/scoringinput/paths/bank/march.csv"}
    assert invoke.body["properties"]["outputData"][entities.BATCH_OUTPUT] == {
        "jobOutputType": "UriFile", "uri": f"azureml://datastores/scoringjobs/paths/jobs/{job}/predictions.csv"}
    assert batch.run() == ["polling"]  # GET jobs/{name}: NotStarted
    batch.play_job(job)
    assert batch.run() == ["wait -> collect", "done"]
    scored = batch.outputs.get_blob_client("bank/march.scored.csv")
    assert len(scored.get_block_list("committed")[0]) > 1  # streamed from the job's folder a range at a time
    table = pd.read_csv(io.BytesIO(scored.download_blob().readall()))
    header = content.split(b"\n", 1)[0].decode().split(",")
    assert list(table.columns) == [*header, "prediction", "probability_no", "probability_yes"]
    assert len(table) == 300 and set(table["prediction"]) <= {"no", "yes"}
    assert (table["prediction"] == np.where(table["age"] > 50, "yes", "no")).all()
    summary = json.loads(batch.outputs.download_blob("bank/march.summary.json").readall())
    assert set(BatchSummary.__annotations__) | {"input", "output"} <= set(summary)
    assert summary["rows"] == 300 and summary["chunks"] == 6 and summary["values_not_numeric"] == 0
    assert summary["model"] == {"name": "bank", "version": "1"} and summary["job"] == job
    assert summary["output"] == "scoring-output/bank/march.scored.csv"
    assert sum(summary["predictions"].values()) == 300
    assert not list(batch.outputs.list_blobs(name_starts_with="bank/march.error"))
    shown = status_view.overview(batch.backend)["batch_jobs"]
    assert [(s["input"], s["state"], s["job"], s["rows"]) for s in shown] == [
        ("scoring-input/bank/march.csv", "done", job, 300)]


def test_a_replayed_blob_event_submits_no_second_job(batch: BatchStack):
    promoted(batch.sdk, 1, '"a"', 0.91)
    batch.drop("bank/march.csv", drop_rows())
    batch.deliver("bank/march.csv")  # the same blob at the same ETag, delivered again
    assert len(batch.queue.messages) == 1
    job = until_job(batch)
    submitted = [m for m, _d, _t in batch.queue.messages]
    record = batch_flow.status(batch.backend, job.removeprefix("score-"))
    assert record is not None and record.step == "wait"
    # A copy of the submit step's message, as if the process died after the job was created but before the
    # record moved on: the job is found by its name, nothing is submitted again.
    found = batch.backend.deploy_records.get(f"batch-jobs/{record.key}.json")
    assert found is not None
    batch.backend.deploy_records.replace(f"batch-jobs/{record.key}.json",
                                         {**found[0], "step": "submit", "seq": record.seq - 1, "sent": True},
                                         found[1])
    batch.queue.messages[:] = [(batch_flow.BatchMessage(record.key, record.seq - 1).encode(), 0, 0)]
    assert batch.run()[:1] == ["submit -> wait"]
    posts = [s for s in batch.sdk.service.sent if s.operation == "POST batch-scoring/jobs"]
    assert len(posts) == 1 and batch.sdk.service.batch_jobs == [job] and submitted
    batch.deliver("bank/march.csv")
    assert not batch.queue.messages[1:] and batch.sdk.service.batch_jobs == [job]
    # The same name with new content is a new blob version: a job of its own.
    batch.drop("bank/march.csv", drop_rows(seed=9))
    assert len({batch_flow.BatchMessage.decode(m).key for m, _d, _t in batch.queue.messages}) == 2


def test_a_file_that_lacks_the_models_columns_is_rejected_before_anything_is_created(
        batch: BatchStack, monkeypatch: pytest.MonkeyPatch):
    events: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(telemetry, "event", lambda name, **props: events.append((name, props)))
    promoted(batch.sdk, 1, '"a"', 0.91)
    writes = len(batch.sdk.service.writes())
    batch.drop("bank/short.csv", b"age,job\n30,admin.\n")
    assert batch.sdk.service.writes()[writes:] == [] and not batch.queue.messages
    error = json.loads(batch.outputs.download_blob("bank/short.error.json").readall())
    assert error["error"].startswith("the file lacks the model's column(s): ") and "duration" in error["error"]
    assert [p["reason"] for n, p in events if n == "BatchRejected"] == [error["error"]]


def test_a_drop_for_a_model_with_nothing_in_production_says_so(batch: BatchStack):
    batch.drop("nobody/march.csv", drop_rows())
    error = json.loads(batch.outputs.download_blob("nobody/march.error.json").readall())
    assert error == {"error": "no model is deployed for nobody"} and not batch.queue.messages


def test_a_new_production_version_gets_a_batch_deployment_of_its_own(batch: BatchStack):
    promoted(batch.sdk, 1, '"a"', 0.70)
    batch.drop("bank/march.csv", drop_rows())
    batch.play_job(until_job(batch))
    assert batch.run()[-1] == "done"
    promoted(batch.sdk, 2, '"b"', 0.97)  # v2 wins the gate and serves
    batch.drop("bank/april.csv", drop_rows(seed=8))
    job = until_job(batch)
    service = batch.sdk.service
    assert set(service.batch_deployments) == {(BATCH_ENDPOINT, "version-1"), (BATCH_ENDPOINT, "version-2")}
    assert service.writes().count("PUT batchEndpoints/{}") == 1  # the endpoint is created once
    [_, second] = [s for s in service.sent if s.operation == "POST batch-scoring/jobs"]
    assert second.headers["azureml-model-deployment"] == "version-2" and second.body["properties"]["name"] == job
    batch.play_job(job)
    assert batch.run()[-1] == "done"
    summary = json.loads(batch.outputs.download_blob("bank/april.summary.json").readall())
    assert summary["model"] == {"name": "bank", "version": "2"}


def test_a_failed_job_writes_the_error_file(batch: BatchStack):
    promoted(batch.sdk, 1, '"a"', 0.91)
    batch.drop("bank/march.csv", drop_rows())
    job = until_job(batch)
    batch.play_job(job, status="Failed")
    assert batch.run() == ["failed"]
    error = json.loads(batch.outputs.download_blob("bank/march.error.json").readall())
    assert error["error"] == f"batch job {job} failed: it ended Failed: UserError: the scoring script failed"
    assert not list(batch.outputs.list_blobs(name_starts_with="bank/march.scored"))
    [shown] = status_view.overview(batch.backend)["batch_jobs"]
    assert shown["state"] == "failed" and shown["reason"] == error["error"]


def test_a_step_that_keeps_failing_is_poisoned_and_the_drop_says_so(batch: BatchStack):
    """The job's status cannot be read (the jobs API answers 404 for it): each try raises, the queue retries the
    message, and after the last try its poison handler gives the drop an error file."""
    promoted(batch.sdk, 1, '"a"', 0.91)
    batch.drop("bank/march.csv", drop_rows())
    job = until_job(batch)
    del batch.sdk.service.jobs[job]
    outcomes = drain_batch(batch.queue, batch.backend, BlobBatchOutputs(batch.outputs))
    assert outcomes == ["error: ResourceNotFoundError"] * batch.queue.max_tries and batch.queue.poison
    error = json.loads(batch.outputs.download_blob("bank/march.error.json").readall())
    assert error == {"error": f"gave up at step wait after {batch.queue.max_tries} tries"}
    [shown] = status_view.overview(batch.backend)["batch_jobs"]
    assert shown["state"] == "failed"
