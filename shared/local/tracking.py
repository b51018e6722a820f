"""MLflow (SQLite store) for the local backend: runs, trials and the model registry."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.local.pipeline import StoredRequest

log = logging.getLogger(__name__)
_opened: set[str] = set()
_opening = threading.Lock()


def tracking_uri(state_dir: Path) -> str:
    return f"sqlite:///{state_dir / 'mlflow.db'}"


def configure(state_dir: Path) -> Any:
    """Point MLflow at the local store; returns the mlflow module (imported lazily: it is slow)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no usage reports leave this machine
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(state_dir))
    mlflow.set_registry_uri(tracking_uri(state_dir))
    _open_stores(mlflow, state_dir)
    return mlflow


def _open_stores(mlflow: Any, state_dir: Path) -> None:
    """Open MLflow's stores once per process, one process at a time.

    Opening a store creates or migrates its tables; two processes (the host's
    deployment steps and a training child) doing it at the same moment on the
    same file fail with "table ... already exists". MLflow caches the opened
    stores, so the lock is taken once per process.
    """
    uri = tracking_uri(state_dir)
    with _opening:
        if uri in _opened:
            return
        state_dir.mkdir(parents=True, exist_ok=True)
        with open(state_dir / "mlflow.db.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
                client.search_experiments(max_results=1)
                client.search_registered_models(max_results=1)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        _opened.add(uri)


def experiment_id(mlflow: Any, state_dir: Path, name: str) -> str:
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = (state_dir / "mlartifacts" / name).as_uri()
    return str(mlflow.create_experiment(name, artifact_location=location))


def log_run(state_dir: Path, run_id: str, model_name: str, run_dir: Path, outcome: Any, request: StoredRequest,
            signature_example: Any) -> str:
    """Record the finished training as an MLflow run with its model; returns the MLflow run id."""
    mlflow = configure(state_dir)
    import onnx

    exp = experiment_id(mlflow, state_dir, model_name)
    with mlflow.start_run(experiment_id=exp, run_name=run_id, tags={"pipeline_run_id": run_id}) as active:
        mlflow.log_params({"best_learner": outcome.best_learner, "primary_metric": request.metric,
                           "time_budget_s": request.time_budget_s, "threshold": outcome.threshold,
                           "dataset": f"{request.dataset_name}:{request.dataset_version}",
                           "model_format": outcome.model_format})
        mlflow.log_params({f"config.{k}": v for k, v in outcome.best_config.items()})
        mlflow.log_metrics({f"validation_{k}": v for k, v in outcome.validation_metrics.items()})
        mlflow.log_metrics({f"time_{k}": v for k, v in outcome.timings.items()})
        best = float("inf")
        for step, trial in enumerate(outcome.trials):
            if trial["cv_loss"] is not None:  # log loss, or RMSE for regression (``search.loss``)
                best = min(best, float(trial["cv_loss"]))
                mlflow.log_metric("trial_cv_loss", float(trial["cv_loss"]), step=step)
                mlflow.log_metric("best_cv_loss", best, step=step)
        for name in ("trials.json", "model_meta.json"):
            mlflow.log_artifact(str(run_dir / name))
        if outcome.model_format == "forecaster":  # no MLflow flavour holds it: the pickle, as the run's artefact
            mlflow.log_artifact(str(run_dir / "model.pkl"), artifact_path="model")
        elif outcome.model_format == "onnx":
            mlflow.onnx.log_model(onnx.load(str(run_dir / "model.onnx")), name="model",
                                  input_example=signature_example)
        else:
            import joblib

            mlflow.sklearn.log_model(joblib.load(run_dir / "model.pkl"), name="model",
                                     serialization_format="cloudpickle")
        return str(active.info.run_id)
