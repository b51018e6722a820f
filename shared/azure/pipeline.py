"""Training runs as Azure ML pipeline jobs, or invocations of the batch endpoint carrying the pipeline.

Our run id is the job's name. Job names are unique in a workspace, so a name
derived from the idempotency key makes a re-post find the first run. A small
run record (state container) says which jobs are ours and what they train.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.ai.ml import Input
from azure.ai.ml.constants import AssetTypes
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from shared import metrics, run_order
from shared.azure import entities
from shared.azure.blobstore import BlobStore
from shared.azure.config import AzureSettings
from shared.azure.run_metrics import RunMetrics, RunMetricsUnavailable
from shared.azure.state import JsonBlobs
from shared.ports import RunInfo, TrainingPipeline, TrainingRequest
from shared.run_events import RunEvent
from shared.tasks import TaskKind

log = logging.getLogger(__name__)
RUNS_OF = "runs-of/"  # runs-of/{model}/{run id}.json: each run record again, filed under its model
FILED = "runs-of-complete.json"  # written once every run recorded before RUNS_OF existed was filed there
EARLIER_RECORDS = 100_000  # the most run records filed by that one-time pass
MODEL_RUNS_READ = 1000  # the most runs of one model the newest-data check reads (the most recent ones)


def _under_model(record: dict[str, Any]) -> str:
    return f"{RUNS_OF}{record['model']}/{record['run_id']}.json"


# Azure ML job statuses -> the states the API shows.
STATES = {
    "notstarted": "queued", "queued": "queued", "preparing": "queued", "provisioning": "queued",
    "starting": "running", "running": "running", "finalizing": "running",
    "completed": "completed", "failed": "failed", "notresponding": "failed",
    "canceled": "cancelled", "cancelrequested": "cancelled",
}


def state_of(status: str | None) -> str:
    return STATES.get((status or "").lower().replace(" ", ""), "queued")


@dataclass(frozen=True)
class PlannedRun:
    """What ``submit`` sends: the job (or batch invocation) and the run's table descriptor."""

    name: str
    job: Any
    table_path: str
    table_text: str
    training_input: Input


