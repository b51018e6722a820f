"""Which kind of model a target asks for, and everything that differs from one kind to another.

``Task`` names the kinds: classification (labels), regression (numbers) or forecasting (numbers ahead in
time, per series; only when the upload asks for it). The
upload's ``task`` metadata decides when given; otherwise the target's values
do, and the reason is kept so that the status says why.

``TaskKind`` is one object per kind: its default metric (``shared.metrics``
tags each metric with its task), its learners and the loss its
search minimises, how its rows are split and folded, how a model's outputs are
read and decoded (and which ONNX output holds them), the Azure AutoML node that
trains it, the schema of its answers and the reference its drift is held
against. A dataset's ``Schema`` and a model's ``ModelSignature`` carry one; code
asks it rather than testing which kind it is, so a new kind is one class here.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shared.errors import DatasetRejected

NUMBER_SCHEMA: dict[str, Any] = {"type": ["number", "null"]}  # null: not finite (inputs far beyond training's)

# Whole numbers with at most this many distinct values are class codes (ratings, counts of a few kinds).
MAX_CODED_CLASSES = 20


class Task(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    FORECASTING = "forecasting"


@dataclass(frozen=True)
class TaskChoice:
    task: Task
    reason: str


def parse(requested: str | None) -> Task | None:
    """The ``task`` metadata value, or None when absent; DatasetRejected when it names no task."""
    if requested is None or not requested.strip():
        return None
    try:
        return Task(requested.strip().lower())
    except ValueError:
        raise DatasetRejected(f"metadata 'task' is {requested!r}; use 'classification', 'regression' or "
                              "'forecasting'", "bad_task") from None


def numbers(target: pd.Series) -> pd.Series | None:
    """The target as floats when every present value is a finite number, else None."""
    if pd.api.types.is_bool_dtype(target):
        return None
    values = target.astype(float) if pd.api.types.is_numeric_dtype(target) else \
        pd.to_numeric(target.astype(str).str.strip(), errors="coerce")
    present = values[target.notna()].to_numpy(dtype=float)
    return values.astype(float) if np.isfinite(present).all() else None


def choose(target: pd.Series, requested: Task | None) -> TaskChoice:
    """Decide the task for a target column holding no missing values."""
    values = numbers(target)
    if values is None:
        example = next((v for v in target if pd.isna(pd.to_numeric(str(v).strip(), errors="coerce"))), None) \
            if requested in (Task.REGRESSION, Task.FORECASTING) else None
        return decide(str(target.name), requested, numeric=False, example=example)
    return decide(str(target.name), requested, numeric=True, whole=bool((values == np.round(values)).all()),
                  distinct=int(values.nunique()))


def decide(name: str, requested: Task | None, *, numeric: bool, whole: bool = False, distinct: int = 0,
           example: object = None, more: bool = False) -> TaskChoice:
    """The task from what is known of the target: whether every value is a finite number, whether all are whole,
    how many distinct ones (``more``: at least that many, when counting stopped), and a value that is no number
    (for the reason a regression is refused). Both readers of an upload, whole or in chunks, decide here."""
    if requested in (Task.REGRESSION, Task.FORECASTING):
        if not numeric:
            raise DatasetRejected(f"metadata 'task' asks for {requested}, but target {name!r} is not numeric "
                                  f"(it holds {example!r})", "target_not_numeric")
        return TaskChoice(requested, "set by the upload's metadata 'time_column'" if requested is Task.FORECASTING
                          else "set by the upload's metadata 'task'")
    if requested is Task.CLASSIFICATION:
        return TaskChoice(Task.CLASSIFICATION, "set by the upload's metadata 'task'")
    if not numeric:
        return TaskChoice(Task.CLASSIFICATION, f"target {name!r} holds labels, not numbers")
    counted = f"more than {distinct:,}" if more else f"{distinct:,}"
    if not whole:
        return TaskChoice(Task.REGRESSION, f"target {name!r} holds fractional numbers ({counted} distinct values)")
    if distinct <= MAX_CODED_CLASSES and not more:
        return TaskChoice(Task.CLASSIFICATION, f"target {name!r} holds {distinct} distinct whole numbers "
                          f"(at most {MAX_CODED_CLASSES}: read as class codes; set metadata 'task' to regression "
                          "to predict them as numbers)")
    return TaskChoice(Task.REGRESSION, f"target {name!r} holds {counted} distinct whole numbers "
                      f"(more than {MAX_CODED_CLASSES}: read as quantities)")


class TaskKind(abc.ABC):
    """What one task decides. Instances are shared and compare by identity; ``str()`` gives the name that JSON,
    tags and the API carry."""

    name: ClassVar[Task]
    default_metric: ClassVar[str]  # Azure AutoML's default primary metric
    search_loss: ClassVar[str]  # what the local search minimises, in FLAML's terms
    learners: ClassVar[tuple[str, ...]]  # the local search's estimators, in FLAML's terms
    onnx_output: ClassVar[str]  # the exported graph's output that scoring reads (as skl2onnx names it)
    azure_node: ClassVar[str]  # the azure.ai.ml.automl factory of its AutoML node
    predicts_classes: ClassVar[bool]  # labels with probabilities, or one number per row
    metric_family: ClassVar[Task]  # whose metrics judge its models (``shared.metrics`` tags each with one)
    tabular: ClassVar[bool] = True  # rows without an order, trained by the tabular search (else shared.forecasting)

    def __str__(self) -> str:
        return self.name.value

    def __eq__(self, other: object) -> bool:
        """Equal to itself and to its name (``Task``, or the string a record stores)."""
        if isinstance(other, TaskKind):
            return other is self
        return isinstance(other, str) and other == self.name.value

    def __hash__(self) -> int:
        return hash(self.name.value)

    def __repr__(self) -> str:
        return f"<task {self.name.value}>"

    @abc.abstractmethod
    def outputs(self, model: Any, x: Any) -> NDArray[np.float64]:
        """A fitted estimator's outputs: class probabilities (rows x classes), or the predictions (rows x 1)."""

    @abc.abstractmethod
    def results(self, outputs: NDArray[np.float64], classes: Sequence[str], threshold: float | None
                ) -> list[str] | list[float]:
        """The answer per row, from the outputs."""

    @abc.abstractmethod
    def stratify(self, y: Any) -> Any:
        """What a split is stratified on: the labels, or None."""

    @abc.abstractmethod
    def folds(self, n_splits: int, seed: int) -> Any:
        """The cross-validation splitter of the training rows."""

    @abc.abstractmethod
    def fold_loss(self, y: NDArray[Any]) -> Callable[[NDArray[np.float64]], float]:
        """``search_loss`` over out-of-fold outputs (``y``: the true values, or the class codes)."""

    @abc.abstractmethod
    def vote(self, members: list[tuple[str, Any]], weights: NDArray[np.float64]) -> Any:
        """An unfitted weighted vote of ``members``."""

    @abc.abstractmethod
    def result_schema(self, classes: Sequence[str]) -> dict[str, Any]:
        """The score answer's per-task properties (OpenAPI): ``result``, and ``probabilities`` where there are."""


