"""Primary metrics, named as Azure AutoML names them: from class probabilities, or from predicted numbers.

Regression errors are normalised by the range of the true values, as Azure AutoML does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shared.tasks import CLASSIFICATION, Task, TaskKind, kind_of


@dataclass(frozen=True)
class Metric:
    name: str
    greater_is_better: bool
    needs_threshold: bool  # computed from labels, so a decision threshold matters
    # (true values, model outputs, classes, threshold): the outputs are class probabilities (rows x classes),
    # or for regression the predictions (rows x 1)
    compute: Callable[[NDArray[Any], NDArray[np.float64], list[Any], float], float]
    task: Task = Task.CLASSIFICATION  # which task's models it judges (``shared.tasks``)


def _labels(proba: NDArray[np.float64], classes: list[Any], threshold: float) -> NDArray[Any]:
    if len(classes) == 2:
        labels: NDArray[Any] = np.where(proba[:, 1] >= threshold, classes[1], classes[0])
        return labels
    chosen: NDArray[Any] = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    return chosen


def _accuracy(y: NDArray[Any], proba: NDArray[np.float64], classes: list[Any], t: float) -> float:
    return float(np.mean(_labels(proba, classes, t) == y))


def _auc_weighted(y: NDArray[Any], proba: NDArray[np.float64], classes: list[Any], t: float) -> float:
    from sklearn.metrics import roc_auc_score

    if len(classes) == 2:
        return float(roc_auc_score(y == classes[1], proba[:, 1]))
    return float(roc_auc_score(y, proba, multi_class="ovr", average="weighted", labels=classes))


def _f1(y: NDArray[Any], proba: NDArray[np.float64], classes: list[Any], t: float) -> float:
    from sklearn.metrics import f1_score

    average = "binary" if len(classes) == 2 else "macro"
    pos = classes[1] if len(classes) == 2 else 1
    return float(f1_score(y, _labels(proba, classes, t), average=average, pos_label=pos, labels=classes))


def _f1_weighted(y: NDArray[Any], proba: NDArray[np.float64], classes: list[Any], t: float) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, _labels(proba, classes, t), average="weighted", labels=classes))


def _precision_weighted(y: NDArray[Any], proba: NDArray[np.float64], classes: list[Any], t: float) -> float:
    from sklearn.metrics import precision_score

    return float(precision_score(y, _labels(proba, classes, t), average="weighted", labels=classes, zero_division=0))


def _average_precision_weighted(y: NDArray[Any], proba: NDArray[np.float64], classes: list[Any], t: float) -> float:
    from sklearn.metrics import average_precision_score

    if len(classes) == 2:
        return float(average_precision_score(y == classes[1], proba[:, 1]))
    onehot = np.stack([y == c for c in classes], axis=1)
    return float(average_precision_score(onehot, proba, average="weighted"))


def _norm_macro_recall(y: NDArray[Any], proba: NDArray[np.float64], classes: list[Any], t: float) -> float:
    from sklearn.metrics import recall_score

    macro = float(recall_score(y, _labels(proba, classes, t), average="macro", labels=classes, zero_division=0))
    chance = 1 / len(classes)
    return (macro - chance) / (1 - chance)


def _log_loss(y: NDArray[Any], proba: NDArray[np.float64], classes: list[Any], t: float) -> float:
    from sklearn.metrics import log_loss

    return float(log_loss(y, np.clip(proba, 1e-15, 1 - 1e-15), labels=classes))


def _predictions(outputs: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(outputs, dtype=np.float64).reshape(-1)


def _spread(y: NDArray[Any]) -> float:
    values = np.asarray(y, dtype=np.float64)
    spread = float(values.max() - values.min()) if len(values) else 0.0
    return spread if spread > 0 else 1.0


def _r2(y: NDArray[Any], outputs: NDArray[np.float64], classes: list[Any], t: float) -> float:
    from sklearn.metrics import r2_score

    return float(r2_score(np.asarray(y, dtype=np.float64), _predictions(outputs)))


def _nrmse(y: NDArray[Any], outputs: NDArray[np.float64], classes: list[Any], t: float) -> float:
    from sklearn.metrics import root_mean_squared_error

    return float(root_mean_squared_error(np.asarray(y, dtype=np.float64), _predictions(outputs))) / _spread(y)


def _nmae(y: NDArray[Any], outputs: NDArray[np.float64], classes: list[Any], t: float) -> float:
    from sklearn.metrics import mean_absolute_error

    return float(mean_absolute_error(np.asarray(y, dtype=np.float64), _predictions(outputs))) / _spread(y)


def _spearman(y: NDArray[Any], outputs: NDArray[np.float64], classes: list[Any], t: float) -> float:
    from scipy.stats import spearmanr

    truth, predicted = np.asarray(y, dtype=np.float64), _predictions(outputs)
    if np.ptp(truth) == 0 or np.ptp(predicted) == 0:
        return 0.0  # a constant ranks nothing (and SciPy would answer NaN)
    return float(spearmanr(truth, predicted).statistic)


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", True, True, _accuracy),
        Metric("AUC_weighted", True, False, _auc_weighted),
        Metric("f1", True, True, _f1),
        Metric("f1_score_weighted", True, True, _f1_weighted),
        Metric("precision_score_weighted", True, True, _precision_weighted),
        Metric("average_precision_score_weighted", True, False, _average_precision_weighted),
        Metric("norm_macro_recall", True, True, _norm_macro_recall),
        Metric("log_loss", False, False, _log_loss),
        Metric("normalized_root_mean_squared_error", False, False, _nrmse, Task.REGRESSION),
        Metric("r2_score", True, False, _r2, Task.REGRESSION),
        Metric("normalized_mean_absolute_error", False, False, _nmae, Task.REGRESSION),
        Metric("spearman_correlation", True, False, _spearman, Task.REGRESSION),
    )
}
ALIASES = {"auc": "AUC_weighted", "roc_auc": "AUC_weighted", "auc_weighted": "AUC_weighted",
           "f1_weighted": "f1_score_weighted", "logloss": "log_loss", "nrmse": "normalized_root_mean_squared_error",
           "r2": "r2_score", "nmae": "normalized_mean_absolute_error", "spearman": "spearman_correlation"}


def resolve(name: str) -> Metric:
    """The metric called ``name`` (Azure AutoML names, case-insensitive), or ValueError listing the choices."""
    for candidate in (name, ALIASES.get(name.lower(), "")):
        for known in METRICS:
            if known.lower() == candidate.lower():
                return METRICS[known]
    raise ValueError(f"unknown primary metric {name!r}; choose one of {', '.join(METRICS)}")


def for_task(name: str | None, task: TaskKind | str, configured: str) -> Metric:
    """The primary metric of a run: ``name`` when given (ValueError when it is another task's), else the
    ``configured`` default when it suits the task, else the task's own default (Azure AutoML's)."""
    kind = kind_of(task)
    if name:
        metric = resolve(name)
        if metric.task != kind.metric_family:
            choices = ", ".join(m.name for m in of_task(kind))
            raise ValueError(f"primary metric {metric.name} is for {metric.task}, and this is {kind}; "
                             f"choose one of {choices}")
        return metric
    fallback = resolve(configured)
    return fallback if fallback.task == kind.metric_family else resolve(kind.default_metric)


def all_metrics(y: NDArray[Any], outputs: NDArray[np.float64], classes: list[Any], threshold: float,
                task: TaskKind | str = CLASSIFICATION) -> dict[str, float]:
    return {metric.name: metric.compute(y, outputs, classes, threshold) for metric in of_task(task)}


def of_task(task: TaskKind | str) -> tuple[Metric, ...]:
    """The metrics that judge ``task``'s models."""
    family = kind_of(task).metric_family
    return tuple(m for m in METRICS.values() if m.task == family)


def better(metric: Metric, challenger: float, champion: float) -> bool:
    """True when the challenger is at least as good as the champion."""
    return challenger >= champion if metric.greater_is_better else challenger <= champion