class AzureTrainingPipeline(TrainingPipeline):
    def __init__(self, ml: Any, store: BlobStore, records: JsonBlobs, settings: AzureSettings,
                 metrics: RunMetrics) -> None:
        self.ml = ml
        self.store = store
        self.records = records
        self.settings = settings
        self.metrics = metrics
        self._filed = False  # the runs recorded by id alone are filed under their models (see FILED)

    def plan(self, request: TrainingRequest, name: str) -> PlannedRun:
        folder = entities.run_table_folder(name)
        table = entities.datastore_uri(self.settings, folder + "/")
        return PlannedRun(name, entities.training_job(self.settings, request, name, table),
                          f"{folder}/{entities.TABLE_FILE}",
                          entities.mltable_text(request.dataset.training_uri or request.dataset.uri,
                                                request.excluded_columns),
                          Input(type=AssetTypes.MLTABLE, path=table))

    def metric_refused(self, metric: str, task: TaskKind) -> str | None:
        return entities.metric_refused(metric, task)

    def submit(self, request: TrainingRequest, idempotency_key: str | None = None) -> tuple[RunInfo, bool]:
        name = entities.job_name(idempotency_key, f"train-{uuid.uuid4().hex[:24]}")
        if idempotency_key:
            existing = self.get_run(name)
            if existing is not None:  # a replay: nothing to build
                return existing, False
        planned = self.plan(request, name)
        record = {"run_id": planned.name, **planned.job.tags, "created_at": datetime.now(UTC).isoformat(),
                  "data_time": request.data_time}
        stale = self._stale(request, record)
        if stale:  # no job: a newer upload of the model is already training or trained
            self._create_record({**record, "state": "superseded", "error": stale})
            return self._to_run({**record, "state": "superseded", "error": stale}, None), True
        self.store.put_once(planned.table_path, planned.table_text.encode())
        self._create_record(record)  # before the job: its events must find it
        job = planned.job
        if self.settings.pipeline_endpoint:
            submitted = self.ml.batch_endpoints.invoke(
                endpoint_name=self.settings.pipeline_endpoint, inputs={"training_data": planned.training_input},
                job_name=planned.name, experiment_name=job.experiment_name)
        else:
            submitted = self.ml.jobs.create_or_update(job, experiment_name=job.experiment_name)
        return self._to_run(record, submitted), True

    def _create_record(self, record: dict[str, Any]) -> None:
        """A run's record, written once and never changed (its state comes from the job): under its model, so that
        a model's runs are read without every other model's, then under its id, where run events look it up."""
        self.records.create(_under_model(record), record)
        self.records.create(f"runs/{record['run_id']}.json", record)

    def _records_of(self, model_name: str, limit: int) -> list[dict[str, Any]]:
        """The model's run records, most recent first: its own folder, one read per run of that model."""
        self._file_earlier_records()
        return self.records.list(f"{RUNS_OF}{model_name}/", limit)

    def _file_earlier_records(self) -> None:
        """Once per storage account: file the runs recorded by id alone (before records were kept per model)
        under their models, oldest first (listings give the most recently written first)."""
        if self._filed or self.records.get(FILED) is not None:
            self._filed = True
            return
        for record in reversed(self.records.list("runs/", EARLIER_RECORDS)):
            if record.get("model") and record.get("run_id"):
                self.records.create(_under_model(record), record)
        self.records.create(FILED, {"filed_at": datetime.now(UTC).isoformat()})
        self._filed = True

    def _stale(self, request: TrainingRequest, record: dict[str, Any]) -> str | None:
        """Why the run must not start (``shared.run_order``: the newest data wins), or None.

        Every submitted job of the model counts as started: telling a failed one apart would cost a call per job.
        """
        mine = run_order.Candidate(record["run_id"], request.upload_id, request.data_time or record["created_at"], 0)
        started = [run_order.Candidate(r["run_id"], r.get("upload_id") or None,
                                       r.get("data_time") or r.get("created_at", ""), 0)
                   for r in self._records_of(request.model_name, MODEL_RUNS_READ) if r.get("state") != "superseded"]
        choice = run_order.choose(request.model_name, [mine], started)
        return None if choice.run is not None else choice.superseded[0][1]

    def cancel(self, run_id: str) -> RunInfo | None:
        run = self.get_run(run_id)
        if run is None or run.finished:
            return run
        self.ml.jobs.begin_cancel(run_id)
        run.state = "cancelled"
        return run

    def get_run(self, run_id: str) -> RunInfo | None:
        found = self.records.get(f"runs/{run_id}.json")
        if found is None:
            return None
        try:
            job = self.ml.jobs.get(run_id)
        except ResourceNotFoundError:
            job = None
        run = self._to_run(found[0], job)
        node = self.automl_node(run_id) if job is not None else None
        if node is not None:
            self._add_result(run, node)
        return run

    def list_runs(self, model_name: str | None = None, limit: int = 50) -> list[RunInfo]:
        records = self._records_of(model_name, limit) if model_name else self.records.list("runs/", limit)
        return [self._to_run(r, None) for r in records]

    def run_for_event(self, event: RunEvent) -> RunInfo | None:
        """The pipeline job's own event (its runId is the job name we chose), or its AutoML node's event
        when the service copies the node's tags onto the run; trials and other jobs give None."""
        if self.records.get(f"runs/{event.run_id}.json") is not None:
            return self.get_run(event.run_id)
        pipeline_job = event.tags.get("pipeline_job") or event.properties.get("azureml.pipelinerunid")
        if not pipeline_job or pipeline_job == event.run_id:
            return None
        found = self.records.get(f"runs/{pipeline_job}.json")
        if found is None:
            return None
        node = self.automl_node(pipeline_job)
        if node is None or node.name != event.run_id:
            return None  # a trial or the setup run of the AutoML job, not the node itself
        run = self._to_run(found[0], None)
        self._add_result(run, node)
        return run

    def automl_node(self, run_id: str) -> Any | None:
        """The AutoML job inside our pipeline job (the parent whose children are the trials)."""
        try:
            children = list(self.ml.jobs.list(parent_job_name=run_id))
        except ResourceNotFoundError:
            return None
        return entities.find_automl_node(children)

    def _add_score(self, run: RunInfo, best: str) -> None:
        """The primary metric of the best child, as AutoML logged it to the workspace's tracking server; when it
        cannot be read, the run says why (the gate then decides on nothing)."""
        primary = run.result["primary_metric"]
        try:
            logged = self.metrics.of(best)
        except RunMetricsUnavailable as error:
            run.result["score_missing"] = str(error)
            return
        value = logged.get(primary["name"])
        if value is None:
            run.result["score_missing"] = (f"run {best} logged no {primary['name']!r} "
                                           f"(it logged {', '.join(sorted(logged)[:12]) or 'nothing'})")
        else:
            primary["value"] = value

    @staticmethod
    def _to_run(record: dict[str, Any], job: Any | None) -> RunInfo:
        run = RunInfo(
            run_id=record["run_id"], model_name=record.get("model", ""), dataset_name=record.get("dataset", ""),
            dataset_version=int(record.get("dataset_version", "0") or 0), metric=record.get("metric", ""),
            state=state_of(job.status) if job is not None else record.get("state", "queued"),
            upload_id=record.get("upload_id") or None, pipeline=record.get("pipeline", ""),
            created_at=record.get("created_at", ""), updated_at=record.get("created_at", ""),
            error=record.get("error"),
            excluded_columns=tuple(c for c in str(record.get("excluded_columns", "")).split(",") if c))
        run.progress = {"step": "automl", "budget_s": int(record.get("time_budget_s", "0") or 0)}
        if job is not None:
            run.progress.update(azure_status=job.status, studio_url=getattr(job, "studio_url", None))
        return run

    def _add_result(self, run: RunInfo, node: Any) -> None:
        """The best child, as AutoML names it on its parent (tag ``automl_best_child_run_id``)."""
        node_state = state_of(node.status)
        run.progress.update(automl_run_id=node.name, automl_status=node.status)
        if node_state in ("failed", "cancelled"):
            run.state = node_state
            run.error = str((node.properties or {}).get("azureml.failure_reason") or f"the AutoML job {node_state}")
            return
        best = (node.tags or {}).get("automl_best_child_run_id")
        if not best:
            return
        # The tag names the best model, as every AutoML sample reads it; the lookups below only add detail, and
        # their failure (a 404, an answer the SDK cannot parse) must not keep the model from being registered.
        run.result = {"automl_run_id": node.name, "best_child_run_id": best, "best_learner": None,
                      "primary_metric": {"name": metrics.resolve(run.metric).name if run.metric else "",
                                         "value": None},
                      "inference_environment": entities.inference_environment(node.properties)}
        try:
            child = self.ml.jobs.get(best)
            run.result["best_learner"] = (child.properties or {}).get("run_algorithm")
        except (HttpResponseError, ValueError, TypeError, AttributeError) as error:
            log.warning("Best child %s of %s: no details (%s)", best, node.name, type(error).__name__)
        if node_state == "completed":
            self._add_score(run, best)
            run.state = "completed"  # the pipeline job may still be finalising; the model is ready
