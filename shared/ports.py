"""The core's view of the outside world: small interfaces that each backend implements."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, TypedDict

from shared.model_contract import ModelSignature, ServedModel
from shared.run_events import RunEvent
from shared.run_order import FINISHED
from shared.schema import Schema
from shared.scoring import ScoreRequest, ScoreResult
from shared.tasks import TaskKind
from shared.upload_states import UploadChange

if TYPE_CHECKING:
    from shared.blob_records import JsonBlobs


class BatchSummary(TypedDict):
    """What scoring one dropped CSV did (``ModelServer.score_file``)."""

    rows: int
    chunks: int
    predictions: dict[str, int] | dict[str, float]  # rows per label; for regression the predictions' summary
    model: dict[str, str]
    values_not_numeric: int  # numeric cells that were not numbers, scored as missing
    seconds: float
    rows_per_second: int | None


@dataclass(frozen=True)
class DatasetVersion:
    name: str
    version: int
    content_hash: str
    rows: int
    columns: int
    schema: Schema
    uri: str  # where the registry keeps its immutable copy
    source_uri: str  # the upload it came from
    created_at: str
    guardrails: tuple[dict[str, Any], ...] = ()  # data checks at ingest (shared.guardrails)
    training_uri: str = ""  # where training reads, when it is not all of ``uri`` (rows held out for the gate)
    holdout_rows: int = 0  # the rows kept out of training for the gate


@dataclass(frozen=True)
class TrainingRequest:
    model_name: str
    dataset: DatasetVersion
    target: str
    metric: str
    time_budget_s: int
    upload_id: str | None = None
    excluded_columns: tuple[str, ...] = ()
    pipeline: str = "automl-training:1"
    trace_parent: str = ""  # the operation this run belongs to (W3C traceparent)
    data_time: str = ""  # when the data was uploaded (sortable): the newest data wins, whatever the arrival order


@dataclass
class RunInfo:
    run_id: str
    model_name: str
    dataset_name: str
    dataset_version: int
    metric: str
    state: str  # a RunState: queued, running, completed, failed, superseded, cancelled
    upload_id: str | None = None
    pipeline: str = ""
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    created_at: str = ""
    updated_at: str = ""
    excluded_columns: tuple[str, ...] = ()  # columns the run left out of training

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    run_id: str
    metric: str
    metrics: dict[str, float]
    dataset_name: str
    dataset_version: int
    artifact_uri: str
    tags: dict[str, str] = field(default_factory=dict)


class DatasetRegistry(abc.ABC):
    keeps_drift_baseline = False  # whether ``register`` wants a baseline (models that carry none are served)

    @abc.abstractmethod
    def register(self, name: str, content: BinaryIO, content_hash: str, schema: Schema, rows: int,
                 source_uri: str, guardrails: list[dict[str, Any]] | None = None,
                 baseline: dict[str, Any] | None = None) -> tuple[DatasetVersion, bool]:
        """Register a version, or return the existing one with the same content (created=False). ``content`` is
        the upload from its first byte, to be copied a chunk at a time; ``baseline`` is its drift baseline
        (``shared.drift.dataset_baseline``), kept where the backend's drift monitor reads it."""

    def drift_baseline(self, version: DatasetVersion) -> dict[str, Any] | None:
        """The drift baseline kept with ``version``; None where models carry their own (locally)."""
        return None

    @abc.abstractmethod
    def get(self, name: str, version: int | None = None) -> DatasetVersion | None:
        """A version, or the latest when ``version`` is None."""

    @abc.abstractmethod
    def list(self, name: str | None = None) -> list[DatasetVersion]: ...


class TrainingPipeline(abc.ABC):
    @abc.abstractmethod
    def submit(self, request: TrainingRequest, idempotency_key: str | None = None) -> tuple[RunInfo, bool]:
        """Queue a run; with an ``idempotency_key`` seen before, return that run instead (created=False)."""

    @abc.abstractmethod
    def cancel(self, run_id: str) -> RunInfo | None:
        """Cancel a queued or running run; a finished run is returned unchanged."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> RunInfo | None: ...

    @abc.abstractmethod
    def list_runs(self, model_name: str | None = None, limit: int = 50) -> list[RunInfo]: ...

    def metric_refused(self, metric: str, task: TaskKind) -> str | None:
        """Why this platform's AutoML cannot optimise ``metric`` for ``task``, or None when it can. Ingest asks
        before it registers anything; every metric of ``shared.metrics`` can drive the local search."""
        return None

    def run_for_event(self, event: RunEvent) -> RunInfo | None:
        """The run a run event is about, or None when the event is not about one of our runs."""
        return self.get_run(event.run_id)


class ModelRegistry(abc.ABC):
    @abc.abstractmethod
    def register(self, run: RunInfo) -> ModelVersion:
        """Register the run's best model; idempotent: a run registers one version at most."""

    @abc.abstractmethod
    def find_by_run(self, model_name: str, run_id: str) -> ModelVersion | None: ...

    @abc.abstractmethod
    def get(self, model_name: str, version: str) -> ModelVersion | None: ...

    @abc.abstractmethod
    def tag(self, model: ModelVersion, tags: dict[str, str]) -> None: ...

    @abc.abstractmethod
    def list_versions(self, model_name: str | None = None) -> list[ModelVersion]: ...


