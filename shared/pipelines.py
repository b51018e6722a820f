"""The published training pipeline: one named, versioned definition that every caller invokes.

The blob function, ``POST /api/pipelines/{name}/runs`` and the CLI all go
through ``start``, so a run is the same thing whoever asked for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared import metrics, naming, scoring, telemetry, upload_states
from shared.errors import BadRequest, NotFound
from shared.ports import Backend, RunInfo, TrainingRequest
from shared.settings import Settings, get_settings

MAX_BUDGET_S = 3600
MAX_DATASET_VERSION = 2**31 - 1  # the registries' integers hold it


@dataclass(frozen=True)
class PipelineDefinition:
    name: str
    version: int
    steps: tuple[str, ...]
    description: str
    aliases: tuple[str, ...] = ()  # earlier names that still start it

    @property
    def reference(self) -> str:
        return f"{self.name}:{self.version}"


# One pipeline for every task (the dataset version's task decides); its first name, from when it trained
# classifiers only, stays an alias so that callers keep working.
TRAINING = PipelineDefinition(
    "automl-training", 1,
    ("validate", "featurize", "automl", "ensemble", "evaluate", "refit", "export", "register"),
    "Validate a dataset version, search classifiers or regressors (as its target was read) with AutoML, keep a "
    "weighted vote of the best learners when it beats the best alone, refit on every row, export to ONNX and "
    "register; the promote function then gates its deployment.", aliases=("automl-classification",))
PUBLISHED: dict[str, PipelineDefinition] = {TRAINING.name: TRAINING}
_BY_NAME = {name: p for p in PUBLISHED.values() for name in (p.name, *p.aliases)}


@dataclass(frozen=True)
class RunParameters:
    model_name: str
    dataset_version: int | None = None  # None: the latest version
    metric: str | None = None
    time_budget_s: int | None = None
    excluded_columns: tuple[str, ...] = ()


def definition(name: str) -> PipelineDefinition:
    found = _BY_NAME.get(name)
    if found is None:
        raise NotFound(f"no published pipeline {name!r}; published: {', '.join(PUBLISHED)}")
    return found


def parse_body(body: bytes, content_type: str | None) -> RunParameters:
    """The REST body, checked field by field; ``ExperimentName`` is accepted for ``model``."""
    scoring.require_json(content_type)
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    problems: list[dict[str, object]] = []
    known = {"model", "ExperimentName", "dataset_version", "metric", "time_budget_s", "exclude"}
    problems += [{"field": k, "error": "unknown field"} for k in data.keys() - known]
    given = [key for key in ("model", "ExperimentName") if key in data]
    model = data[given[0]] if len(given) == 1 else None
    if not isinstance(model, str) or not naming.is_model_name(model):
        problems.append({"field": given[-1] if given else "model", "error": "required, once (model or "
                         "ExperimentName): the dataset's name, 1-64 letters, digits, '-', '_' or '.'"})
    version = _whole(data, "dataset_version", MAX_DATASET_VERSION, problems)
    metric = data.get("metric")
    if metric is not None:
        try:
            metric = metrics.resolve(metric if isinstance(metric, str) else "").name
        except ValueError as error:
            problems.append({"field": "metric", "error": str(error)})
    budget = _whole(data, "time_budget_s", MAX_BUDGET_S, problems)
    exclude = data.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(c, str) for c in exclude):
        problems.append({"field": "exclude", "error": "a list of column names"})
    if problems:
        raise BadRequest(f"{len(problems)} problem(s) in the request body", problems)
    return RunParameters(str(model), version, metric, budget, tuple(exclude))


def _whole(data: dict[str, Any], field: str, most: int, problems: list[dict[str, object]]) -> int | None:
    """``data[field]``: an integer from 1 to ``most`` (JSON's 3.0 is one too), or None when not given; anything
    else is named in ``problems``."""
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= most:
        return value
    problems.append({"field": field, "error": f"an integer from 1 to {most}"})
    return None


def start(name: str, params: RunParameters, backend: Backend, settings: Settings, *,
          upload_id: str | None = None, idempotency_key: str | None = None,
          data_time: str = "") -> tuple[RunInfo, bool]:
    """Start a run of the published pipeline ``name``; returns (run, created)."""
    pipeline = definition(name)
    dataset = backend.datasets.get(params.model_name, params.dataset_version)
    if dataset is None:
        which = f"version {params.dataset_version}" if params.dataset_version else "any version"
        raise NotFound(f"dataset {params.model_name!r} has no {which}: upload a CSV to datasets/{params.model_name}/")
    features = {c.name for c in dataset.schema.features}
    unknown = [c for c in params.excluded_columns if c not in features]
    if unknown:
        raise BadRequest("exclude names columns the dataset does not have",
                         [{"field": "exclude", "error": f"unknown column {c!r}"} for c in unknown])
    try:
        metric = metrics.for_task(params.metric, dataset.schema.task, settings.default_metric).name
    except ValueError as error:
        raise BadRequest(str(error), [{"field": "metric", "error": str(error)}]) from None
    request = TrainingRequest(
        model_name=params.model_name, dataset=dataset, target=dataset.schema.target,
        metric=metric, time_budget_s=params.time_budget_s or settings.time_budget_s,
        upload_id=upload_id, excluded_columns=params.excluded_columns, pipeline=pipeline.reference,
        trace_parent=telemetry.current_traceparent(), data_time=data_time or dataset.created_at)
    return backend.pipeline.submit(request, idempotency_key=idempotency_key)


def describe_run(run: RunInfo, backend: Backend) -> dict[str, Any]:
    """A run as the API shows it, with the promotion decision and the deployment's steps once there are some."""
    from dataclasses import asdict

    from shared import deployment_flow

    body = asdict(run)
    if "artifact_dir" in run.result:
        body["result"]["artifact_dir"] = get_settings().shown_path(run.result["artifact_dir"])
    body["Id"] = run.run_id
    body["decision"] = backend.promotions.decision(run.run_id)
    deployment = deployment_flow.status(backend, run.run_id) if body["decision"] else None
    body["deployment"] = None if deployment is None else {
        "step": str(deployment.step), "slot": deployment.slot, "previous": deployment.previous,
        "reason": deployment.reason, "history": deployment.history, "created_at": deployment.created_at,
        "updated_at": deployment.updated_at}
    body["links"] = {"self": f"/api/runs/{run.run_id}", "cancel": f"/api/runs/{run.run_id}",
                     "report": f"/api/runs/{run.run_id}/report",
                     "models": "/api/models"}
    return body


def cancel(backend: Backend, run_id: str) -> RunInfo | None:
    """Cancel a queued or running run. One that stopped at once (queued, or on a platform that stops it
    itself) is recorded cancelled here; a running local run is recorded by its worker when the training stops."""
    run = backend.pipeline.cancel(run_id)
    if run is not None and run.state == "cancelled":
        upload_states.cancelled(backend.uploads, run.run_id, run.model_name, run.upload_id, "cancelled on request")
    return run
