"""Ensemble selection (Caruana et al., 2004): a weighted soft vote of the search's best configurations.

The library is the search's best distinct configurations (any learner) that were tried on every training row
and came within reach of the best; each is refit under 3-fold cross-validation on the training split, which
gives out-of-fold outputs for every training row. Greedy forward selection with replacement then adds,
round by round, the member whose addition lowers the vote's loss most (log loss, or RMSE for numbers); how
often a member was picked is its weight. The vote is kept only when it beats the best single configuration
on the primary metric over the same out-of-fold rows; otherwise the single model deploys, as it would have.
The cross-validation costs what one search trial of each member cost (FLAML logs it), so members are only
tried within what is left of the time budget.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shared import metrics
from shared.tasks import TaskKind

log = logging.getLogger(__name__)
MAX_MEMBERS = 6
MAX_LOSS_GAP = 0.15  # a configuration whose cross-validated loss is this much above the best adds only noise
ROUNDS = 20
SEED = 42


@dataclass(frozen=True)
class Selection:
    """What to deploy: a vote (``estimator``, unfitted) or the single best (``estimator`` None)."""

    estimator: Any
    weights: dict[str, float]  # member (learner) -> weight, summing to 1; empty for the single model
    oof: NDArray[np.float64]  # the chosen model's out-of-fold outputs on the training split
    scores: dict[str, float] = field(default_factory=dict)  # the primary metric out of fold: single, ensemble
    note: str = ""


def out_of_fold(estimator: Any, x: NDArray[np.float32], y: NDArray[Any], task: TaskKind) -> NDArray[np.float64]:
    """Each training row's output from the fold that did not see it, in the task's form (``TaskKind.outputs``)."""
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_predict

    method = "predict_proba" if task.predicts_classes else "predict"
    outputs = np.asarray(cross_val_predict(clone(estimator), x, y, cv=task.folds(3, SEED), method=method),
                         dtype=np.float64)
    return outputs if task.predicts_classes else outputs.reshape(-1, 1)


def greedy_weights(oofs: list[NDArray[np.float64]], loss: Callable[[NDArray[np.float64]], float],
                   rounds: int = ROUNDS) -> NDArray[np.float64]:
    """Forward selection with replacement: how often each member was picked, as shares of ``rounds``."""
    counts = np.zeros(len(oofs))
    total = np.zeros_like(oofs[0])
    for done in range(rounds):
        trial = [loss((total + oof) / (done + 1)) for oof in oofs]
        pick = int(np.argmin(trial))
        counts[pick] += 1
        total += oofs[pick]
    shares: NDArray[np.float64] = counts / counts.sum()
    return shares


def members(automl: Any, task: TaskKind, best: Any, seconds_left: float, trials: list[dict[str, Any]],
            most: int = MAX_MEMBERS) -> list[tuple[str, Any]]:
    """The library: the search's own best model first, then the best other distinct configurations tried on
    the whole training split, as unfitted estimators. One whose cross-validation (what its trial took) would
    overrun the budget is left out."""
    from flaml.automl.task.factory import task_factory
    from sklearn.base import clone

    full = max((t["sample_size"] or 0 for t in trials), default=0)
    scored = sorted((t for t in trials if t["cv_loss"] is not None and t["sample_size"] == full),
                    key=lambda t: float(t["cv_loss"]))
    if not scored or most < 2:
        return [(str(automl.best_estimator), clone(best))]
    lowest = float(scored[0]["cv_loss"])
    seen = {(str(automl.best_estimator), json.dumps(automl.best_config, sort_keys=True, default=str))}
    chosen: list[tuple[str, Any]] = [(str(automl.best_estimator), clone(best))]
    spent = float(scored[0]["seconds"] or 0)
    for trial in scored:
        name, config = str(trial["learner"]), dict(trial["config"] or {})
        config.pop("FLAML_sample_size", None)
        key = (name, json.dumps(config, sort_keys=True, default=str))
        if key in seen or float(trial["cv_loss"]) > abs(lowest) * (1 + MAX_LOSS_GAP):
            continue
        seen.add(key)
        cost = float(trial["seconds"] or 0)
        if spent + cost > seconds_left:
            continue  # its cross-validation would not fit in what is left of the budget
        wrapper = task_factory(str(task)).estimator_class_from_str(name)(task=str(task), **config)
        estimator = wrapper.estimator_class(**wrapper.params)
        if "n_jobs" in estimator.get_params():
            estimator.set_params(n_jobs=-1)
        chosen.append((f"{name}_{len(chosen)}", estimator))
        spent += cost
        if len(chosen) >= most:
            break
    return chosen


def vote(chosen: list[tuple[str, Any]], weights: NDArray[np.float64], task: TaskKind) -> Any:
    """An unfitted vote of the members with a weight (ONNX needs the weights as an array)."""
    kept = [(name, estimator) for (name, estimator), weight in zip(chosen, weights, strict=True) if weight > 0]
    return task.vote(kept, np.asarray([w for w in weights if w > 0], dtype=np.float64))


def select(automl: Any, task: TaskKind, x: NDArray[np.float32], y: NDArray[Any], metric: metrics.Metric,
           judge: Callable[[NDArray[np.float64]], float], seconds_left: float,
           trials: list[dict[str, Any]], most: int = MAX_MEMBERS) -> Selection:
    """Build the vote from the search's results and keep it only if it beats the single best out of fold.

    ``y`` holds class codes (or numbers); ``judge`` scores out-of-fold outputs on the primary metric.
    """
    best = automl.model.estimator
    started = time.perf_counter()
    chosen = members(automl, task, best, seconds_left, trials, most)
    if len(chosen) < 2:  # a classifier still needs its out-of-fold outputs, for the decision threshold
        oof = out_of_fold(best, x, y, task) if task.predicts_classes else np.empty((0, 1))
        why = "ensembles are switched off (AUTOML_ENSEMBLE_MEMBERS=1)" if most < 2 else \
            "no other configuration came close enough to the best within the time budget"
        return Selection(None, {}, oof, {}, f"No ensemble: {why}.")
    oofs = [out_of_fold(estimator, x, y, task) for _, estimator in chosen]
    single = judge(oofs[0])
    weights = greedy_weights(oofs, task.fold_loss(y))
    blended = np.tensordot(weights, np.stack(oofs), axes=1)
    ensemble = judge(blended)
    scores = {"single": round(single, 6), "ensemble": round(ensemble, 6)}
    shares = {name: round(float(w), 4) for (name, _), w in zip(chosen, weights, strict=True) if w > 0}
    listed = ", ".join(f"{name} {share:.0%}" for name, share in shares.items())
    took = time.perf_counter() - started
    if len(shares) > 1 and ensemble != single and metrics.better(metric, ensemble, single):
        return Selection(vote(chosen, weights, task), shares, blended, scores,
                         f"Ensemble kept: a soft vote of {listed} has out-of-fold {metric.name} {ensemble:.4f} "
                         f"against {single:.4f} for {chosen[0][0]} alone ({took:.0f}s to build).")
    return Selection(None, {}, oofs[0], scores,
                     f"No ensemble: the best vote ({listed}) has out-of-fold {metric.name} {ensemble:.4f}, not "
                     f"better than {single:.4f} for {chosen[0][0]} alone.")
