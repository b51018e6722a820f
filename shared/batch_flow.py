"""Batch scoring of a dropped CSV as a platform job (an Azure ML batch endpoint), driven by storage queue messages.

The blob function only checks and records: the drop's header against the
production model's columns (a file that lacks them is rejected at once, as
locally), then one record per blob version (its path and ETag) in the state
container, created once, so a replayed blob event never submits a second job.
Each queue message says "advance the batch job of drop K"; the record says
where it stands, so a message delivered twice, late or after a crash resumes
at the recorded step. A step that must wait (a deployment provisioning, the
job running) re-enqueues a message with a visibility delay instead of
blocking. The job's output reaches ``scoring-output`` in the local backend's
form: ``<file>.scored.csv`` streamed a block at a time, and
``<file>.summary.json`` (or ``<file>.error.json``).

Where the backend has no ``BatchScorer`` (locally), the function scores the
drop itself, in chunks (``shared.batch.score_drop``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any, BinaryIO

from shared import queued_steps, telemetry
from shared.batch import OUTPUT_CONTAINER, BatchOutputs, report_failure, score_drop
from shared.errors import DatasetRejected, DeploymentFailed
from shared.model_contract import ModelSignature
from shared.ports import Backend, ModelVersion
from shared.queued_steps import StepMessage, now

log = logging.getLogger(__name__)

BATCH_QUEUE = "batch-jobs"  # the queue trigger's queue; the host moves failures to <queue>-poison
HEAD_BYTES = 1 << 20  # what is read of a drop before its job is submitted: enough for any header


class Step(StrEnum):
    PREPARE = "prepare"  # the batch endpoint and a deployment of the production version exist and are ready
    SUBMIT = "submit"  # the job is submitted over the drop
    WAIT = "wait"  # until the job ends
    COLLECT = "collect"  # its output is copied to scoring-output, with the summary
    DONE = "done"
    FAILED = "failed"  # the platform could not score it: <file>.error.json says why
    REJECTED = "rejected"  # the file does not fit the model: <file>.error.json says why


FINAL = frozenset({Step.DONE, Step.FAILED, Step.REJECTED})


@dataclass(frozen=True)
class Drop:
    blob_path: str  # inside scoring-input: <model>/<file>.csv, or <file>.csv for the default model
    etag: str  # the blob version: with the path, what makes one drop
    open: Callable[[], BinaryIO]  # the blob from its first byte, read a range at a time


@dataclass
class BatchRecord:
    key: str
    job: str  # the platform job's name, chosen here: a resubmission finds the first job
    blob: str
    etag: str
    model: ModelVersion
    step: Step = Step.PREPARE
    seq: int = 0  # the sequence number of the message carrying the current step; older ones are stale
    sent: bool = True  # whether that message was queued (False only between the two writes of a hand-over)
    deployment: str = ""
    polls: int = 0
    reason: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    traceparent: str = ""
    created_at: str = ""
    updated_at: str = ""

    @property
    def base(self) -> str:
        return str(PurePosixPath(self.blob).with_suffix(""))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "step": str(self.step)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchRecord:
        fields = dict(data)
        fields["model"] = ModelVersion(**fields["model"])
        fields["step"] = Step(fields["step"])
        return cls(**fields)

    def shown(self) -> dict[str, Any]:
        """What the status API shows of it."""
        return {"input": f"scoring-input/{self.blob}", "etag": self.etag, "job": self.job, "state": str(self.step),
                "model": {"name": self.model.name, "version": self.model.version}, "reason": self.reason or None,
                "output": f"{OUTPUT_CONTAINER}/{self.base}.scored.csv" if self.step == Step.DONE else None,
                "rows": self.summary.get("rows"), "created_at": self.created_at, "updated_at": self.updated_at}


class BatchMessage(StepMessage):
    """"Advance the batch job of drop ``key``"."""

    KEY_FIELD = "batch"


def drop_key(blob_path: str, etag: str) -> str:
    return hashlib.sha256(f"{blob_path}\n{etag.strip(chr(34))}".encode()).hexdigest()[:24]


def _record_path(key: str) -> str:
    return f"batch-jobs/{key}.json"


def receive(backend: Backend, drop: Drop, chunk_rows: int, outputs: BatchOutputs) -> dict[str, object]:
    """A CSV dropped into ``scoring-input``: scored here (local), or checked and queued as a platform job."""
    if backend.batch is None or backend.batch_queue is None:
        with drop.open() as stream:
            content = stream.read()
        return score_drop(backend.server, drop.blob_path, content, chunk_rows, outputs)
    return accept(backend, drop, outputs)


def signature_of(backend: Backend, model: ModelVersion) -> ModelSignature:
    """The columns ``model`` scores: its dataset version's schema without the columns left out of training."""
    dataset = backend.datasets.get(model.dataset_name, model.dataset_version or None)
    if dataset is None:  # transient: the trigger tries again
        raise RuntimeError(f"the schema of {model.name} v{model.version} is not available")
    excluded = frozenset(filter(None, model.tags.get("excluded_columns", "").split(",")))
    return ModelSignature.from_schema(dataset.schema, ignored=excluded)


