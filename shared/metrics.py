"""Primary metrics, named as Azure AutoML names them, computed from probabilities."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Metric:
    name: str
    greater_is_better: bool
    needs_threshold: bool  # computed from labels, so a decision threshold matters
    compute: Callable[[NDArray[Any], NDArray[np.float64], list[Any], float], float]


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
    )
}
ALIASES = {"auc": "AUC_weighted", "roc_auc": "AUC_weighted", "auc_weighted": "AUC_weighted",
           "f1_weighted": "f1_score_weighted", "logloss": "log_loss"}


def resolve(name: str) -> Metric:
    """The metric called ``name`` (Azure AutoML names, case-insensitive), or ValueError listing the choices."""
    for candidate in (name, ALIASES.get(name.lower(), "")):
        for known in METRICS:
            if known.lower() == candidate.lower():
                return METRICS[known]
    raise ValueError(f"unknown primary metric {name!r}; choose one of {', '.join(METRICS)}")


def all_metrics(y: NDArray[Any], proba: NDArray[np.float64], classes: list[Any], threshold: float) -> dict[str, float]:
    return {name: metric.compute(y, proba, classes, threshold) for name, metric in METRICS.items()}


def better(metric: Metric, challenger: float, champion: float) -> bool:
    """True when the challenger is at least as good as the champion."""
    return challenger >= champion if metric.greater_is_better else challenger <= champion