class Evaluator(abc.ABC):
    basis = "on the same validation rows"  # how the two scores compare, for the decision's reason
    # True when the two models can only be scored on the same rows once both are deployed (Azure): the gate then
    # deploys the challenger beside production, with no traffic, and the deployer's ``compare`` decides.
    compares_when_deployed = False

    @abc.abstractmethod
    def score(self, model: ModelVersion, run: RunInfo) -> float | None:
        """``model``'s primary metric on ``run``'s validation split; None when it cannot score that data."""


class Deployer(abc.ABC):
    """Deploys a model in idempotent steps, each quick; ``shared.deployment_flow`` drives them from a queue.

    Errors mean: ArtifactUnusable, the model cannot serve (refuse it); DeploymentFailed, the platform
    gave up on it (record the failure); anything else is transient (the queue retries the step).
    Production keeps serving in every case.
    """

    poll_interval_s: float = 0.0  # how long to wait before looking again at a step still in progress
    max_polls: int = 120  # a step still in progress after this many looks has failed

    @abc.abstractmethod
    def ensure_endpoint(self, model: ModelVersion) -> bool:
        """Create ``model.name``'s endpoint if missing; True once it is ready to take deployments."""

    @abc.abstractmethod
    def begin(self, model: ModelVersion, slot: str | None) -> str:
        """Start deploying ``model`` with no traffic on ``slot`` (chosen when None); returns the slot."""

    @abc.abstractmethod
    def ready(self, model: ModelVersion, slot: str) -> bool:
        """True once the deployment on ``slot`` can answer; DeploymentFailed when it never will."""

    @abc.abstractmethod
    def smoke_test(self, model: ModelVersion, slot: str) -> None:
        """Score the example row on ``slot`` alone; ArtifactUnusable when the model cannot."""

    @abc.abstractmethod
    def switch(self, model: ModelVersion, slot: str) -> tuple[bool, str | None]:
        """Move all traffic to ``slot`` in one change; returns (done, what served before)."""

    @abc.abstractmethod
    def cleanup(self, model: ModelVersion, slot: str, previous: str | None) -> None:
        """After the switch: keep ``previous`` for rollback or remove it, as configured."""

    @abc.abstractmethod
    def production(self, model_name: str) -> ModelVersion | None: ...

    def compare(self, model: ModelVersion, slot: str, champion: ModelVersion) -> Comparison:
        """Score ``model`` on ``slot`` and the champion where it serves, on the same held-out rows.
        Only backends whose evaluator ``compares_when_deployed`` are asked."""
        raise NotImplementedError

    def discard(self, model: ModelVersion, slot: str) -> None:
        """Remove ``model``'s deployment on ``slot``, which never took traffic (it lost the comparison)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Comparison:
    metric: str
    challenger: float | None  # None: it could not be scored on those rows
    champion: float | None
    rows: int
    basis: str  # which rows, for the decision's reason


class DeploymentQueue(abc.ABC):
    """The storage queue that carries deployment steps (a queue trigger runs them)."""

    @abc.abstractmethod
    def send(self, message: str, delay_s: float) -> None:
        """Enqueue ``message``, invisible for ``delay_s`` seconds."""


class ModelServer(abc.ABC):
    """Answers scoring requests with the model in production (or a given registered version)."""

    @abc.abstractmethod
    def default_model(self) -> str | None:
        """The model ``/api/score`` serves: the configured default (DEFAULT_MODEL), else one the backend picks:
        locally the most recently deployed, in Azure the first by name (the service lists endpoints in no set
        order, and the choice must not change from one call to the next)."""

    @abc.abstractmethod
    def score(self, model_name: str, request: ScoreRequest, version: ModelVersion | None = None
              ) -> ScoreResult | None:
        """The predictions, or None when nothing serves ``model_name``; bad rows raise BadRequest."""

    def loaded(self, model_name: str | None) -> ServedModel | None:
        """The model serving ``model_name`` (None: the default model) when it is already loaded in this process,
        so that a small request may be scored with it (``shared.scoring.score``) without a hop to a worker
        thread; None otherwise. The caller scores with the model returned, never looks it up again: a deployment
        landing in between is loaded by a later request, off the event loop. None by default: a remote
        endpoint, or a model still to load, waits."""
        return None

    @abc.abstractmethod
    def deployed(self) -> dict[str, ModelSignature]:
        """Each model in production and its signature (the OpenAPI document's row schemas)."""

    @abc.abstractmethod
    def drift_summary(self, model_name: str) -> dict[str, object] | None:
        """The last closed drift window of ``model_name`` in production, or None before it has one.

        NotSupported where the platform monitors drift itself.
        """

    @abc.abstractmethod
    def score_file(self, model_name: str, content: bytes, chunk_rows: int, write: Callable[[bytes], None]
                   ) -> BatchSummary | None:
        """Score a whole CSV in chunks, the scored CSV to ``write``; None when nothing serves ``model_name``.

        DatasetRejected when the file does not fit the model; NotSupported where bulk scoring belongs elsewhere.
        """


class BatchScorer(abc.ABC):
    """Scores a dropped CSV as a job of the platform (an Azure ML batch endpoint), in idempotent steps, each quick;
    ``shared.batch_flow`` drives them from a queue. DeploymentFailed: the platform gave up (the drop fails);
    anything else is transient (the queue retries the step)."""

    poll_interval_s: float = 0.0  # how long to wait before looking again at a step still in progress
    max_polls: int = 120  # a step still in progress after this many looks has failed

    @abc.abstractmethod
    def prepare(self, model: ModelVersion) -> str | None:
        """Create what scores with ``model`` if missing; the deployment to submit to once ready, else None."""

    @abc.abstractmethod
    def submit(self, job: str, model: ModelVersion, deployment: str, blob_path: str) -> None:
        """Start job ``job`` over ``blob_path`` (in ``scoring-input``); a job of that name already there is kept."""

    @abc.abstractmethod
    def state(self, job: str) -> tuple[str, str]:
        """("running" | "completed" | "failed", why it failed)."""

    @abc.abstractmethod
    def collect(self, job: str, write: Callable[[bytes], None]) -> dict[str, Any]:
        """Stream the job's scored CSV to ``write`` a block at a time; returns the job's own summary.

        DatasetRejected when the job found that the file does not fit the model.
        """


class RunReports(abc.ABC):
    """A human-readable report per run (charts, leaderboard, decision)."""

    @abc.abstractmethod
    def write(self, run: RunInfo, decision: dict[str, Any]) -> None:
        """Write or rewrite ``run``'s report once its decision is known."""

    @abc.abstractmethod
    def html(self, run_id: str) -> str | None:
        """The report, or None when ``run_id`` has none; NotSupported where the platform shows runs itself."""


class UploadLog(abc.ABC):
    """What happened to each upload, for the status API and the CLI."""

    @abc.abstractmethod
    def update(self, upload_id: str, change: UploadChange) -> bool:
        """Create or update the record; ``details`` merges into the existing details.

        A ``state`` that would move the record back (``shared.upload_states``) changes nothing: False.
        Callers write through ``shared.upload_states.record``.
        """

    @abc.abstractmethod
    def get(self, upload_id: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def list(self, limit: int = 50) -> list[dict[str, Any]]: ...


class PromotionLedger(abc.ABC):
    """Makes RunCompleted handling happen once per run, whatever the event deliveries."""

    @abc.abstractmethod
    def claim(self, run_id: str) -> bool:
        """True for the one caller that should handle ``run_id`` now; False when done or in progress."""

    @abc.abstractmethod
    def finish(self, run_id: str, decision: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def decision(self, run_id: str) -> dict[str, Any] | None:
        """The recorded decision for ``run_id``, once handled."""

    @abc.abstractmethod
    def release(self, run_id: str) -> None:
        """Give the claim back after a failure, so a redelivery can retry."""


@dataclass(frozen=True)
class Backend:
    """One implementation of every port, as ``shared.backend`` assembles it from settings."""

    datasets: DatasetRegistry
    uploads: UploadLog
    pipeline: TrainingPipeline
    registry: ModelRegistry
    evaluator: Evaluator
    deployer: Deployer
    promotions: PromotionLedger
    server: ModelServer
    deploy_records: JsonBlobs  # deployment state machines and their leases (shared.deployment_flow)
    deploy_queue: DeploymentQueue
    reports: RunReports
    batch: BatchScorer | None = None  # None: ``ModelServer.score_file`` scores a drop in the function itself
    batch_queue: DeploymentQueue | None = None  # the queue that carries the batch jobs' steps