def missing_columns(head: bytes, signature: ModelSignature) -> list[str]:
    """The model's columns the file's header lacks, read as the local backend reads a drop."""
    first = head.split(b"\n", 1)[0]
    delimiter = ";" if first.count(b";") > first.count(b",") else ","
    text = head.decode("utf-8-sig", errors="replace")
    header = set(next(csv.reader(io.StringIO(text), delimiter=delimiter), []))
    return [name for name in signature.names if name not in header]


def accept(backend: Backend, drop: Drop, outputs: BatchOutputs) -> dict[str, object]:
    """Check the drop against the production model, record it once and queue its first step."""
    assert backend.batch_queue is not None
    path = PurePosixPath(drop.blob_path)
    base = str(path.with_suffix(""))
    name = path.parts[0] if len(path.parts) > 1 else backend.server.default_model() or ""
    model = backend.deployer.production(name) if name else None
    if model is None:
        return report_failure(outputs, base, f"no model is deployed for {name or 'any model'}")
    with drop.open() as stream:
        head = stream.read(HEAD_BYTES)
    missing = missing_columns(head, signature_of(backend, model))
    if missing:
        reason = f"the file lacks the model's column(s): {', '.join(missing)}"
        telemetry.event("BatchRejected", blob=str(path), reason=reason)
        return report_failure(outputs, base, reason)
    key = drop_key(drop.blob_path, drop.etag)
    record = BatchRecord(key, f"score-{key}", drop.blob_path, drop.etag.strip('"'), model,
                         traceparent=telemetry.current_traceparent(), created_at=now(), updated_at=now())
    if not backend.deploy_records.create(_record_path(key), record.to_json()):
        return {"duplicate": record.job}  # this blob version has its job already: a replayed event
    backend.batch_queue.send(BatchMessage(key, 0, record.traceparent).encode(), 0)
    telemetry.event("BatchQueued", blob=str(path), model=model.name, version=model.version, job=record.job)
    return {"queued": record.job, "model": {"name": model.name, "version": model.version}}


def status(backend: Backend, key: str) -> BatchRecord | None:
    found = backend.deploy_records.get(_record_path(key))
    return BatchRecord.from_json(found[0]) if found else None


def recent(backend: Backend, limit: int = 20) -> list[dict[str, Any]]:
    """The latest drops scored as platform jobs, newest first, as the status API shows them."""
    if backend.batch is None:
        return []
    return [BatchRecord.from_json(r).shown() for r in backend.deploy_records.list("batch-jobs/", limit)]


def advance(backend: Backend, message: BatchMessage, outputs: BatchOutputs) -> str:
    """Run the current step of the drop's job, then hand over to the next message (see ``deployment_flow``)."""
    assert backend.batch_queue is not None
    path = _record_path(message.key)
    found = backend.deploy_records.get(path)
    if found is None:
        log.warning("No batch record %s: dropping the message", message.key)
        return "unknown"
    record, etag = BatchRecord.from_json(found[0]), found[1]
    if record.step in FINAL:
        return "finished"
    behind = queued_steps.catch_up(backend.deploy_records, backend.batch_queue, path, record, etag, message)
    if behind is not None:
        return behind
    with telemetry.span("batch job", traceparent=record.traceparent,
                        attributes={"model": record.model.name, "job": record.job}):
        return _advance(backend, path, record, etag, outputs)