class Classification(TaskKind):
    name = Task.CLASSIFICATION
    default_metric = "accuracy"
    search_loss = "log_loss"
    learners = ("lgbm", "xgboost", "rf", "extra_tree", "lrl1")
    onnx_output = "probabilities"
    azure_node = "classification"
    predicts_classes = True
    metric_family = Task.CLASSIFICATION

    def outputs(self, model: Any, x: Any) -> NDArray[np.float64]:
        return np.asarray(model.predict_proba(x), dtype=np.float64)

    def results(self, outputs: NDArray[np.float64], classes: Sequence[str], threshold: float | None
                ) -> list[str]:
        """The class: the threshold decides between two, the highest probability among more."""
        if len(classes) == 2 and threshold is not None:
            return [classes[1] if p >= threshold else classes[0] for p in outputs[:, 1]]
        return [classes[i] for i in outputs.argmax(axis=1)]

    def stratify(self, y: Any) -> Any:
        return y

    def folds(self, n_splits: int, seed: int) -> Any:
        from sklearn.model_selection import StratifiedKFold

        return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)

    def fold_loss(self, y: NDArray[Any]) -> Callable[[NDArray[np.float64]], float]:
        rows = np.arange(len(y))
        return lambda outputs: float(-np.mean(np.log(np.clip(outputs[rows, y], 1e-15, 1.0))))

    def vote(self, members: list[tuple[str, Any]], weights: NDArray[np.float64]) -> Any:
        from sklearn.ensemble import VotingClassifier

        return VotingClassifier(members, voting="soft", weights=weights, flatten_transform=False)

    def result_schema(self, classes: Sequence[str]) -> dict[str, Any]:
        label: dict[str, Any] = {"type": "string"}
        if classes:
            label["enum"] = list(classes)
        return {"result": {"type": "array", "items": label, "description": "The predicted class per row"},
                "probabilities": {"type": "array", "items": {
                    "type": "object", "additionalProperties": {**NUMBER_SCHEMA, "minimum": 0, "maximum": 1}}}}


