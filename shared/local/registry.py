"""Local model registry on MLflow: one registered model per name, versions tagged with lineage."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from shared.local import tracking
from shared.ports import ModelRegistry, ModelVersion, RunInfo

DELETED = "Deleted_Internal"  # the stage MLflow's SQL store gives a deleted version


def _to_version(mv: Any) -> ModelVersion:
    tags = dict(mv.tags or {})
    metrics = {k.removeprefix("metric."): float(v) for k, v in tags.items() if k.startswith("metric.")}
    return ModelVersion(
        name=mv.name, version=str(mv.version), run_id=tags.get("pipeline_run_id", ""),
        metric=tags.get("primary_metric", ""), metrics=metrics, dataset_name=tags.get("dataset_name", ""),
        dataset_version=int(tags.get("dataset_version", "0") or 0), artifact_uri=tags.get("artifact_dir", ""),
        tags={k: v for k, v in tags.items() if not k.startswith("metric.")},
    )


class MlflowModelRegistry(ModelRegistry):
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            mlflow = tracking.configure(self.state_dir)
            self._client = mlflow.MlflowClient(tracking.tracking_uri(self.state_dir),
                                               registry_uri=tracking.tracking_uri(self.state_dir))
        return self._client

    def _ensure_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            # A concurrent call may create it first: that is fine.
            with contextlib.suppress(MlflowException):
                self.client.create_registered_model(name, description=f"AutoML model trained on datasets/{name}/")

    def register(self, run: RunInfo) -> ModelVersion:
        existing = self.find_by_run(run.model_name, run.run_id)
        if existing is not None:
            return existing
        result = run.result
        self._ensure_model(run.model_name)
        mlflow_run = result["mlflow_run_id"]
        tags = {
            "pipeline_run_id": run.run_id, "primary_metric": run.metric,
            "dataset_name": run.dataset_name, "dataset_version": str(run.dataset_version),
            "artifact_dir": result["artifact_dir"], "model_format": result["model_format"],
            "best_learner": result["best_learner"], "run_created_at": run.created_at,
            # Global importance, strongest first: what the model relies on, for every registered version.
            "feature_importance": json.dumps(dict(list(result.get("feature_importance", {}).items())[:10])),
            **{f"metric.{k}": str(v) for k, v in result["validation_metrics"].items()},
        }
        created = self.client.create_model_version(run.model_name, f"runs:/{mlflow_run}/model", run_id=mlflow_run,
                                                   tags=tags)
        return _to_version(self.client.get_model_version(run.model_name, created.version))

    def find_by_run(self, model_name: str, run_id: str) -> ModelVersion | None:
        found = self.client.search_model_versions(f"name = '{model_name}' and tags.pipeline_run_id = '{run_id}'")
        return _to_version(found[0]) if found else None

    def get(self, model_name: str, version: str) -> ModelVersion | None:
        from mlflow.exceptions import MlflowException

        try:
            return _to_version(self.client.get_model_version(model_name, version))
        except MlflowException:
            return None

    def tag(self, model: ModelVersion, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(model.name, model.version, key, value)

    def set_alias(self, model: ModelVersion, alias: str) -> None:
        self.client.set_registered_model_alias(model.name, alias, model.version)

    def list_versions(self, model_name: str | None = None) -> list[ModelVersion]:
        """Read from the store's tables, without loading MLflow: the status API lists versions every time it is
        asked, and MLflow would cost the host process some 70 MB it keeps (the SQL layer, scipy) before any model
        exists. The same versions ``search_model_versions`` finds: every one not deleted."""
        versions = [_to_version(mv) for mv in self._stored_versions(model_name)]
        return sorted(versions, key=lambda v: (v.name, int(v.version)))

    def _stored_versions(self, model_name: str | None) -> list[Any]:
        path = tracking.tracking_uri(self.state_dir).removeprefix("sqlite:///")
        if not Path(path).exists():
            return []  # nothing was ever registered (the first write creates the store)
        try:
            with contextlib.closing(sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True)) as db:
                rows = db.execute("SELECT name, version FROM model_versions WHERE current_stage != ? "
                                  "AND (? IS NULL OR name = ?)", (DELETED, model_name, model_name)).fetchall()
                tags: dict[tuple[str, int], dict[str, str]] = {(name, version): {} for name, version in rows}
                for key, value, name, version in db.execute(
                        "SELECT key, value, name, version FROM model_version_tags WHERE ? IS NULL OR name = ?",
                        (model_name, model_name)):
                    if (name, version) in tags:
                        tags[(name, version)][key] = value
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):  # the store is being created (by a training run): nothing registered
                return []
            # Of another schema (an MLflow that migrates it), or locked for longer than the wait: MLflow reads it.
            query = f"name = '{model_name}'" if model_name else ""
            return list(self.client.search_model_versions(query))
        return [SimpleNamespace(name=name, version=version, tags=tags[(name, version)]) for name, version in rows]
