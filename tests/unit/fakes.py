"""Small in-memory implementations of the core's ports: ingest and the gate run on them in milliseconds.

Upload records, the promotion ledger and the deployment records use the real
record-keeping code (``shared.azure.state``) over an in-memory container, so the
forward-only states and the exactly-once claims are the ones production runs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, BinaryIO

import numpy as np

from shared.azure.dry_run import InMemoryQueue, InMemoryRecords
from shared.azure.state import BlobPromotionLedger, BlobUploadLog
from shared.batch import BatchOutputs, score_csv
from shared.errors import ArtifactUnusable
from shared.model_contract import Columns, ModelSignature, Outputs, Results, ServedModel
from shared.ports import (
    Backend,
    BatchSummary,
    DatasetRegistry,
    DatasetVersion,
    Deployer,
    Evaluator,
    ModelRegistry,
    ModelServer,
    ModelVersion,
    RunInfo,
    RunReports,
    TrainingPipeline,
    TrainingRequest,
)
from shared.schema import Schema
from shared.scoring import ScoreRequest, ScoreResult, score


def _now() -> str:
    return datetime.now(UTC).isoformat()


class MemoryDatasets(DatasetRegistry):
    def __init__(self) -> None:
        self.versions: dict[str, list[DatasetVersion]] = {}

    def register(self, name: str, content: BinaryIO, content_hash: str, schema: Schema, rows: int,
                 source_uri: str, guardrails: list[dict[str, Any]] | None = None,
                 baseline: dict[str, Any] | None = None) -> tuple[DatasetVersion, bool]:
        versions = self.versions.setdefault(name, [])
        for existing in versions:
            if existing.content_hash == content_hash:
                return existing, False
        version = DatasetVersion(name, len(versions) + 1, content_hash, rows, len(schema.columns), schema,
                                 f"memory://{name}/{len(versions) + 1}", source_uri, _now(), tuple(guardrails or ()))
        versions.append(version)
        return version, True

    def get(self, name: str, version: int | None = None) -> DatasetVersion | None:
        versions = self.versions.get(name, [])
        if version is None:
            return versions[-1] if versions else None
        return next((v for v in versions if v.version == version), None)

    def list(self, name: str | None = None) -> list[DatasetVersion]:
        return [v for n, vs in self.versions.items() if name in (None, n) for v in vs]


class MemoryPipeline(TrainingPipeline):
    """Runs stay queued until a test finishes them with ``complete`` or ``fail``."""

    def __init__(self) -> None:
        self.runs: dict[str, RunInfo] = {}
        self.requests: dict[str, TrainingRequest] = {}
        self.keys: dict[str, str] = {}
        self._ids = itertools.count(1)

    def submit(self, request: TrainingRequest, idempotency_key: str | None = None) -> tuple[RunInfo, bool]:
        if idempotency_key in self.keys:
            return self.runs[self.keys[idempotency_key]], False
        run = RunInfo(f"run-{next(self._ids)}", request.model_name, request.dataset.name, request.dataset.version,
                      request.metric, "queued", request.upload_id, request.pipeline, created_at=_now(),
                      updated_at=_now(), excluded_columns=request.excluded_columns)
        self.runs[run.run_id] = run
        self.requests[run.run_id] = request
        if idempotency_key:
            self.keys[idempotency_key] = run.run_id
        return run, True

    def complete(self, run_id: str, score: float) -> RunInfo:
        run = self.runs[run_id]
        run.state, run.updated_at = "completed", _now()
        run.result = {"primary_metric": {"name": run.metric, "value": score}, "validation_score": score}
        return run

    def fail(self, run_id: str, error: str) -> RunInfo:
        run = self.runs[run_id]
        run.state, run.error = "failed", error
        return run

    def cancel(self, run_id: str) -> RunInfo | None:
        run = self.runs.get(run_id)
        if run is not None and not run.finished:
            run.state = "cancelled"
        return run

    def get_run(self, run_id: str) -> RunInfo | None:
        return self.runs.get(run_id)

    def list_runs(self, model_name: str | None = None, limit: int = 50) -> list[RunInfo]:
        return [r for r in reversed(self.runs.values()) if model_name in (None, r.model_name)][:limit]


class MemoryRegistry(ModelRegistry):
    def __init__(self) -> None:
        self.models: list[ModelVersion] = []

    def register(self, run: RunInfo) -> ModelVersion:
        found = self.find_by_run(run.model_name, run.run_id)
        if found is not None:
            return found
        count = sum(m.name == run.model_name for m in self.models)
        model = ModelVersion(run.model_name, str(count + 1), run.run_id, run.metric,
                             {run.metric: float(run.result["validation_score"])}, run.dataset_name,
                             run.dataset_version, f"memory://models/{run.model_name}/{count + 1}",
                             {"run_created_at": run.created_at})
        self.models.append(model)
        return model

    def find_by_run(self, model_name: str, run_id: str) -> ModelVersion | None:
        return next((m for m in self.models if m.name == model_name and m.run_id == run_id), None)

    def get(self, model_name: str, version: str) -> ModelVersion | None:
        return next((m for m in self.models if m.name == model_name and m.version == version), None)

    def tag(self, model: ModelVersion, tags: dict[str, str]) -> None:
        index = self.models.index(self.get(model.name, model.version))  # type: ignore[arg-type]
        self.models[index] = replace(self.models[index], tags={**self.models[index].tags, **tags})

    def list_versions(self, model_name: str | None = None) -> list[ModelVersion]:
        return [m for m in self.models if model_name in (None, m.name)]


class MemoryEvaluator(Evaluator):
    """Each model scores what its own run reported; ``broken`` versions cannot be loaded."""

    def __init__(self) -> None:
        self.broken: set[str] = set()

    def score(self, model: ModelVersion, run: RunInfo) -> float | None:
        if model.version in self.broken:
            raise ArtifactUnusable(f"v{model.version} cannot be loaded")
        return model.metrics.get(model.metric)


class MemoryDeployer(Deployer):
    """Deploys at once: a slot per version, all traffic on the switched one."""

    def __init__(self, registry: MemoryRegistry) -> None:
        self.registry = registry
        self.live: dict[str, ModelVersion] = {}
        self.steps: list[str] = []

    def ensure_endpoint(self, model: ModelVersion) -> bool:
        self.steps.append("endpoint")
        return True

    def begin(self, model: ModelVersion, slot: str | None) -> str:
        self.steps.append("begin")
        return slot or f"v{model.version}"

    def ready(self, model: ModelVersion, slot: str) -> bool:
        return True

    def smoke_test(self, model: ModelVersion, slot: str) -> None:
        self.steps.append("smoke")

    def switch(self, model: ModelVersion, slot: str) -> tuple[bool, str | None]:
        previous = self.live.get(model.name)
        self.live[model.name] = model
        return True, f"v{previous.version}" if previous else None

    def cleanup(self, model: ModelVersion, slot: str, previous: str | None) -> None:
        self.steps.append("cleanup")

    def production(self, model_name: str) -> ModelVersion | None:
        return self.live.get(model_name)


@dataclass
class ConstantModel(ServedModel):
    """Predicts the same probabilities for every row."""

    signature_: ModelSignature
    proba: list[float]
    name_: str = "bank"
    version_: str = "1"
    observed: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.name_

    @property
    def version(self) -> str:
        return self.version_

    @property
    def signature(self) -> ModelSignature:
        return self.signature_

    def predict(self, columns: Columns) -> Outputs:
        rows = len(next(iter(columns.values())))
        return np.tile(np.asarray(self.proba, dtype=np.float64), (rows, 1))

    def explain(self, columns: Columns, results: Results) -> list[dict[str, object]]:
        return [{"class": label, "contributions": {}} for label in results]


class MemoryServer(ModelServer):
    def __init__(self) -> None:
        self.models: dict[str, ServedModel] = {}

    def default_model(self) -> str | None:
        return next(iter(self.models), None)

    def score(self, model_name: str, request: ScoreRequest, version: ModelVersion | None = None
              ) -> ScoreResult | None:
        served = self.models.get(model_name)
        return score(request, served) if served is not None else None

    def deployed(self) -> dict[str, ModelSignature]:
        return {name: m.signature for name, m in self.models.items()}

    def drift_summary(self, model_name: str) -> dict[str, object] | None:
        return None

    def score_file(self, model_name: str, content: bytes, chunk_rows: int, write: Callable[[bytes], None]
                   ) -> BatchSummary | None:
        served = self.models.get(model_name)
        return score_csv(content, served, chunk_rows, write) if served is not None else None


class MemoryReports(RunReports):
    def __init__(self) -> None:
        self.pages: dict[str, dict[str, Any]] = {}

    def write(self, run: RunInfo, decision: dict[str, Any]) -> None:
        self.pages[run.run_id] = decision

    def html(self, run_id: str) -> str | None:
        return str(self.pages[run_id]) if run_id in self.pages else None


class MemoryBatchOutputs(BatchOutputs):
    def __init__(self) -> None:
        self.json: dict[str, dict[str, object]] = {}
        self.pieces: dict[str, list[bytes]] = {}
        self.committed: dict[str, bytes] = {}

    def write_json(self, name: str, body: dict[str, object]) -> None:
        self.json[name] = body

    def csv_writer(self, name: str) -> tuple[Callable[[bytes], None], Callable[[], None]]:
        pieces = self.pieces.setdefault(name, [])

        def commit() -> None:
            self.committed[name] = b"".join(pieces)

        return pieces.append, commit


@dataclass
class MemoryStack:
    backend: Backend
    datasets: MemoryDatasets
    pipeline: MemoryPipeline
    registry: MemoryRegistry
    evaluator: MemoryEvaluator
    deployer: MemoryDeployer
    queue: InMemoryQueue
    reports: MemoryReports


def memory_stack() -> MemoryStack:
    records = InMemoryRecords()
    datasets, pipeline, registry = MemoryDatasets(), MemoryPipeline(), MemoryRegistry()
    evaluator, deployer, queue, reports = MemoryEvaluator(), MemoryDeployer(registry), InMemoryQueue(), MemoryReports()
    backend = Backend(datasets, BlobUploadLog(records), pipeline, registry, evaluator, deployer,
                      BlobPromotionLedger(records), MemoryServer(), records, queue, reports)
    return MemoryStack(backend, datasets, pipeline, registry, evaluator, deployer, queue, reports)
