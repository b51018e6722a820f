"""One training run, start to finish: dataset version in, model artefacts and the run's result out.

It knows nothing of queues or events: the worker runs it in a child process and
records what it returns (``shared.local.run_queue``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.local.pipeline import StoredRequest
from shared.ports import RunInfo


def train(state_dir: Path, run: RunInfo, request: StoredRequest,
          on_progress: Callable[[dict[str, object]], None]) -> dict[str, Any]:
    """Train ``run`` on its dataset version; returns the run's result (metrics, artefact folder, leaderboard).

    Writes the model's artefacts under ``runs/<run_id>/`` and logs the MLflow run; raises on failure.
    """
    from shared.local import tracking
    from shared.local.datasets import LocalDatasetRegistry
    from shared.settings import Settings

    started = time.time()
    settings = Settings.from_env()
    budget = float(request.time_budget_s)
    progress: dict[str, Any] = {"step": "validate", "trials": 0, "elapsed_s": 0, "budget_s": budget}

    def report(**changes: Any) -> None:
        progress.update(changes, elapsed_s=round(time.time() - started, 1))
        on_progress(progress)

    report()
    dataset = LocalDatasetRegistry(state_dir).get(run.dataset_name, run.dataset_version)
    if dataset is None:
        raise LookupError(f"dataset {run.dataset_name}:{run.dataset_version} is not registered")
    path = Path(dataset.uri.removeprefix("file://"))
    run_dir = state_dir / "runs" / run.run_id
    if not dataset.schema.task.tabular:
        meta, frame, outcome, schema = _forecaster(path, dataset.schema, request, run_dir, budget, report)
    else:
        meta, frame, outcome, schema = _tabular(path, dataset, request, run_dir, settings, budget, started, report)
    meta.update({"model_name": run.model_name, "run_id": run.run_id, "metric": request.metric,
                 # Excluded at training time: still accepted (and ignored) when scoring, so clients keep one shape.
                 "ignored_columns": list(request.excluded_columns),
                 "dataset": {"name": run.dataset_name, "version": run.dataset_version}})
    (run_dir / "model_meta.json").write_text(json.dumps(meta, indent=1, default=str))
    mlflow_run_id = tracking.log_run(state_dir, run.run_id, run.model_name, run_dir, outcome, request,
                                     frame[[c.name for c in schema.features if c.name in frame]].head(1))
    return {
        "best_learner": outcome.best_learner, "best_config": outcome.best_config,
        "threshold": outcome.threshold, "classes": outcome.classes,
        "validation_metrics": outcome.validation_metrics,
        "primary_metric": {"name": request.metric,
                           "value": outcome.validation_metrics[_metric_key(request.metric)]},
        "model_format": outcome.model_format, "notes": outcome.notes, "timings": outcome.timings,
        "trials": len(outcome.trials), "artifact_dir": str(run_dir), "mlflow_run_id": mlflow_run_id,
        "leaderboard": _leaderboard(outcome.trials), "feature_importance": outcome.importance, "task": str(schema.task),
        "fit_rows": outcome.fit_rows, "search": outcome.search, "ensemble": outcome.ensemble,
    }


Report = Callable[..., None]


def _tabular(path: Path, dataset: Any, request: StoredRequest, run_dir: Path, settings: Any, budget: float,
             started: float, report: Report) -> tuple[dict[str, Any], Any, Any, Any]:
    """The tabular search (``shared.local.automl``); returns the model's description, the rows it trained on,
    the outcome and the schema it used."""
    from shared import dataset_validation, drift
    from shared.local import artifacts, automl, sampling
    from shared.model_contract import columns_from_frame

    everything: sampling.StoredRows | None = None
    if dataset.rows > settings.search_rows:
        # Too many rows to hold as a frame and search on: a sample for the search, the rest read again for the
        # refit. Reading it counts against the budget, so that the whole run keeps to it.
        everything = sampling.StoredRows(path, dataset.schema)
        frame = everything.sample(settings.search_rows)
        schema = dataset.schema.without(set(request.excluded_columns))
        budget = max(budget - (time.time() - started), budget / 2)
    else:
        content = path.read_bytes()
        validated = dataset_validation.validate(content, request.target, max_bytes=len(content) + 1,
                                                min_rows=1, task=dataset.schema.task.name)
        frame = validated.frame
        schema = validated.schema.without(set(request.excluded_columns))

    def on_trial(trials: list[dict[str, Any]]) -> None:
        scored = [t for t in trials if t["cv_loss"] is not None]
        best = min(scored, key=lambda t: t["cv_loss"]) if scored else None
        report(trials=len(trials), best_cv_loss=best["cv_loss"] if best else None,
               best_learner=best["learner"] if best else None, loss=schema.task.search_loss)

    # Excluded columns stay in the stored validation split: a champion that uses them can still be scored.
    outcome = automl.train(frame, schema, request.metric, budget, run_dir, on_trial=on_trial,
                           on_step=lambda step: report(step=step),
                           ensemble_members=settings.ensemble_members, everything=everything)
    report(step="register", trials=len(outcome.trials))
    meta = {**automl.describe(outcome, schema), "example": {c.name: _example_value(frame, c.name)
                                                             for c in schema.features}}
    if not schema.task.predicts_classes:  # the reference for the predictions: the deployed model's own on these rows
        deployed = artifacts.load(run_dir)
        meta["drift_baseline"] = drift.baseline(frame, schema.features, predictions=deployed.predict(
            columns_from_frame(frame, deployed.signature)))
    else:
        labels = frame[schema.target].astype(str).str.strip()
        meta["drift_baseline"] = drift.baseline(frame, schema.features,
                                                float((labels == str(outcome.classes[-1])).mean()))
    return meta, frame, outcome, schema


def _forecaster(path: Path, stored: Any, request: StoredRequest, run_dir: Path, budget: float, report: Report
                ) -> tuple[dict[str, Any], Any, Any, Any]:
    """A forecaster (``shared.local.forecast_training``), with the same returns as ``_tabular``."""
    import numpy as np

    from shared import drift
    from shared.forecasting import upload
    from shared.local import artifacts, automl, forecast_training

    schema = stored.without(set(request.excluded_columns))
    spec = upload.spec_of(stored, stored.time_series, request.excluded_columns)
    with path.open("rb") as source:
        frame = upload.read_series(source, stored, spec, max_bytes=path.stat().st_size + 1)
    outcome, final = forecast_training.train(frame, schema, spec, request.metric, run_dir,
                                             lambda step: report(step=step), budget)
    report(step="register", trials=len(outcome.trials))
    features = forecast_training.features(stored, spec)
    meta = {**automl.describe(outcome, schema), "features": [
        {"name": c.name, "kind": c.kind, "categories": list(c.categories)} for c in features],
        "time_series": stored.time_series.to_dict(), "example": forecast_training.example(final, features),
        # Drift watches the forecasts, held against the judged fit's on the validation windows.
        "drift_baseline": drift.baseline(frame, features, predictions=np.load(run_dir / artifacts.JUDGED_OUTPUTS))}
    return meta, frame, outcome, schema


def _metric_key(name: str) -> str:
    from shared import metrics

    return metrics.resolve(name).name


def _example_value(frame: Any, column: str) -> Any:
    present = frame[column].dropna()
    if present.empty:
        return None
    value = present.iloc[0]
    return value.item() if hasattr(value, "item") else value


def _leaderboard(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    best: dict[str, dict[str, Any]] = {}
    for trial in trials:
        loss = trial["cv_loss"]
        if loss is None:
            continue
        current = best.get(trial["learner"])
        if current is None or loss < current["cv_loss"]:
            best[trial["learner"]] = {"learner": trial["learner"], "cv_loss": loss, "trial": trial["trial"]}
    return sorted(best.values(), key=lambda t: t["cv_loss"])