class Regression(TaskKind):
    name = Task.REGRESSION
    default_metric = "normalized_root_mean_squared_error"
    search_loss = "rmse"
    learners: ClassVar[tuple[str, ...]] = ("lgbm", "xgboost", "rf", "extra_tree", "enet")
    onnx_output = "variable"
    azure_node = "regression"
    predicts_classes = False
    metric_family = Task.REGRESSION

    def outputs(self, model: Any, x: Any) -> NDArray[np.float64]:
        return np.asarray(model.predict(x), dtype=np.float64).reshape(-1, 1)

    def results(self, outputs: NDArray[np.float64], classes: Sequence[str], threshold: float | None
                ) -> list[float]:
        return [round(float(v), 6) for v in outputs[:, 0]]

    def stratify(self, y: Any) -> Any:
        return None

    def folds(self, n_splits: int, seed: int) -> Any:
        from sklearn.model_selection import KFold

        return KFold(n_splits=n_splits, shuffle=True, random_state=seed)

    def fold_loss(self, y: NDArray[Any]) -> Callable[[NDArray[np.float64]], float]:
        return lambda outputs: float(np.sqrt(np.mean((outputs[:, 0] - y) ** 2)))

    def vote(self, members: list[tuple[str, Any]], weights: NDArray[np.float64]) -> Any:
        from sklearn.ensemble import VotingRegressor

        return VotingRegressor(members, weights=weights)

    def result_schema(self, classes: Sequence[str]) -> dict[str, Any]:
        return {"result": {"type": "array", "items": NUMBER_SCHEMA, "description": (
            "The predicted number per row; null when the model's answer is not a finite number (inputs far beyond "
            "its training data)")}}


class Forecasting(Regression):
    """Numbers ahead in time, per series: judged as regression is (Azure AutoML's forecasting metrics are its
    regression ones), trained by ``shared.forecasting`` on time-ordered windows, not by the tabular search."""

    name = Task.FORECASTING
    search_loss = "mae"  # the backtest's: mean absolute error, each series scaled by its typical size
    learners = ("lightgbm", "lightgbm-log", "lightgbm-recursive", "ets", "harmonic", "seasonal-naive")
    onnx_output = ""  # served natively: a forecast reads the series' own history, which no ONNX graph holds
    azure_node = "forecasting"
    tabular = False

    def stratify(self, y: Any) -> Any:
        raise TypeError("forecasting splits by time (shared.forecasting), never by shuffled rows")

    def folds(self, n_splits: int, seed: int) -> Any:
        raise TypeError("forecasting folds on rolling origins in time order (shared.forecasting)")


CLASSIFICATION = Classification()
REGRESSION = Regression()
FORECASTING = Forecasting()
KINDS: dict[Task, TaskKind] = {kind.name: kind for kind in (CLASSIFICATION, REGRESSION, FORECASTING)}


def kind_of(task: str | Task | TaskKind | None) -> TaskKind:
    """The task object of a stored name (a record written before tasks were named is classification)."""
    if isinstance(task, TaskKind):
        return task
    return KINDS[Task(str(task or Task.CLASSIFICATION))]
