"""An upload arrives: validate it, register a dataset version, submit training.

A bad file is recorded as rejected (with its reason) and is not an error for the
trigger: retrying cannot fix it. Storage or registry failures do raise, so the
host retries the blob.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from shared import csv_stream, drift, faults, guardrails, heap, metrics, naming, pipelines, telemetry
from shared.errors import DatasetRejected
from shared.forecasting import upload as forecast_upload
from shared.ports import Backend, UploadLog
from shared.printable import printable
from shared.run_order import RunState
from shared.schema import TimeSeries
from shared.settings import Settings, upload_limit_source
from shared.tasks import CLASSIFICATION, TaskKind
from shared.upload_states import UploadState, record

log = logging.getLogger(__name__)
UPLOADS_CONTAINER = "datasets"  # where uploads are dropped: the ingest function's blob trigger


@dataclass(frozen=True)
class Upload:
    blob_path: str  # inside the datasets container, e.g. "bank/jan.csv"
    uri: str
    # The file: its bytes, a path to it, or a seekable binary stream. It is read twice (checked, then copied into
    # the dataset version), a chunk at a time: never held whole unless it came as bytes.
    content: bytes | Path | BinaryIO
    metadata: dict[str, str]
    etag: str
    modified_at: str = ""  # the blob's Last-Modified (ISO 8601)

    @property
    def upload_id(self) -> str:
        return f"{self.blob_path}@{self.etag}"

    @property
    def size(self) -> int:
        """Its length in bytes, known before anything is read."""
        if isinstance(self.content, bytes):
            return len(self.content)
        if isinstance(self.content, Path):
            return self.content.stat().st_size
        return self.content.seek(0, os.SEEK_END)

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """The file from its first byte; a stream that was handed over stays open, to be read again."""
        if isinstance(self.content, bytes):
            yield io.BytesIO(self.content)
        elif isinstance(self.content, Path):
            with self.content.open("rb") as source:
                yield source
        else:
            self.content.seek(0)
            yield self.content

    @property
    def data_time(self) -> str:
        """A sortable upload time. Last-Modified has whole seconds only, and ETags are not ordered: uploads of
        one model within the same second are ranked by blob name (``2026-01.csv`` before ``2026-02.csv``)."""
        try:
            stamp = datetime.fromisoformat(self.modified_at).astimezone(UTC).isoformat(timespec="seconds")
        except ValueError:
            stamp = self.modified_at
        return f"{stamp}#{self.blob_path}"


def dataset_key(content_hash: str, target: str, task: TaskKind = CLASSIFICATION,
                time_series: TimeSeries | None = None) -> str:
    """What makes a dataset version: the bytes, and the target, task (and forecasting settings) they are read
    with."""
    read_as = target if task is CLASSIFICATION else f"{target}\n{task}"  # keys of older versions stay the same
    if time_series is not None:
        read_as += "\n" + json.dumps(time_series.to_dict(), sort_keys=True)
    return hashlib.sha256(f"{content_hash}\n{read_as}".encode()).hexdigest()


def _metric_name(name: str) -> str:
    try:
        return metrics.resolve(name).name
    except ValueError:
        return name


@dataclass(frozen=True)
class IngestOutcome:
    state: str  # rejected, duplicate, training; for a replayed upload, whatever state it has reached
    reason: str | None = None
    dataset_version: int | None = None
    run_id: str | None = None


def ingest(upload: Upload, backend: Backend, settings: Settings) -> IngestOutcome:
    try:
        return _ingest(upload, backend, settings)
    finally:
        heap.release()  # what reading the upload took goes back to the system, not kept until the next one


def _ingest(upload: Upload, backend: Backend, settings: Settings) -> IngestOutcome:
    uploads = backend.uploads
    seen = uploads.get(upload.upload_id)
    if seen is not None and seen["state"] != UploadState.RECEIVED:
        # The same blob version again (Event Grid delivers at least once): its outcome stands.
        log.info("Upload %s delivered again: it is already %s", printable(upload.upload_id), seen["state"])
        telemetry.event("UploadReplayed", upload_id=upload.upload_id, state=seen["state"])
        return IngestOutcome(seen["state"], reason=seen.get("reason"), dataset_version=seen.get("dataset_version"),
                             run_id=seen.get("run_id"))
    size = upload.size
    record(uploads, upload.upload_id, blob=upload.blob_path, state=UploadState.RECEIVED,
           details={"bytes": size, "uri": upload.uri})
    telemetry.event("UploadReceived", upload_id=upload.upload_id, bytes=size)
    try:
        # The name first, so that an upload refused for its metadata or its content still shows its model.
        record(uploads, upload.upload_id, model_name=naming.model_name_for(upload.blob_path))
        spec = naming.spec_for(upload.blob_path, upload.metadata, settings.default_target)
        if size > settings.max_upload_bytes:  # by its size alone, before a byte of it is read
            raise DatasetRejected(f"too large: {size:,} bytes, the limit is {settings.max_upload_bytes:,} "
                                  f"({upload_limit_source()})", "too_large")
        with upload.open() as source:
            # A forecast's history is judged per series, against its horizon (shared.forecasting), not by rows.
            validated = csv_stream.read(source, spec.target, max_bytes=settings.max_upload_bytes,
                                        min_rows=1 if spec.time_series else settings.min_rows, task=spec.task)
        task = validated.schema.task
        try:
            metric = metrics.for_task(spec.metric, task, settings.default_metric).name
        except ValueError as error:
            raise DatasetRejected(str(error), "bad_metric") from None
        refused = backend.pipeline.metric_refused(metric, task)  # before anything is registered or submitted
        if refused:
            raise DatasetRejected(refused, "bad_metric")
    except DatasetRejected as rejected:
        return _reject(uploads, upload.upload_id, rejected)
    columns = validated.sample.columns
    unknown = [c for c in spec.excluded_columns if c not in columns or c == spec.target]
    if unknown:
        return _reject(uploads, upload.upload_id, DatasetRejected(
            f"metadata 'exclude' names column(s) the file does not have as features: {', '.join(unknown)}",
            "bad_exclude"))
    schema, series_findings = validated.schema, list[dict[str, Any]]()
    if spec.time_series is not None:
        try:
            with telemetry.span("forecasting checks", attributes={"rows": validated.rows}), upload.open() as source:
                time_series, series_findings = forecast_upload.check(
                    source, schema, spec.time_series, spec.excluded_columns, settings.max_upload_bytes)
        except DatasetRejected as rejected:
            return _reject(uploads, upload.upload_id, rejected)
        schema = replace(schema, time_series=time_series)
    # A forecast's time and series ids are no features to judge (a unique time is its point, not an ID column).
    roles = (schema.time_series.time_column, *schema.time_series.series) if schema.time_series else ()
    with telemetry.span("guardrails", attributes={"rows": validated.rows}):
        findings = [*validated.findings, *series_findings,
                    *guardrails.evaluate(validated.sample.drop(columns=list(roles)), spec.target,
                                         spec.excluded_columns, task, validated.counts)]
    nothing_left = None if roles else \
        guardrails.nothing_to_learn_from(validated.sample, spec.target, spec.excluded_columns, findings)
    if nothing_left:  # AutoML would fail on an empty table: say so now, with what left each column out
        return _reject(uploads, upload.upload_id, DatasetRejected(nothing_left, "no_features"))
    # A dataset version is the content read with one target as one task: read otherwise, it is another one.
    version_key = dataset_key(validated.content_hash, spec.target, task, schema.time_series)
    with upload.open() as source:
        dataset, created = backend.datasets.register(spec.model_name, source, version_key, schema,
                                                     validated.rows, upload.uri, findings,
                                                     drift.dataset_baseline(validated.sample, schema)
                                                     if backend.datasets.keeps_drift_baseline else None)
    faults.crash_point("ingest.registered")
    details = {"rows": validated.rows, "columns": len(schema.columns), "target": spec.target,
               "task": str(task), "task_reason": validated.task.reason, "metric": metric,
               **({"time_series": schema.time_series.to_dict()} if schema.time_series else {}),
               "dropped_rows": validated.dropped_rows, "content_hash": validated.content_hash,
               "guardrails": list(dataset.guardrails)}
    for finding in dataset.guardrails if created else ():
        if finding["severity"] != "info":
            telemetry.event("DataGuardrail", upload_id=upload.upload_id, dataset=dataset.name,
                            version=dataset.version, check=finding["check"], severity=finding["severity"],
                            message=finding["message"])
    # Nothing new to train only when another upload already trained this version the same way (metric,
    # excluded columns). A version registered before a crash may never have been trained: then train it now.
    trained = [] if created else [
        r for r in backend.pipeline.list_runs(spec.model_name, limit=1000)
        if r.dataset_version == dataset.version and r.upload_id != upload.upload_id
        and _metric_name(r.metric) == metric and set(r.excluded_columns) == set(spec.excluded_columns)]
    if trained:
        reason = (f"same content as dataset {dataset.name} v{dataset.version}, with the same target, metric "
                  "and excluded columns: nothing new to train")
        # The run that trains this data (one still going first): what the uploader waits for, not this record.
        original = next((r for r in trained if not r.finished), trained[0])
        details["duplicate_of"] = {"run_id": original.run_id, "upload_id": original.upload_id}
        record(uploads, upload.upload_id, state=UploadState.DUPLICATE, reason=reason,
               dataset_version=dataset.version, details=details)
        telemetry.event("DatasetDuplicate", upload_id=upload.upload_id, dataset=dataset.name,
                        version=dataset.version)
        return IngestOutcome("duplicate", reason=reason, dataset_version=dataset.version)
    telemetry.event("DatasetRegistered", upload_id=upload.upload_id, dataset=dataset.name, version=dataset.version,
                    rows=dataset.rows, columns=dataset.columns)
    params = pipelines.RunParameters(spec.model_name, dataset.version, metric, settings.time_budget_s,
                                     spec.excluded_columns)
    run, _ = pipelines.start(pipelines.TRAINING.name, params, backend, settings, upload_id=upload.upload_id,
                             idempotency_key=f"upload:{upload.upload_id}", data_time=upload.data_time)
    if run.state == RunState.SUPERSEDED:  # the backend would not start it: newer data already trains
        record(uploads, upload.upload_id, state=UploadState.SUPERSEDED, reason=run.error,
               dataset_version=dataset.version, run_id=run.run_id, details=details)
        telemetry.event("TrainingSuperseded", upload_id=upload.upload_id, run_id=run.run_id, reason=run.error)
        return IngestOutcome("superseded", reason=run.error, dataset_version=dataset.version, run_id=run.run_id)
    record(uploads, upload.upload_id, state=UploadState.TRAINING, dataset_version=dataset.version,
           run_id=run.run_id, details=details)
    telemetry.event("TrainingSubmitted", upload_id=upload.upload_id, run_id=run.run_id, model=spec.model_name,
                    task=str(task), metric=metric, budget_s=settings.time_budget_s)
    return IngestOutcome("training", dataset_version=dataset.version, run_id=run.run_id)


def reject_unreadable(blob_path: str, etag: str, reason: str, backend: Backend) -> IngestOutcome:
    """An upload the host cannot read for its name alone (storage cannot list it, or its URL names another blob):
    rejected with the reason as a bad file is, so that the status and telemetry show it. An outcome stands."""
    upload_id = f"{blob_path}@{etag}"
    seen = backend.uploads.get(upload_id)
    if seen is not None and seen["state"] != UploadState.RECEIVED:
        return IngestOutcome(seen["state"], reason=seen.get("reason"))
    try:
        model_name: str | None = naming.model_name_for(blob_path)
    except DatasetRejected:
        model_name = None
    record(backend.uploads, upload_id, blob=blob_path, state=UploadState.RECEIVED, model_name=model_name)
    telemetry.event("UploadReceived", upload_id=upload_id)
    return _reject(backend.uploads, upload_id, DatasetRejected(reason, "unreadable_name"))


def _reject(uploads: UploadLog, upload_id: str, rejected: DatasetRejected) -> IngestOutcome:
    """A bad upload is an outcome, not an error: recorded with its reason, never retried."""
    record(uploads, upload_id, state=UploadState.REJECTED, reason=rejected.reason, details={"code": rejected.code})
    telemetry.event("DatasetRejected", upload_id=upload_id, reason=rejected.reason, code=rejected.code)
    log.warning("Rejected %s: %s", printable(upload_id), printable(rejected.reason))
    return IngestOutcome("rejected", reason=rejected.reason)
