"""A training run completed: register its best model and, if it beats production, start its deployment.

The champion is re-scored on the challenger's validation split, so both numbers
come from the same rows. Each run is handled once (a ledger claim), so replayed
or duplicated events do nothing twice, and a model from a run older than the
serving one's never replaces it. The deployment itself runs from a queue
(``shared.deployment_flow``): this returns within seconds, as Event Grid needs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from shared import deployment_flow, faults, metrics, telemetry, upload_states
from shared.errors import ArtifactUnusable, InProgress, ScoreMissing
from shared.ports import Backend, ModelVersion, RunInfo
from shared.run_events import RUN_COMPLETED, RUN_STATUS_CHANGED, RunEvent
from shared.upload_states import UploadState, record

log = logging.getLogger(__name__)
__all__ = ["RUN_COMPLETED", "RUN_STATUS_CHANGED", "PromotionOutcome", "handle_run_completed"]


@dataclass(frozen=True)
class PromotionOutcome:
    decision: str  # deploying, rejected, refused, failed, cancelled, ignored, duplicate
    detail: dict[str, Any]


def _ignored(event: RunEvent, reason: str) -> PromotionOutcome:
    """Say why, with what arrived: a real deployment shows in telemetry which events it dropped."""
    log.info("Run event ignored: %s (runType %s, runTags %s)", reason, event.run_type, event.tags)
    telemetry.event("RunEventIgnored", reason=reason, **event.describe())
    return PromotionOutcome("ignored", {"reason": reason})


def handle_run_completed(event_type: str, data: dict[str, Any], backend: Backend) -> PromotionOutcome:
    event = RunEvent.of(event_type, data)
    why = event.not_for_us()
    if why:
        return _ignored(event, why)
    # Our pipeline job's own event, or its AutoML node's; trials and other jobs of the app find no run.
    run = backend.pipeline.run_for_event(event)
    if run is None:
        return _ignored(event, f"run {event.run_id!r} is neither a pipeline job of this app nor its AutoML node")
    run_id = run.run_id
    if not run.finished:
        return _ignored(event, f"run {run_id} is still {run.state}")
    if not backend.promotions.claim(run_id):
        if backend.promotions.decision(run_id) is None:
            # The first delivery still holds the run. Answering 2xx would lose the event if that delivery then
            # failed and released its claim: fail instead, and Event Grid's retry finds it done, or free.
            raise InProgress(f"run {run_id} is being handled by an earlier delivery; deliver again later")
        log.info("RunCompleted for %s already handled: nothing to do", run_id)
        return PromotionOutcome("duplicate", {"run_id": run_id})
    try:
        outcome = _decide(run, backend)
    except BaseException:
        backend.promotions.release(run_id)
        raise
    backend.promotions.finish(run_id, {"decision": outcome.decision, **outcome.detail})
    if outcome.decision == "rejected":
        try:
            with telemetry.span("report", attributes={"run.id": run_id}):
                backend.reports.write(run, {"decision": outcome.decision, **outcome.detail})
        except Exception:  # the report helps people; its failure must not undo or repeat a promotion
            log.exception("Could not write the report of run %s", run_id)
    return outcome


def _decide(run: RunInfo, backend: Backend) -> PromotionOutcome:
    uploads = backend.uploads
    if run.state == "cancelled":
        upload_states.cancelled(uploads, run.run_id, run.model_name, run.upload_id, run.error or "run cancelled")
        return PromotionOutcome("cancelled", {"run_id": run.run_id, "reason": run.error or "run cancelled"})
    if run.state != "completed":
        reason = run.error or f"run ended {run.state}"
        if run.upload_id:
            record(uploads, run.upload_id, state=UploadState.FAILED, reason=f"training failed: {reason}")
        telemetry.event("TrainingFailed", run_id=run.run_id, model=run.model_name, reason=reason)
        return PromotionOutcome("failed", {"run_id": run.run_id, "reason": reason})
    telemetry.event("TrainingCompleted", run_id=run.run_id, model=run.model_name,
                    metric=run.metric, value=run.result.get("primary_metric", {}).get("value"),
                    best_learner=run.result.get("best_learner"), trials=run.result.get("trials"),
                    duration_s=round(float(run.result.get("timings", {}).get("total_s", 0)), 1))
    with telemetry.span("registry.register", attributes={"model": run.model_name, "run.id": run.run_id}):
        challenger = backend.registry.register(run)
    faults.crash_point("promote.registered")
    telemetry.event("ModelRegistered", run_id=run.run_id, model=challenger.name, version=challenger.version)
    champion = backend.deployer.production(run.model_name)
    metric = metrics.resolve(run.metric)
    detail: dict[str, Any] = {"run_id": run.run_id, "model": challenger.name, "version": challenger.version,
                              "metric": metric.name}
    try:
        with telemetry.span("evaluate challenger", attributes={"model": challenger.name,
                                                                "version": challenger.version}):
            try:
                challenger_score = backend.evaluator.score(challenger, run)
            except ScoreMissing as missing:
                challenger_score, detail["score_missing"] = None, str(missing)
        detail["challenger"] = challenger_score
        deploy, why = _gate(run, champion, challenger, challenger_score, backend, detail)
        detail["reason"] = why
    except ArtifactUnusable as unusable:
        return _refuse(run, challenger, str(unusable), backend, detail)
    if deploy:
        backend.registry.tag(challenger, {"decision": "deploying", "decision_reason": why})
        if run.upload_id:
            record(uploads, run.upload_id, state=UploadState.DEPLOYING, reason=why, details={"decision": detail})
        deployment_flow.start(backend, run, challenger, detail)
        return PromotionOutcome("deploying", detail)
    backend.registry.tag(challenger, {"decision": "rejected", "decision_reason": why})
    telemetry.event("ModelRejected", model=challenger.name, version=challenger.version, run_id=run.run_id,
                    challenger=challenger_score, champion=detail.get("champion"), reason=why)
    if run.upload_id:
        record(uploads, run.upload_id, state=UploadState.NOT_PROMOTED, reason=why, details={"decision": detail})
    return PromotionOutcome("rejected", detail)


def _refuse(run: RunInfo, challenger: ModelVersion, reason: str, backend: Backend,
            detail: dict[str, Any]) -> PromotionOutcome:
    """A model whose files are broken is recorded as refused; production keeps serving what it served."""
    why = f"refused: {reason}"
    log.error("Model %s v%s %s", challenger.name, challenger.version, why)
    backend.registry.tag(challenger, {"decision": "refused", "decision_reason": why[:500]})
    telemetry.event("ModelRefused", model=challenger.name, version=challenger.version, run_id=run.run_id,
                    reason=why)
    if run.upload_id:
        record(backend.uploads, run.upload_id, state=UploadState.NOT_PROMOTED, reason=why,
               details={"decision": detail})
    return PromotionOutcome("refused", {**detail, "reason": why})


def _gate(run: RunInfo, champion: ModelVersion | None, challenger: ModelVersion, challenger_score: float | None,
          backend: Backend, detail: dict[str, Any]) -> tuple[bool, str]:
    metric = metrics.resolve(run.metric)
    if champion is None:
        return True, "no model in production yet"
    if champion.run_id == run.run_id:
        return True, "already serving this run's model"
    detail["champion_version"] = champion.version
    champion_created = champion.tags.get("run_created_at", "")
    if champion_created and run.created_at and champion_created > run.created_at:
        return False, f"production (v{champion.version}) comes from a newer run; an older run never replaces it"
    if backend.evaluator.compares_when_deployed:  # both scored on the same held-out rows once both are deployed
        detail["compare_with"] = champion.version
        return True, (f"deployed beside production v{champion.version} with no traffic, to compare both on the "
                      "same held-out rows before any traffic moves")
    try:
        with telemetry.span("evaluate champion", attributes={"model": champion.name, "version": champion.version}):
            champion_score = backend.evaluator.score(champion, run)
    except ScoreMissing as missing:  # never decide on a score nobody knows: say why, production stays
        return False, f"undecided: {missing}; production (v{champion.version}) keeps serving"
    except ArtifactUnusable as unusable:
        log.error("Production model cannot be evaluated: %s", unusable)
        return True, f"production (v{champion.version}) can no longer be loaded: {unusable}"
    detail["champion"] = champion_score
    if champion_score is None:
        return True, f"production (v{champion.version}) cannot score this dataset's columns or labels"
    if challenger_score is None:
        if detail.get("score_missing"):
            return False, f"undecided: {detail['score_missing']}; production (v{champion.version}) keeps serving"
        return False, "the new model could not be scored on its own validation split"
    if metrics.better(metric, challenger_score, champion_score):
        return True, (f"{metric.name} {challenger_score:.4f} vs production v{champion.version} "
                      f"{champion_score:.4f} {backend.evaluator.basis}")
    return False, (f"{metric.name} {challenger_score:.4f} is worse than production v{champion.version} "
                   f"{champion_score:.4f} {backend.evaluator.basis}")
