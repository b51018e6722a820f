"""Deployment as a resumable state machine, driven by storage queue messages.

The promote handler only decides: it starts a deployment here and returns
within seconds (Event Grid stops waiting after about 30 s). Each queue message
says "advance the deployment of run R"; the durable record says where that
deployment stands, so a message delivered twice, late, or after a crash
resumes at the recorded step. A step that must wait (an endpoint or a
deployment still provisioning) re-enqueues a message with a visibility delay
instead of blocking. Steps that need no wait run back to back in one call.

One deployment per model runs at a time, under a lease held by its run and
renewed at every step. Between two queue messages no process holds anything,
so the lease names the run, never a process: another run takes it over only
once the holder's deployment is final or its lease was not renewed in time
(a deployment whose messages all died), so a dead deployment never blocks a
model and two live ones never share it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from shared import faults, metrics, queued_steps, telemetry, upload_states
from shared.errors import ArtifactUnusable, DeploymentFailed
from shared.ports import Backend, ModelVersion, RunInfo
from shared.queued_steps import StepMessage, now
from shared.upload_states import UploadState

log = logging.getLogger(__name__)

DEPLOYMENTS_QUEUE = "deployments"  # the queue trigger's queue; the host moves failures to <queue>-poison
LEASE_TTL_S = 15 * 60  # a lease not renewed for this long belongs to a dead worker
LEASE_WAIT_S = 30.0  # how soon a message waiting for another deployment of the model looks again


class Step(StrEnum):
    ENDPOINT = "endpoint"  # the model's endpoint exists and is ready
    CREATE = "create"  # the new model is being deployed beside the serving one, with no traffic
    WAIT = "wait"  # until that deployment is ready
    SMOKE = "smoke"  # it answers the example row
    COMPARE = "compare"  # it and production are scored on the same held-out rows (when the gate waited for it)
    SWITCH = "switch"  # all traffic moves to it, in one change
    CLEANUP = "cleanup"  # the previous deployment is kept for rollback or removed
    DONE = "done"
    REFUSED = "refused"  # the model cannot serve (its smoke test failed): production unchanged
    FAILED = "failed"  # the platform could not deploy it: production unchanged
    SUPERSEDED = "superseded"  # a model from a newer run went to production first
    REJECTED = "rejected"  # it lost the comparison: removed again, production unchanged


FINAL = frozenset({Step.DONE, Step.REFUSED, Step.FAILED, Step.SUPERSEDED, Step.REJECTED})


@dataclass
class DeploymentRecord:
    run_id: str
    model: ModelVersion
    run_created_at: str
    upload_id: str | None
    detail: dict[str, Any]  # the promotion decision that started it
    step: Step = Step.ENDPOINT
    seq: int = 0  # the sequence number of the message that carries the current step; older ones are stale
    sent: bool = True  # whether that message was queued (False only between the two writes of a hand-over)
    slot: str = ""  # where the new model is deployed (a colour in Azure)
    previous: str = ""  # what served before the switch
    polls: int = 0  # waits spent in the current step
    reason: str = ""
    history: list[str] = field(default_factory=list)
    traceparent: str = ""
    created_at: str = ""
    updated_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "step": str(self.step)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeploymentRecord:
        fields = dict(data)
        fields["model"] = ModelVersion(**fields["model"])
        fields["step"] = Step(fields["step"])
        return cls(**fields)


class DeployMessage(StepMessage):
    """"Advance the deployment of run ``key``"."""

    KEY_FIELD = "run_id"

    @property
    def run_id(self) -> str:
        return self.key


def _record_path(run_id: str) -> str:
    return f"deployments/{run_id.replace('/', '%2F')}.json"


def _lease_path(model_name: str) -> str:
    return f"deployment-leases/{model_name.replace('/', '%2F')}.json"


def start(backend: Backend, run: RunInfo, model: ModelVersion, detail: dict[str, Any]) -> None:
    """Record the deployment and queue its first message; a repeat (same run) queues nothing new."""
    record = DeploymentRecord(run.run_id, model, run.created_at, run.upload_id, detail,
                              traceparent=telemetry.current_traceparent(), created_at=now(), updated_at=now())
    created = backend.deploy_records.create(_record_path(run.run_id), record.to_json())
    if created:
        backend.deploy_queue.send(DeployMessage(run.run_id, 0, record.traceparent).encode(), 0)
        faults.crash_point("deploy.queued")
    telemetry.event("DeploymentStarted", run_id=run.run_id, model=model.name, version=model.version)


def status(backend: Backend, run_id: str) -> DeploymentRecord | None:
    found = backend.deploy_records.get(_record_path(run_id))
    return DeploymentRecord.from_json(found[0]) if found else None


def advance(backend: Backend, message: DeployMessage) -> str:
    """Run the current step of ``message.run_id``'s deployment, then hand over to the next message.

    One message carries one step (or one look at a step still in progress), so
    the queue's tries count the failures of that step alone. Errors other than
    a refusal or a platform failure propagate: the queue retries the message
    and, after the last try, moves it to the poison queue.
    """
    path = _record_path(message.run_id)
    found = backend.deploy_records.get(path)
    if found is None:
        log.warning("No deployment record for run %s: dropping the message", message.run_id)
        return "unknown"
    record, etag = DeploymentRecord.from_json(found[0]), found[1]
    if record.step in FINAL:
        return "finished"
    behind = queued_steps.catch_up(backend.deploy_records, backend.deploy_queue, path, record, etag, message)
    if behind is not None:
        return behind
    if not _take_lease(backend, record):
        backend.deploy_queue.send(message.encode(), LEASE_WAIT_S)
        return "waiting for another deployment of the model"
    with telemetry.span("deployment", traceparent=record.traceparent,
                        attributes={"model": record.model.name, "run.id": record.run_id}):
        return _advance(backend, path, record, etag)


def _advance(backend: Backend, path: str, record: DeploymentRecord, etag: str) -> str:
    deployer = backend.deployer
    step = record.step
    with telemetry.span(f"deploy {step}", attributes={"model": record.model.name,
                                                      "version": record.model.version, "run.id": record.run_id}):
        next_step, wait = _run_step(backend, record)
    if wait:
        record.polls += 1
        if record.polls <= deployer.max_polls:
            sent = _send_next(backend, path, record, etag, deployer.poll_interval_s)
            return "polling" if sent else "conflict"
        next_step, record.reason = Step.FAILED, f"{step} did not finish after {record.polls - 1} polls"
    if next_step in FINAL:
        _finish(backend, record, next_step)  # idempotent: a crash before the save repeats it harmlessly
    record.polls = 0
    record.history.append(f"{now()} {step} -> {next_step}")
    record.step = next_step
    if next_step in FINAL:
        if _save(backend, path, record, etag) is None:
            return "conflict"
        faults.crash_point(f"deploy.{step}")  # a lease left behind is taken over: its deployment is final
        _release_lease(backend, record)
        return str(next_step)
    if not _send_next(backend, path, record, etag, 0):
        return "conflict"  # another copy of the message advanced it; that one carries on
    faults.crash_point(f"deploy.{step}")
    return f"{step} -> {next_step}"


def _send_next(backend: Backend, path: str, record: DeploymentRecord, etag: str, delay_s: float) -> bool:
    return queued_steps.send_next(backend.deploy_records, backend.deploy_queue, path, record, etag, DeployMessage,
                                  record.run_id, delay_s)


def _run_step(backend: Backend, record: DeploymentRecord) -> tuple[Step, bool]:
    """Do ``record.step`` once; returns the next step and whether to wait and look again."""
    deployer, model = backend.deployer, record.model
    faults.crash_point(f"deploy.{record.step}.start")
    try:
        match record.step:
            case Step.ENDPOINT:
                return (Step.CREATE, False) if deployer.ensure_endpoint(model) else (Step.ENDPOINT, True)
            case Step.CREATE:
                record.slot = deployer.begin(model, record.slot or None)
                return Step.WAIT, False
            case Step.WAIT:
                return (Step.SMOKE, False) if deployer.ready(model, record.slot) else (Step.WAIT, True)
            case Step.SMOKE:
                deployer.smoke_test(model, record.slot)
                return (Step.COMPARE if record.detail.get("compare_with") else Step.SWITCH), False
            case Step.COMPARE:
                return _compare(backend, record), False
            case Step.SWITCH:
                if _newer_in_production(backend, record):
                    return Step.SUPERSEDED, False
                done, previous = deployer.switch(model, record.slot)
                record.previous = record.previous or (previous or "")
                return (Step.CLEANUP, False) if done else (Step.SWITCH, True)
            case Step.CLEANUP:
                deployer.cleanup(model, record.slot, record.previous or None)
                return Step.DONE, False
    except ArtifactUnusable as unusable:
        record.reason = f"refused: {unusable}"
        return Step.REFUSED, False
    except DeploymentFailed as failure:
        record.reason = f"deployment failed: {failure}"
        return Step.FAILED, False
    raise ValueError(f"no step {record.step}")


def _compare(backend: Backend, record: DeploymentRecord) -> Step:
    """The gate on the same rows: the new model takes traffic only if it beats what serves now on them."""
    model = record.model
    champion = backend.deployer.production(model.name)
    if champion is None or champion.run_id == record.run_id:
        record.detail["reason"] = "no other model in production any more"
        return Step.SWITCH
    found = backend.deployer.compare(model, record.slot, champion)
    metric = metrics.resolve(found.metric)
    record.detail.update(challenger=found.challenger, champion=found.champion, champion_version=champion.version,
                         compared_rows=found.rows)
    telemetry.event("ModelsCompared", model=model.name, version=model.version, champion_version=champion.version,
                    metric=metric.name, challenger=found.challenger, champion=found.champion, rows=found.rows)
    if found.challenger is None:
        won, why = False, f"undecided: v{model.version} could not be scored {found.basis}"
    elif found.champion is None:
        won, why = True, f"production (v{champion.version}) cannot score {found.basis}"
    elif metrics.better(metric, found.challenger, found.champion):
        won, why = True, (f"{metric.name} {found.challenger:.4f} vs production v{champion.version} "
                          f"{found.champion:.4f} {found.basis}")
    else:
        won, why = False, (f"{metric.name} {found.challenger:.4f} does not beat production v{champion.version} "
                           f"{found.champion:.4f} {found.basis}")
    record.detail["reason"] = why
    if won:
        return Step.SWITCH
    record.reason = f"{why}; production (v{champion.version}) keeps serving"
    return Step.REJECTED  # its deployment is removed once its report is written (``_finish``)


def _newer_in_production(backend: Backend, record: DeploymentRecord) -> bool:
    production = backend.deployer.production(record.model.name)
    if production is None or production.run_id == record.run_id:
        return False
    serving_created = production.tags.get("run_created_at", "")
    if serving_created and record.run_created_at and serving_created > record.run_created_at:
        record.reason = f"production (v{production.version}) comes from a newer run"
        return True
    return False


def _finish(backend: Backend, record: DeploymentRecord, step: Step) -> None:
    model, detail = record.model, dict(record.detail)
    if step == Step.DONE:
        why = str(detail.get("reason", ""))
        backend.registry.tag(model, {"decision": "deployed", "decision_reason": why[:500]})
        telemetry.event("ModelDeployed", model=model.name, version=model.version, run_id=record.run_id,
                        challenger=detail.get("challenger"), champion=detail.get("champion"), slot=record.slot)
        decision = {"decision": "deployed", **detail}
        state = UploadState.PROMOTED
    else:
        why = record.reason or str(step)
        backend.registry.tag(model, {"decision": str(step), "decision_reason": why[:500]})
        name = {Step.REFUSED: "ModelRefused", Step.FAILED: "DeploymentFailed"}.get(step, "ModelRejected")
        telemetry.event(name, model=model.name, version=model.version, run_id=record.run_id, reason=why)
        log.error("Deployment of %s v%s ended %s: %s", model.name, model.version, step, why)
        decision = {"decision": str(step), **detail, "reason": why}
        state = UploadState.FAILED if step == Step.FAILED else UploadState.NOT_PROMOTED
    if record.upload_id:
        upload_states.record(backend.uploads, record.upload_id, state=state, reason=str(decision["reason"]),
                             details={"decision": decision})
    backend.promotions.finish(record.run_id, decision)
    if step in (Step.DONE, Step.REJECTED):
        run = backend.pipeline.get_run(record.run_id)
        if run is not None:
            try:  # the report may ask the new model's deployment, which a rejected one still has until below
                backend.reports.write(run, {**decision, "slot": record.slot})
            except Exception:  # the report helps people; its failure must not undo or repeat a deployment
                log.exception("Could not write the report of run %s", record.run_id)
    if step == Step.REJECTED:
        backend.deployer.discard(model, record.slot)  # nothing of the loser keeps running


def fail_poisoned(backend: Backend, message: DeployMessage, tries: int) -> None:
    """The queue gave up on a deployment message: record the failure; production keeps serving."""
    path = _record_path(message.run_id)
    found = backend.deploy_records.get(path)
    if found is None:
        return
    record, etag = DeploymentRecord.from_json(found[0]), found[1]
    if record.step in FINAL:
        return
    record.reason = f"gave up at step {record.step} after {tries} tries"
    _finish(backend, record, Step.FAILED)
    record.history.append(f"{now()} {record.step} -> {Step.FAILED} (poison)")
    record.step = Step.FAILED
    _save(backend, path, record, etag)
    _release_lease(backend, record)


def _save(backend: Backend, path: str, record: DeploymentRecord, etag: str) -> str | None:
    return queued_steps.save(backend.deploy_records, path, record, etag)


def _take_lease(backend: Backend, record: DeploymentRecord) -> bool:
    """The model's deployment lease for this run: taken, renewed, or taken over from a run whose deployment is
    final (or gone), or whose lease expired unrenewed. Writes are conditional, so of two runs racing for it one
    wins."""
    path = _lease_path(record.model.name)
    mine = {"run_id": record.run_id, "until": time.time() + LEASE_TTL_S}
    if backend.deploy_records.create(path, mine):
        return True
    found = backend.deploy_records.get(path)
    if found is None:
        return backend.deploy_records.create(path, mine)
    lease, etag = found
    holder = str(lease.get("run_id", ""))
    if holder != record.run_id and _lease_live(lease):
        other = status(backend, holder)
        if other is not None and other.step not in FINAL:
            return False
    return backend.deploy_records.replace(path, mine, etag) is not None


def _lease_live(lease: dict[str, Any]) -> bool:
    try:
        return float(lease.get("until", 0)) > time.time()
    except (TypeError, ValueError):
        return False  # an unreadable lease protects nothing


def _release_lease(backend: Backend, record: DeploymentRecord) -> None:
    path = _lease_path(record.model.name)
    found = backend.deploy_records.get(path)
    if found is not None and found[0].get("run_id") == record.run_id:
        backend.deploy_records.delete(path)
