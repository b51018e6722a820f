"""Per-row contributions of each input column, from the native model (the ONNX file has no such output).

Gradient-boosted trees give them natively in log-odds (LightGBM ``pred_contrib``,
XGBoost ``pred_contribs``: exact TreeSHAP values). Forests are decomposed path by
path in probability, and linear models are coefficient x value; in every case
the contributions plus the base value add up to the model's own output. For a
regressor that output is the predicted number itself ("value"). A soft vote is
explained in probability: each log-odds member's contributions are rescaled so
that they add up to its probability (in proportion to their log-odds share),
then the members' contributions are averaged with the vote's weights.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray


class Explainer:
    def __init__(self, folder: Path, sources: Mapping[str, str] | None = None) -> None:
        """``sources``: model input -> the column it comes from, where they differ (a date's parts)."""
        import joblib

        pipeline = joblib.load(folder / "model.pkl")
        self.prep = pipeline.named_steps["prep"]
        self.model = pipeline.named_steps["model"]
        self.names = [str(n).split("__", 1)[-1] for n in self.prep.get_feature_names_out()]
        self._encode = self._encoders()
        # A date column is several model inputs; its contribution is theirs summed, under the column's name.
        self.columns = [(sources or {}).get(name, name) for name in self.names]

    def _encoders(self) -> list[Any] | None:
        """The fitted preprocessing as plain lookups: building a DataFrame for sklearn would cost milliseconds
        a request. None when the preprocessing is not the usual codes-and-medians (then sklearn does it)."""
        steps: list[Any] = []
        for kind, transformer, columns in self.prep.transformers_:
            if kind == "text":
                for column, categories in zip(columns, transformer.categories_, strict=True):
                    steps.append((column, {str(c): float(i) for i, c in enumerate(categories)}))
            elif kind == "numbers":
                steps += [(column, float(median)) for column, median in zip(columns, transformer.statistics_,
                                                                             strict=True)]
            elif kind != "remainder":
                return None
        return steps if len(steps) == len(self.names) else None

    def _transform(self, columns: dict[str, NDArray[Any]]) -> NDArray[np.float32]:
        if self._encode is None:
            import pandas as pd

            frame = pd.DataFrame({name: values.reshape(-1) for name, values in columns.items()})
            return np.asarray(self.prep.transform(frame), dtype=np.float32)
        rows = len(next(iter(columns.values())))
        x = np.empty((rows, len(self._encode)), dtype=np.float32)
        for index, (column, how) in enumerate(self._encode):
            values = columns[column].reshape(-1)
            if isinstance(how, dict):  # text: its code, -1 for unseen or missing
                x[:, index] = [how.get(v, -1.0) if v != "" else -1.0 for v in values]
            else:  # numbers: the training median for missing values
                numbers = values.astype(np.float32)
                x[:, index] = np.where(np.isnan(numbers), np.float32(how), numbers)
        return x

    def explain(self, columns: dict[str, NDArray[Any]], classes: list[str], predicted: list[Any]
                ) -> list[dict[str, Any]]:
        """Each row's contributions toward its class (``classes``), or toward its predicted number (no classes)."""
        x = self._transform(columns)
        targets = [classes.index(p) if len(classes) > 2 else len(classes) - 1 for p in predicted] \
            if classes else [0] * len(x)
        values, output = self.contributions(x, len(classes))
        rows = []
        for index, target in enumerate(targets):
            contribution = values[index, target]  # (features + 1): the last is the base value
            per_column: dict[str, float] = {}
            for column, value in zip(self.columns, contribution[:-1].tolist(), strict=True):
                per_column[column] = per_column.get(column, 0.0) + value
            ranked = sorted(per_column.items(), key=lambda p: -abs(p[1]))
            row: dict[str, Any] = {"class": classes[target]} if classes else {}
            rows.append({**row, "output": output, "base": round(float(contribution[-1]), 6),
                         "contributions": {name: round(value, 6) for name, value in ranked}})
        return rows

    def contributions(self, x: NDArray[np.float32], n_classes: int) -> tuple[NDArray[np.float64], str]:
        """(rows, classes, features + 1) and the output's unit; binary models give the positive class only,
        copied to both slots so that index -1 is the positive class; a regressor (no classes) has one slot."""
        return _contributions(self.model, x, n_classes)


def _contributions(model: Any, x: NDArray[np.float32], n_classes: int) -> tuple[NDArray[np.float64], str]:
    from sklearn.ensemble import VotingClassifier, VotingRegressor

    regression = n_classes == 0
    if isinstance(model, (VotingClassifier, VotingRegressor)):
        return _vote(model, x, n_classes), "value" if regression else "probability"
    unit = "value" if regression else "log_odds"
    booster = getattr(model, "booster_", None)
    if booster is not None:  # LightGBM
        raw = np.asarray(booster.predict(x, pred_contrib=True), dtype=np.float64)
        return _by_class(raw, n_classes), unit
    if hasattr(model, "get_booster"):  # XGBoost
        import xgboost

        raw = np.asarray(model.get_booster().predict(xgboost.DMatrix(x), pred_contribs=True), dtype=np.float64)
        return _by_class(raw.reshape(len(x), -1), n_classes), unit
    if hasattr(model, "estimators_"):  # random forest, extra trees
        return _forest(model, x, n_classes), "value" if regression else "probability"
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
    per_class = x[:, None, :] * coef[None, :, :]
    out = np.concatenate([per_class, np.broadcast_to(intercept[None, :, None], (len(x), len(coef), 1))], axis=2)
    return (np.repeat(out, 2, axis=1) if n_classes == 2 and len(coef) == 1 else out), unit


def _vote(model: Any, x: NDArray[np.float32], n_classes: int) -> NDArray[np.float64]:
    """The members' contributions in the vote's unit (probability, or the value), averaged with its weights."""
    weights = np.asarray(model.weights, dtype=np.float64)
    total: NDArray[np.float64] | None = None
    for member, weight in zip(model.estimators_, weights / weights.sum(), strict=True):
        values, unit = _contributions(member, x, n_classes)
        if unit == "log_odds":
            values = _as_probability(values, n_classes)
        total = weight * values if total is None else total + weight * values
    assert total is not None
    return total


def _as_probability(values: NDArray[np.float64], n_classes: int) -> NDArray[np.float64]:
    """Log-odds contributions rescaled to add up to the probability: each keeps its share of the move from the
    base value, and the base absorbs the rest, so base + contributions = the member's probability exactly."""
    if n_classes == 2:  # both slots hold the positive class's log odds
        positive = _rescaled(values[:, 1:2, :], lambda z: 1 / (1 + np.exp(-z)))
        negative = np.concatenate([-positive[:, :, :-1], 1 - positive[:, :, -1:]], axis=2)
        return np.concatenate([negative, positive], axis=1)
    return _rescaled(values, _softmax)


def _rescaled(values: NDArray[np.float64], link: Any) -> NDArray[np.float64]:
    raw = values.sum(axis=2)  # (rows, classes) on the log-odds scale
    base = values[:, :, -1]
    probability, at_base = link(raw), link(base)
    moved = raw - base
    scale = np.divide(probability - at_base, moved, out=np.zeros_like(moved), where=np.abs(moved) > 1e-12)
    contributions = values[:, :, :-1] * scale[:, :, None]
    rest = probability - contributions.sum(axis=2)
    return np.concatenate([contributions, rest[:, :, None]], axis=2)


def _softmax(z: NDArray[np.float64]) -> NDArray[np.float64]:
    shifted = np.exp(z - z.max(axis=1, keepdims=True))
    result: NDArray[np.float64] = shifted / shifted.sum(axis=1, keepdims=True)
    return result


def _by_class(raw: NDArray[np.float64], n_classes: int) -> NDArray[np.float64]:
    width = raw.shape[1]
    if n_classes <= 2:  # one output: the positive class's log odds, or a regressor's value
        return np.repeat(raw[:, None, :], max(n_classes, 1), axis=1)
    return raw.reshape(len(raw), n_classes, width // n_classes)


def _forest(model: Any, x: NDArray[np.float32], n_classes: int) -> NDArray[np.float64]:
    """Each tree's probability (a regressor's value), split into the change at each node on the row's path
    (Saabas' method)."""
    features = x.shape[1]
    total = np.zeros((len(x), max(n_classes, 1), features + 1))
    for tree in model.estimators_:
        structure = tree.tree_
        value = structure.value[:, 0, :]
        if n_classes:
            value = value / np.maximum(value.sum(axis=1, keepdims=True), 1e-12)
        paths = tree.decision_path(x.astype(np.float32))
        for row in range(len(x)):
            nodes = paths.indices[paths.indptr[row]:paths.indptr[row + 1]]  # root first: children have higher ids
            nodes = np.sort(nodes)
            total[row, :, -1] += value[nodes[0]]
            for parent, child in itertools.pairwise(nodes):
                total[row, :, structure.feature[parent]] += value[child] - value[parent]
    return total / len(model.estimators_)
