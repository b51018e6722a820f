"""Models in the Azure ML registry: the best child's MLflow model, registered by reference with lineage tags."""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.azure import entities
from shared.ports import ModelRegistry, ModelVersion, RunInfo


def to_version(model: Any) -> ModelVersion:
    tags = dict(model.tags or {})
    scores = {k.removeprefix("metric."): float(v) for k, v in tags.items() if k.startswith("metric.")}
    return ModelVersion(
        name=tags.get("model", model.name), version=str(model.version), run_id=tags.get("pipeline_run_id", ""),
        metric=tags.get("primary_metric", ""), metrics=scores, dataset_name=tags.get("dataset_name", ""),
        dataset_version=int(tags.get("dataset_version", "0") or 0), artifact_uri=str(model.path),
        tags={k: v for k, v in tags.items() if not k.startswith("metric.")})


def lineage_tags(run: RunInfo) -> dict[str, str]:
    primary = run.result.get("primary_metric", {})
    tags = {"model": run.model_name, "pipeline_run_id": run.run_id,
            "automl_run_id": str(run.result.get("automl_run_id", "")),
            "best_child_run_id": str(run.result.get("best_child_run_id", "")),
            "best_learner": str(run.result.get("best_learner") or ""), "primary_metric": run.metric,
            "dataset_name": run.dataset_name, "dataset_version": str(run.dataset_version),
            "upload_id": run.upload_id or "", "run_created_at": run.created_at,
            # Left out of training: the scoring proxy accepts them and does not forward them.
            "excluded_columns": ",".join(run.excluded_columns),
            # The curated environment AutoML trained in: the deployment serves the model there.
            "inference_environment": str(run.result.get("inference_environment") or "")}
    if primary.get("value") is not None:
        tags[f"metric.{primary['name']}"] = str(primary["value"])
    return tags


class AzureModelRegistry(ModelRegistry):
    def __init__(self, ml: Any) -> None:
        self.ml = ml

    def register(self, run: RunInfo) -> ModelVersion:
        existing = self.find_by_run(run.model_name, run.run_id)
        if existing is not None:
            return existing
        best = run.result.get("best_child_run_id")
        if not best:
            raise ValueError(f"run {run.run_id} names no best child run: nothing to register")
        # No version given: the registry assigns the next one.
        model = entities.model_asset(run.model_name, str(best), lineage_tags(run))
        return to_version(self.ml.models.create_or_update(model))

    def find_by_run(self, model_name: str, run_id: str) -> ModelVersion | None:
        return next((v for v in self.list_versions(model_name) if v.run_id == run_id), None)

    def get(self, model_name: str, version: str) -> ModelVersion | None:
        try:
            return to_version(self.ml.models.get(entities.asset_name(model_name), version=version))
        except ResourceNotFoundError:
            return None

    def tag(self, model: ModelVersion, tags: dict[str, str]) -> None:
        found = self.ml.models.get(entities.asset_name(model.name), version=model.version)
        found.tags = {**(found.tags or {}), **tags}
        self.ml.models.create_or_update(found)

    def list_versions(self, model_name: str | None = None) -> list[ModelVersion]:
        found = [to_version(m) for m in entities.app_assets(self.ml.models, model_name)]
        return sorted(found, key=lambda v: (v.name, -int(v.version) if v.version.isdigit() else 0))
