"""Batch scoring by drop in Azure: a batch endpoint per model, a deployment per production version, a job per drop.

Each step sends at most one request and never waits on a long-running
operation: ``shared.batch_flow`` polls by re-enqueueing its message. The job
reads the drop through the datastore over ``scoring-input`` and its script
(``endpoint_code/batch_score.py``) writes ``scored.csv`` and ``summary.json``
into the job's folder of the output datastore, on the app's own storage,
where the app reads them a range at a time.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from shared.azure import entities, forecast_context
from shared.azure.blobstore import BlobStore
from shared.azure.config import AzureSettings
from shared.azure.deployment import _provisioned
from shared.blob_stream import RANGE_BYTES, blob_stream
from shared.errors import DatasetRejected, DeploymentFailed
from shared.ports import BatchScorer, DatasetRegistry, ModelVersion

SCORED_FILE = "scored.csv"  # what the batch script writes (endpoint_code/batch_score.py)
SUMMARY_FILE = "summary.json"
RUNNING = frozenset({"NotStarted", "Starting", "Provisioning", "Preparing", "Queued", "Running", "Finalizing",
                     "CancelRequested", "Paused", "Unknown"})  # JobStatus values of a job not yet ended


class JobOutputs(abc.ABC):
    """The container batch jobs write to."""

    @abc.abstractmethod
    def read(self, path: str) -> bytes | None:
        """A small file (the summary), or None when the job wrote none."""

    @abc.abstractmethod
    def stream(self, path: str, write: Callable[[bytes], None]) -> bool:
        """Hand ``path`` to ``write`` a range at a time; False when it is not there."""


class ContainerJobOutputs(JobOutputs):
    def __init__(self, container: ContainerClient, range_bytes: int = RANGE_BYTES) -> None:
        self.container = container
        self.range_bytes = range_bytes

    def read(self, path: str) -> bytes | None:
        try:
            return bytes(self.container.download_blob(path).readall())
        except ResourceNotFoundError:
            return None

    def stream(self, path: str, write: Callable[[bytes], None]) -> bool:
        blob = self.container.get_blob_client(path)
        try:
            properties = blob.get_blob_properties()
        except ResourceNotFoundError:
            return False
        reader = blob_stream(blob, int(properties.size), str(properties.etag), self.range_bytes)
        while piece := reader.read(self.range_bytes):
            write(piece)
        return True


class InMemoryJobOutputs(JobOutputs):
    """Job outputs in a dict (``cli plan`` and tests play the job writing them)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def read(self, path: str) -> bytes | None:
        return self.blobs.get(path)

    def stream(self, path: str, write: Callable[[bytes], None]) -> bool:
        if path not in self.blobs:
            return False
        write(self.blobs[path])
        return True


class AzureBatchScorer(BatchScorer):
    """``datasets`` and ``store``: where a forecaster's context comes from (its version's held-out rows, shipped in
    its deployment's code folder, ``shared.azure.forecast_context``)."""

    def __init__(self, ml: Any, settings: AzureSettings, outputs: JobOutputs, chunk_rows: int,
                 datasets: DatasetRegistry, store: BlobStore) -> None:
        self.ml = ml
        self.settings = settings
        self.outputs = outputs
        self.chunk_rows = chunk_rows
        self.datasets = datasets
        self.store = store
        self.poll_interval_s = float(settings.batch_poll_s)
        self.max_polls = max(1, settings.batch_timeout_s // max(1, settings.batch_poll_s))

    def prepare(self, model: ModelVersion) -> str | None:
        name = entities.batch_endpoint_name(self.settings, model.name)
        endpoint = _found(lambda: self.ml.batch_endpoints.get(name))
        if endpoint is None:
            self.ml.batch_endpoints.begin_create_or_update(entities.batch_endpoint(self.settings, model.name))
            return None
        if not _provisioned(endpoint, f"batch endpoint {name}"):
            return None
        deployment_name = entities.batch_deployment_name(model.version)
        deployment = _found(lambda: self.ml.batch_deployments.get(name=deployment_name, endpoint_name=name))
        if deployment is None:  # the production version changed since the last drop: its own deployment
            environment = model.tags.get("inference_environment") or entities.DEFAULT_ENVIRONMENT
            with forecast_context.code_folder(model, self.datasets, self.store) as code:  # uploaded before it returns
                self.ml.batch_deployments.begin_create_or_update(entities.batch_deployment(
                    self.settings, model.name, model.version, self.chunk_rows, environment, code))
            return None
        return deployment_name if _provisioned(deployment, f"batch deployment {name}/{deployment_name}") else None

    def submit(self, job: str, model: ModelVersion, deployment: str, blob_path: str) -> None:
        if _found(lambda: self.ml.jobs.get(job)) is not None:
            return  # submitted by an earlier try of this step: one job per drop
        inputs, outputs = entities.batch_job_io(self.settings, job, blob_path)
        try:
            self.ml.batch_endpoints.invoke(endpoint_name=entities.batch_endpoint_name(self.settings, model.name),
                                           deployment_name=deployment, inputs=inputs, outputs=outputs, job_name=job)
        except HttpResponseError as error:
            if error.status_code == 409:  # the name is taken: the job exists
                return
            raise

    def state(self, job: str) -> tuple[str, str]:
        found = self.ml.jobs.get(job)
        status = str(getattr(found.status, "value", found.status) or "Unknown")
        if status == "Completed":
            return "completed", ""
        if status in RUNNING:
            return "running", ""
        error = (found.properties or {}).get("azureml.failure_reason") or ""
        return "failed", f"it ended {status}" + (f": {error}" if error else "")

    def collect(self, job: str, write: Callable[[bytes], None]) -> dict[str, Any]:
        folder = entities.batch_job_output(self.settings, job)
        raw = self.outputs.read(f"{folder}/{SUMMARY_FILE}")
        if raw is None:
            raise DeploymentFailed(f"job {job} completed without {SUMMARY_FILE} in {folder}/")
        summary = json.loads(raw)
        if summary.get("error"):
            raise DatasetRejected(str(summary["error"]), "missing_columns")
        if not self.outputs.stream(f"{folder}/{SCORED_FILE}", write):
            raise DeploymentFailed(f"job {job} completed without {SCORED_FILE} in {folder}/")
        return dict(summary)


def _found(get: Callable[[], Any]) -> Any | None:
    with suppress(ResourceNotFoundError):
        return get()
    return None