def _advance(backend: Backend, path: str, record: BatchRecord, etag: str, outputs: BatchOutputs) -> str:
    scorer = backend.batch
    assert scorer is not None
    step = record.step
    with telemetry.span(f"batch {step}", attributes={"model": record.model.name, "job": record.job}):
        next_step, wait = _run_step(backend, record, outputs)
    if wait:
        record.polls += 1
        if record.polls <= scorer.max_polls:
            return "polling" if _send_next(backend, path, record, etag, scorer.poll_interval_s) else "conflict"
        next_step, record.reason = Step.FAILED, f"{step} did not finish after {record.polls - 1} polls"
    if next_step == Step.FAILED:
        _fail(record, outputs)
    record.polls = 0
    record.history.append(f"{now()} {step} -> {next_step}")
    record.step = next_step
    if next_step in FINAL:
        return str(next_step) if _save(backend, path, record, etag) is not None else "conflict"
    if not _send_next(backend, path, record, etag, 0):
        return "conflict"
    return f"{step} -> {next_step}"


def _run_step(backend: Backend, record: BatchRecord, outputs: BatchOutputs) -> tuple[Step, bool]:
    scorer = backend.batch
    assert scorer is not None
    try:
        match record.step:
            case Step.PREPARE:
                deployment = scorer.prepare(record.model)
                if deployment is None:
                    return Step.PREPARE, True
                record.deployment = deployment
                return Step.SUBMIT, False
            case Step.SUBMIT:
                scorer.submit(record.job, record.model, record.deployment, record.blob)
                return Step.WAIT, False
            case Step.WAIT:
                state, why = scorer.state(record.job)
                if state == "failed":
                    record.reason = f"batch job {record.job} failed: {why}"
                    return Step.FAILED, False
                return (Step.COLLECT, False) if state == "completed" else (Step.WAIT, True)
            case Step.COLLECT:
                return _collect(scorer.collect, record, outputs), False
    except DeploymentFailed as failure:
        record.reason = f"batch deployment failed: {failure}"
        return Step.FAILED, False
    raise ValueError(f"no step {record.step}")


def _collect(collect: Callable[[str, Callable[[bytes], None]], dict[str, Any]], record: BatchRecord,
             outputs: BatchOutputs) -> Step:
    """The job's scored CSV into ``scoring-output`` (visible once whole), then the summary beside it."""
    write, commit = outputs.csv_writer(f"{record.base}.scored.csv")
    try:
        summary = collect(record.job, write)
    except DatasetRejected as rejected:
        record.reason = rejected.reason
        telemetry.event("BatchRejected", blob=record.blob, reason=rejected.reason)
        report_failure(outputs, record.base, rejected.reason)
        return Step.REJECTED
    commit()
    result: dict[str, object] = {
        **summary, "model": {"name": record.model.name, "version": record.model.version},
        "input": record.blob, "output": f"{OUTPUT_CONTAINER}/{record.base}.scored.csv", "job": record.job}
    outputs.write_json(f"{record.base}.summary.json", result)
    record.summary = {k: summary.get(k) for k in ("rows", "chunks", "values_not_numeric")}
    telemetry.event("BatchScored", blob=record.blob, rows=summary.get("rows"), model=record.model.name,
                    rows_per_second=summary.get("rows_per_second"), job=record.job)
    return Step.DONE


def _fail(record: BatchRecord, outputs: BatchOutputs) -> None:
    telemetry.event("BatchFailed", blob=record.blob, model=record.model.name, job=record.job, reason=record.reason)
    log.error("Batch job %s for %s failed: %s", record.job, record.blob, record.reason)
    report_failure(outputs, record.base, record.reason)


def fail_poisoned(backend: Backend, message: BatchMessage, tries: int, outputs: BatchOutputs) -> None:
    """The queue gave up on a batch job message: the drop gets its ``.error.json``."""
    path = _record_path(message.key)
    found = backend.deploy_records.get(path)
    if found is None:
        return
    record, etag = BatchRecord.from_json(found[0]), found[1]
    if record.step in FINAL:
        return
    record.reason = f"gave up at step {record.step} after {tries} tries"
    _fail(record, outputs)
    record.history.append(f"{now()} {record.step} -> {Step.FAILED} (poison)")
    record.step = Step.FAILED
    _save(backend, path, record, etag)


def _send_next(backend: Backend, path: str, record: BatchRecord, etag: str, delay_s: float) -> bool:
    assert backend.batch_queue is not None
    return queued_steps.send_next(backend.deploy_records, backend.batch_queue, path, record, etag, BatchMessage,
                                  record.key, delay_s)


def _save(backend: Backend, path: str, record: BatchRecord, etag: str) -> str | None:
    return queued_steps.save(backend.deploy_records, path, record, etag)
