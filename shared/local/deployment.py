"""Local deployment: a pointer file per model, swapped atomically, plus the MLflow ``production`` alias.

The scorer reads only the pointer (no MLflow import on the hot path); an
artefact is loaded and checked before the pointer moves, so a broken model never
serves.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from shared import faults, metrics
from shared.errors import ArtifactUnusable
from shared.local import artifacts
from shared.local.registry import MlflowModelRegistry
from shared.model_contract import columns_from_frame
from shared.ports import Deployer, Evaluator, ModelVersion, RunInfo

PRODUCTION_ALIAS = "production"


def deployments_dir(state_dir: Path) -> Path:
    return state_dir / "deployments"


def read_pointer(state_dir: Path, model_name: str) -> ModelVersion | None:
    path = deployments_dir(state_dir) / f"{model_name}.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return ModelVersion(**data)


class LocalDeployer(Deployer):
    """One slot per model version: staged beside the pointer, checked, then swapped in with one rename."""

    def __init__(self, state_dir: Path, registry: MlflowModelRegistry) -> None:
        self.state_dir = state_dir
        self.registry = registry

    def _staged(self, model: ModelVersion) -> Path:
        return deployments_dir(self.state_dir) / f".{model.name}.v{model.version}.staged"

    def ensure_endpoint(self, model: ModelVersion) -> bool:
        deployments_dir(self.state_dir).mkdir(parents=True, exist_ok=True)
        return True  # the local host serves every model from its pointer file

    def begin(self, model: ModelVersion, slot: str | None) -> str:
        load_checked(model)  # a model whose files do not load is refused before anything is staged
        staged = self._staged(model)
        temporary = staged.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(asdict(model)))
        os.replace(temporary, staged)
        faults.crash_point("deploy.staged")
        return f"v{model.version}"

    def ready(self, model: ModelVersion, slot: str) -> bool:
        return True

    def smoke_test(self, model: ModelVersion, slot: str) -> None:
        loaded = load_checked(model)
        try:  # refuse what cannot predict its own example row
            example = pd.DataFrame([dict(loaded.signature.example)])
            loaded.predict(columns_from_frame(example, loaded.signature))
        except Exception as error:
            raise ArtifactUnusable(f"v{model.version} cannot predict its example row: {error}") from error

    def switch(self, model: ModelVersion, slot: str) -> tuple[bool, str | None]:
        current = read_pointer(self.state_dir, model.name)
        previous = f"v{current.version}" if current is not None else None
        staged = self._staged(model)
        if staged.exists():
            os.replace(staged, deployments_dir(self.state_dir) / f"{model.name}.json")
        elif current is None or current.version != model.version:
            raise FileNotFoundError(f"{staged} is gone and v{model.version} does not serve")  # retried from a copy
        self.registry.set_alias(model, PRODUCTION_ALIAS)
        return True, previous if previous != slot else None

    def cleanup(self, model: ModelVersion, slot: str, previous: str | None) -> None:
        """Earlier versions stay registered: rolling back is deploying one again."""

    def production(self, model_name: str) -> ModelVersion | None:
        return read_pointer(self.state_dir, model_name)


def load_checked(model: ModelVersion, judged: bool = False) -> artifacts.LoadedModel:
    """The deployed model, or with ``judged`` the fit its validation scores describe."""
    try:
        return (artifacts.load_judged if judged else artifacts.load)(model.artifact_uri)
    except Exception as error:
        raise ArtifactUnusable(f"v{model.version} cannot be loaded: {type(error).__name__}: {error}") from error


class LocalEvaluator(Evaluator):
    def score(self, model: ModelVersion, run: RunInfo) -> float | None:
        validation = Path(run.result["artifact_dir"]) / "validation.csv"
        frame = pd.read_csv(validation, keep_default_na=True)
        # Both models as they were judged: a refit has seen its own validation rows. A run's own model on its own
        # rows has its judged fit's outputs recorded by training: only the model that deploys is loaded (checked),
        # not that fit with scikit-learn, which would stay in the host's memory.
        recorded = Path(run.result["artifact_dir"]) / artifacts.JUDGED_OUTPUTS
        own = Path(model.artifact_uri) == Path(run.result["artifact_dir"]) and recorded.exists()
        loaded = load_checked(model, judged=not own)
        signature = loaded.signature
        missing = [name for name in signature.names if name not in frame.columns]
        target = signature.target
        if missing or target not in frame.columns:
            return None
        metric = metrics.resolve(run.metric)
        ran_as = run.result.get("task")  # absent from runs recorded before tasks were named
        if (ran_as and signature.task != ran_as) or metric.task != signature.task.metric_family:
            return None  # a model of another task (the target was read otherwise): it cannot be compared
        classes = list(signature.classes)
        if signature.regression:
            y = pd.to_numeric(frame[target], errors="coerce").to_numpy(dtype=float)
        else:
            y = frame[target].astype(str).to_numpy(dtype=object)
            if set(y) - set(classes):
                return None  # labels the model has never seen: it cannot be compared
        if own:
            outputs = np.load(recorded)
        elif not signature.task.tabular:
            outputs = _same_windows(model, run, frame)
            if outputs is None:
                return None
        else:
            outputs = loaded.predict(columns_from_frame(frame, signature))
        return metric.compute(y, outputs, classes, signature.threshold if signature.threshold is not None else 0.5)


def _same_windows(champion: ModelVersion, run: RunInfo, window: pd.DataFrame) -> np.ndarray | None:
    """A forecasting champion's forecasts of the challenger's validation windows: its method refit on the
    history the challenger's judged fit had (the same series up to the same cut-off), so both forecast the same
    periods from the same data. None when the two forecast differently (another horizon, series or features)."""
    import joblib

    from shared.local.automl import HOLDOUT_DIR

    try:
        theirs = joblib.load(Path(champion.artifact_uri) / HOLDOUT_DIR / "model.pkl")
        ours = joblib.load(Path(run.result["artifact_dir"]) / HOLDOUT_DIR / "model.pkl")
    except Exception as error:
        raise ArtifactUnusable(f"v{champion.version}'s judged forecaster cannot be loaded: {error}") from error
    if theirs.spec != ours.spec or theirs.frequency.name != ours.frequency.name:
        return None
    return np.asarray(ours.refit_as(theirs.chosen).predict(window), dtype=np.float64).reshape(-1, 1)
