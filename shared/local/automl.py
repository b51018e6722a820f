"""AutoML for one dataset: a robust FLAML search, a decision threshold, an ONNX export.

Choosing by a noisy metric on one split overfits that split, so the search
minimises a smooth loss under cross-validation (log loss for classes, RMSE for
numbers), the strong LightGBM default is one of its starting points (the result
is never worse than it under that criterion), and for classification the
decision threshold of a label metric is chosen afterwards on out-of-fold
predictions. The validation split is held out of all of it and kept
with the run, so the champion/challenger gate can score both models on it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shared import metrics
from shared.local import artifacts
from shared.model_contract import date_inputs
from shared.schema import DATETIME, NO_DATE, Schema, date_parts
from shared.tasks import CLASSIFICATION, TaskKind

if TYPE_CHECKING:
    from shared.local.sampling import StoredRows

log = logging.getLogger(__name__)

# LightGBM's own defaults, in FLAML's search-space terms: tried first, so the
# search starts from the strong default instead of FLAML's tiny low-cost model.
STARTING_POINTS: dict[str, dict[str, Any]] = {
    "lgbm": {"n_estimators": 100, "num_leaves": 31, "min_child_samples": 20, "learning_rate": 0.1,
             "log_max_bin": 8, "colsample_bytree": 1.0, "reg_alpha": 1 / 1024, "reg_lambda": 1 / 1024},
    "xgboost": {"n_estimators": 100, "max_leaves": 31, "min_child_weight": 1.0, "learning_rate": 0.1,
                "subsample": 1.0, "colsample_bylevel": 1.0, "colsample_bytree": 1.0, "reg_alpha": 1 / 1024,
                "reg_lambda": 1.0},
}
VALIDATION_FRACTION = 0.2
PLATEAU_GAIN = 0.005  # a relative fall of the best cross-validated loss this large is progress
PLATEAU_MIN_S = 10.0  # never stop sooner than this after the last progress
PLATEAU_PATIENCE = 0.5  # ... nor sooner than this share of the time the search took to make it
PLATEAU_LEARNERS = 3  # ... nor before this many kinds of learner have been tried
ENSEMBLE = "ensemble"  # the best learner's name when a soft vote deploys
HOLDOUT_DIR = "holdout"  # the fit the validation metrics and the promotion gate judge
SEED = 42
# A sampled dataset's budget: the search gets this share, the ensemble may run until this share, and the rest
# is for the refit on every row (which reads the file again).
SAMPLED_SEARCH_SHARE = 0.7  # ... and FLAML's fit of the best on the training split, which follows its search
SAMPLED_ENSEMBLE_UNTIL = 0.8
# The search is told to end this many times the best's estimated final fit before its share runs out: the trial
# running then still finishes first (on 2 busy cores, 17-28 s passed from the stop to the end of the final fit,
# against estimates of 11-16 s)
FINAL_FIT_MARGIN = 2.0
SAMPLED_ENSEMBLE_ROWS = (10_000, 50_000)  # a sampled dataset's ensemble and threshold are chosen out of fold on
# as many training rows as the time left affords, within these bounds
REFIT_MARGIN = 1.25  # the refit on all rows is estimated from the judged fit's time, scaled by rows, times this
REFIT_ALWAYS_S = 10.0  # ... and happens when estimated under this, whatever is left: a few seconds over is worth it
REFIT_COPIES = 4  # peak memory of a fit on all rows, as copies of its float32 input matrix
REFIT_MAX_MB = 1024  # ... which must stay under this, and under half the memory the machine has free


@dataclass
class TrainingOutcome:
    best_learner: str
    best_config: dict[str, Any]
    threshold: float | None  # the positive class's cut-off; None for regression
    classes: list[Any]  # empty for regression
    validation_metrics: dict[str, float]
    trials: list[dict[str, Any]]
    timings: dict[str, float]
    model_format: str  # "onnx" or "native"
    notes: list[str] = field(default_factory=list)
    importance: dict[str, float] = field(default_factory=dict)  # share of the model's use of each input column
    # Rows of each fit: the configuration is judged on "validation" by a fit on "holdout_fit", then the deployed
    # model is refit on all labelled rows ("final_fit"), whose validation rows it has therefore seen.
    fit_rows: dict[str, int] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)  # budget, time spent, whether it stopped on a plateau
    ensemble: dict[str, Any] = field(default_factory=dict)  # the vote's members and weights, when one deploys


def describe(outcome: TrainingOutcome, schema: Schema) -> dict[str, Any]:
    """What a scorer needs to know of the model: its task, inputs, classes, threshold and format."""
    from shared.local.onnx_export import input_names

    return {
        "target": schema.target, "task": str(schema.task), "input_names": input_names(schema),
        "model_format": outcome.model_format, "classes": outcome.classes, "threshold": outcome.threshold,
        "best_learner": outcome.best_learner, "validation_metrics": outcome.validation_metrics,
        "feature_importance": outcome.importance, "fit_rows": outcome.fit_rows, "ensemble": outcome.ensemble,
        "features": [{"name": c.name, "kind": c.kind, "categories": list(c.categories)} for c in schema.features],
    }


def importance(estimator: Any, prep: Any, x_train: NDArray[np.float32]) -> dict[str, float]:
    """Global importance per input column, summing to 1: total split gain for tree models, |coefficient| x
    the column's spread for linear ones (one encoded column per input, so no regrouping is needed)."""
    names = [str(n).split("__", 1)[-1] for n in prep.get_feature_names_out()]
    if is_vote(estimator):  # each member's shares, weighted as the vote weighs them
        blended: dict[str, float] = dict.fromkeys(names, 0.0)
        weights = np.asarray(estimator.weights, dtype=float)
        for member, weight in zip(estimator.estimators_, weights / weights.sum(), strict=True):
            for name, share in importance(member, prep, x_train).items():
                blended[name] += weight * share
        whole = sum(blended.values()) or 1.0  # a member without importances leaves the others' shares to fill
        return {name: round(share / whole, 6) for name, share in sorted(blended.items(), key=lambda pair: -pair[1])}
    booster = getattr(estimator, "booster_", None)
    if booster is not None:  # LightGBM: gain, not split counts
        raw = np.asarray(booster.feature_importance(importance_type="gain"), dtype=float)
    elif hasattr(estimator, "get_booster"):  # XGBoost
        scores = estimator.get_booster().get_score(importance_type="total_gain")
        raw = np.array([scores.get(f"f{i}", 0.0) for i in range(len(names))], dtype=float)
    elif hasattr(estimator, "feature_importances_"):
        raw = np.asarray(estimator.feature_importances_, dtype=float)
    elif hasattr(estimator, "coef_"):
        raw = np.abs(np.atleast_2d(np.asarray(estimator.coef_, dtype=float))).sum(axis=0) * np.nanstd(x_train, axis=0)
    else:
        return {}
    total = float(raw.sum())
    if total <= 0 or len(raw) != len(names):
        return {}
    ranked = sorted(zip(names, raw / total, strict=True), key=lambda pair: -pair[1])
    return {name: round(float(share), 6) for name, share in ranked}


def by_column(shares: dict[str, float], schema: Schema) -> dict[str, float]:
    """Shares per model input summed per column (a date column's parts into the date), largest first."""
    sources = schema.input_columns
    totals: dict[str, float] = {}
    for name, share in shares.items():
        column = sources.get(name, name)
        totals[column] = totals.get(column, 0.0) + share
    return {name: round(share, 6) for name, share in sorted(totals.items(), key=lambda pair: -pair[1])}


def is_vote(estimator: Any) -> bool:
    from sklearn.ensemble import VotingClassifier, VotingRegressor

    return isinstance(estimator, (VotingClassifier, VotingRegressor))


def split(frame: pd.DataFrame, target: str, task: TaskKind = CLASSIFICATION) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A fixed hold-out, stratified as the task says (by class for classification): the same file always gives
    the same split."""
    from sklearn.model_selection import train_test_split

    train, valid = train_test_split(frame, test_size=VALIDATION_FRACTION, random_state=SEED,
                                    stratify=task.stratify(frame[target]))
    return train.reset_index(drop=True), valid.reset_index(drop=True)


def preprocessor(schema: Schema) -> Any:
    """Ordinal codes for text columns (unseen or missing -> -1), median fill for numbers."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OrdinalEncoder

    text = [c for c in schema.features if not c.is_numeric and c.kind != DATETIME]
    numbers = [name for name, numeric in schema.model_inputs if numeric]
    parts: list[tuple[str, Any, list[str]]] = []
    if text:
        encoder = OrdinalEncoder(categories=[sorted(c.categories) for c in text], handle_unknown="use_encoded_value",
                                 unknown_value=-1, encoded_missing_value=-1, dtype=np.float32)
        parts.append(("text", encoder, [c.name for c in text]))
    if numbers:
        parts.append(("numbers", SimpleImputer(strategy="median"), numbers))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0)


def feature_frame(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The model inputs in schema order: text as str (missing stays missing), numbers as float32, a date
    column's parts as float32 (NaN when missing)."""
    out = {}
    for column in schema.features:
        series = frame[column.name]
        if column.kind == DATETIME:
            parts = [date_parts(str(v)) or NO_DATE if pd.notna(v) else NO_DATE for v in series]
            out.update({name: values.reshape(-1) for name, values in date_inputs(column, parts).items()})
        elif column.is_numeric:
            out[column.name] = pd.to_numeric(series, errors="coerce").astype(np.float32)
        else:
            out[column.name] = series.astype(object).where(series.notna(), None)
    return pd.DataFrame(out)


def labels_of(series: pd.Series) -> NDArray[Any]:
    """Target labels as a plain object array of str (pandas 3 string arrays confuse sklearn)."""
    return np.asarray([str(v) for v in series], dtype=object)



def plateaued(trials: list[dict[str, Any]], elapsed_s: float, learners: int = PLATEAU_LEARNERS) -> bool:
    """Whether the search has stopped making progress: several learners have been tried, and no trial has cut the
    best loss by ``PLATEAU_GAIN`` for ``PLATEAU_PATIENCE`` of the time it took to make its last such cut
    (``PLATEAU_MIN_S`` at least)."""
    scored = sorted((t for t in trials if t["cv_loss"] is not None and t["at_s"] is not None),
                    key=lambda t: t["at_s"])
    if len({t["learner"] for t in scored}) < learners:
        return False  # FLAML tries the costlier learners late: wait for a few kinds, not for all of them
    best, progress_at = float("inf"), 0.0
    for trial in scored:
        loss = float(trial["cv_loss"])
        if best == float("inf") or loss < best * (1 - PLATEAU_GAIN):
            progress_at = float(trial["at_s"])
        best = min(best, loss)
    return elapsed_s - progress_at >= max(PLATEAU_MIN_S, PLATEAU_PATIENCE * progress_at)


def final_fit_s(trials: list[dict[str, Any]], rows: int) -> float:
    """What fitting the best configuration so far on ``rows`` should take: its cross-validated trial fit three
    folds of two thirds of its sample, about twice one fit on the sample; scaled to ``rows``."""
    scored = [t for t in trials if t["cv_loss"] is not None and t["seconds"] and t["sample_size"]]
    if not scored:
        return 0.0
    best = min(scored, key=lambda t: float(t["cv_loss"]))
    return float(best["seconds"]) / 2 * rows / float(best["sample_size"])


def _end_search(automl: Any) -> None:
    """FLAML has no stop hook: its search loop ends once the time spent reaches its budget, which it reads after
    every trial, so lowering the budget to the time spent ends the search after the current trial."""
    state = getattr(automl, "_state", None)
    if state is not None and getattr(state, "time_budget", -1) > 0:
        state.time_budget = max(float(state.time_from_start), 0.001)


def _read_trials(log_file: Path) -> list[dict[str, Any]]:
    trials: list[dict[str, Any]] = []
    if not log_file.exists():
        return trials
    for line in log_file.read_text().splitlines():
        record = json.loads(line)
        if "learner" not in record:
            continue
        trials.append({"trial": record.get("record_id"), "learner": record["learner"],
                       "config": record.get("config"), "cv_loss": record.get("validation_loss"),
                       "seconds": record.get("trial_time"), "at_s": record.get("wall_clock_time"),
                       "sample_size": record.get("sample_size")})
    return trials


def _choose_threshold(metric: metrics.Metric, y: NDArray[Any], proba: NDArray[np.float64],
                      classes: list[Any]) -> float:
    if len(classes) != 2 or not metric.needs_threshold:
        return 0.5
    scores = {t: metric.compute(y, proba, classes, t) for t in np.round(np.arange(0.05, 0.96, 0.01), 2)}
    best = max(scores, key=lambda t: scores[t] if metric.greater_is_better else -scores[t])
    # Only move off 0.5 for a clear gain: small differences are noise.
    return float(best) if abs(scores[best] - scores[0.5]) > 0.001 else 0.5


def memory_room_mb() -> float:
    """What one fit may take: ``REFIT_MAX_MB``, or half the memory the machine has available when that is less."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return min(float(REFIT_MAX_MB), int(line.split()[1]) / 1024 / 2)
    except OSError:
        pass
    return float(REFIT_MAX_MB)


def train(frame: pd.DataFrame, schema: Schema, metric_name: str, time_budget_s: float, out_dir: Path,
          on_trial: Callable[[list[dict[str, Any]]], None] | None = None,
          on_step: Callable[[str], None] | None = None, ensemble_members: int = 6,
          everything: StoredRows | None = None) -> TrainingOutcome:
    """Search, judge, refit and export; writes validation.csv, trials.json, model.onnx or model.pkl into
    ``out_dir``, and the fit that was judged in ``out_dir/holdout/``.

    The validation metrics (and the promotion gate) come from the best configuration fit on the training
    split; the deployed model is the same configuration refit on every labelled row.
    ``frame`` may hold more columns than ``schema``: the model uses the schema's
    features only, and the validation split keeps every column.

    ``everything``: when ``frame`` is a sample of a bigger dataset, all of its rows, read again for the refit.
    Then the search, the ensemble and the judged fit use the sample within shares of the budget, and the refit
    takes every row only when its estimated time fits what is left and its memory ``memory_room_mb``; otherwise
    the deployed model is the refit on the sample. The notes say which.
    """
    from flaml.automl import AutoML
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    from shared.local import ensemble

    task = schema.task
    regression = not task.predicts_classes  # the target is coded as numbers, not class codes
    metric = metrics.resolve(metric_name)
    step = on_step or (lambda name: None)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    sampled = everything is not None and everything.rows > len(frame)
    search_budget = time_budget_s * SAMPLED_SEARCH_SHARE if sampled else time_budget_s
    ensemble_until = time_budget_s * SAMPLED_ENSEMBLE_UNTIL if sampled else time_budget_s
    out_dir.mkdir(parents=True, exist_ok=True)
    train_frame, valid_frame = split(frame, schema.target, task)
    valid_frame.to_csv(out_dir / "validation.csv", index=False)
    step("featurize")
    prep = preprocessor(schema)
    x_train = prep.fit_transform(feature_frame(train_frame, schema)).astype(np.float32)
    # Labels are coded 0..k-1 here (FLAML would do it anyway); ``classes`` maps them back.
    classes = [] if regression else sorted(set(labels_of(frame[schema.target])))
    codes = {label: i for i, label in enumerate(classes)}

    def y_of(part: pd.DataFrame) -> NDArray[Any]:
        if regression:
            values: NDArray[np.float64] = part[schema.target].to_numpy(dtype=np.float64)
            return values
        return np.array([codes[v] for v in labels_of(part[schema.target])])

    y_train = y_of(train_frame)
    log_file = out_dir / "flaml.log"
    automl = AutoML()  # type: ignore[no-untyped-call]
    step("automl")
    search_started = time.perf_counter()
    stopped: list[float] = []
    leave_for_fit: list[tuple[float, float]] = []  # when the search ended to leave time for the best's final fit
    learners = list(task.learners)

    def on_poll(trials: list[dict[str, Any]]) -> None:
        if on_trial:
            on_trial(trials)
        elapsed = time.perf_counter() - search_started
        # Near the end of the budget the search ends anyway: stopping then would claim a plateau it did not need.
        if not stopped and elapsed < 0.95 * search_budget and \
                plateaued(trials, elapsed, min(PLATEAU_LEARNERS, len(learners))):
            stopped.append(elapsed)
            _end_search(automl)
        # After its search FLAML fits the best configuration on the whole training split, whatever the time: on a
        # big sample that fit is long, so the search ends in time for it to end within the search's share.
        elif sampled and not stopped and not leave_for_fit and \
                elapsed + FINAL_FIT_MARGIN * final_fit_s(trials, len(x_train)) >= search_budget:
            leave_for_fit.append((elapsed, final_fit_s(trials, len(x_train))))
            _end_search(automl)

    watcher = _TrialWatcher(log_file, on_poll)
    try:
        automl.fit(x_train, y_train, task=str(task), metric=task.search_loss, eval_method="cv", n_splits=3,
                   time_budget=search_budget, estimator_list=learners,
                   starting_points={k: v for k, v in STARTING_POINTS.items() if k in learners},
                   log_file_name=str(log_file), log_type="all", seed=SEED, n_jobs=-1, verbose=0, retrain_full=True)
    finally:
        watcher.stop()
    timings["search_s"] = time.perf_counter() - started
    search = {"budget_s": round(search_budget, 1), "seconds": round(time.perf_counter() - search_started, 1),
              "best_found_s": round(float(automl.time_to_find_best_model or 0), 1), "stopped_early": bool(stopped),
              **({"left_for_final_fit_s": round(leave_for_fit[0][1], 1)} if leave_for_fit else {}),
              "loss": task.search_loss}
    step("ensemble")
    y_labels = labels_of(train_frame[schema.target])
    x_ens, y_ens, labels_ens = x_train, y_train, y_labels
    if sampled:
        # Out-of-fold outputs cost three fits on two thirds of the rows each: about twice the judged fit's time
        # per row (FLAML's refit of the best). On as many rows as the time left affords, their cost stays bounded
        # whatever the dataset's size; ten thousand rows still settle a threshold.
        per_row = float(automl.best_config_train_time or 0) / len(x_train)
        left = ensemble_until - (time.perf_counter() - search_started)
        fewest, most = SAMPLED_ENSEMBLE_ROWS
        affordable = int(left / (2 * per_row)) if per_row > 0 else most
        rows = min(most, max(fewest, affordable))
        if rows < len(x_train):
            from sklearn.model_selection import train_test_split

            part, _ = train_test_split(np.arange(len(x_train)), train_size=rows, random_state=SEED,
                                       stratify=task.stratify(y_train))
            x_ens, y_ens, labels_ens = x_train[part], y_train[part], y_labels[part]

    def judge(oof: NDArray[np.float64]) -> float:
        """The primary metric of out-of-fold outputs (at the threshold they would get)."""
        if regression:
            return metric.compute(y_ens, oof, [], 0.5)
        return metric.compute(labels_ens, oof, classes, _choose_threshold(metric, labels_ens, oof, classes))

    ensemble_left = ensemble_until - (time.perf_counter() - search_started)
    if sampled and ensemble_left <= 0:
        # Out-of-fold outputs, even of the best alone, would only add to a budget already spent.
        selection = ensemble.Selection(None, {}, np.empty((0, 1)), {}, "No ensemble, and the decision threshold "
                                       "left at 0.5: nothing was left of the budget for out-of-fold outputs.")
    else:
        selection = ensemble.select(automl, task, x_ens, y_ens, metric, judge, ensemble_left,
                                    _read_trials(log_file), ensemble_members)
    holdout_started = time.perf_counter()
    estimator = automl.model.estimator if selection.estimator is None else selection.estimator.fit(x_train, y_train)
    # What fitting the judged model on the training split took (FLAML's own refit of the best, or the vote's).
    holdout_fit_s = float(automl.best_config_train_time or 0) if selection.estimator is None \
        else time.perf_counter() - holdout_started
    timings["ensemble_s"] = time.perf_counter() - started - timings["search_s"]
    step("evaluate")
    threshold = None if regression else \
        _choose_threshold(metric, labels_ens, selection.oof, classes) if len(selection.oof) else 0.5
    from shared.local import onnx_export

    onnx_export.float32_thresholds(estimator)
    model = Pipeline([("prep", prep), ("model", estimator)])
    x_valid = feature_frame(valid_frame, schema)
    y_valid = valid_frame[schema.target].to_numpy(dtype=np.float64) if regression \
        else labels_of(valid_frame[schema.target])
    judged_outputs = task.outputs(model, x_valid)
    validation = metrics.all_metrics(y_valid, judged_outputs, classes, 0.5 if threshold is None else threshold,
                                     task)
    timings["fit_s"] = time.perf_counter() - started
    holdout_dir = out_dir / HOLDOUT_DIR
    holdout_dir.mkdir(exist_ok=True)
    import joblib

    joblib.dump(model, holdout_dir / "model.pkl")
    # Its outputs on the validation rows (those of validation.csv, in order), for the run's report: the host
    # draws it from them instead of loading this pipeline (and scikit-learn with it) into its own process.
    np.save(out_dir / artifacts.JUDGED_OUTPUTS, judged_outputs)

    step("refit")
    final_rows = len(frame)
    deployed = f"Deployed: refit on all {len(frame):,} labelled rows."
    if not sampled:
        prep = preprocessor(schema)
        x_all = prep.fit_transform(feature_frame(frame, schema)).astype(np.float32)
        estimator = clone(estimator).fit(x_all, y_of(frame))
        onnx_export.float32_thresholds(estimator)
        model = Pipeline([("prep", prep), ("model", estimator)])
    else:
        assert everything is not None
        # The judged fit timed the work per row: scaled to every row (reading the file again, twice what the
        # sample's pass took), does it fit what is left of the budget, and its input matrix the memory a fit may
        # take? If not, the judged fit itself deploys: a refit on the rest of the sample would add little.
        x_all = x_train
        estimate = 2 * everything.read_s + holdout_fit_s * everything.rows / len(train_frame) * REFIT_MARGIN
        left = time_budget_s - (time.perf_counter() - started)
        need_mb = everything.rows * x_train.shape[1] * 4 * REFIT_COPIES / 2**20
        room_mb = memory_room_mb()
        final_rows = len(train_frame)
        judged = f"Deployed: the judged fit, on {len(train_frame):,} sampled rows: a refit on all {everything.rows:,}"
        if estimate > max(left, REFIT_ALWAYS_S):
            deployed = (f"{judged} would take about {estimate:.0f}s, more than the {max(left, 0):.0f}s left of the "
                        "budget.")
        elif need_mb > room_mb:
            deployed = f"{judged} would need about {need_mb:,.0f} MB, more than the {room_mb:,.0f} MB a fit may take."
        else:
            whole_started = time.perf_counter()
            prep = preprocessor(schema).fit(feature_frame(frame, schema))
            x_every, y_every = everything.features(
                lambda part: prep.transform(feature_frame(part, schema)).astype(np.float32), y_of)
            estimator = clone(estimator).fit(x_every, y_every)
            del x_every, y_every
            onnx_export.float32_thresholds(estimator)
            model = Pipeline([("prep", prep), ("model", estimator)])
            final_rows = everything.rows
            deployed = (f"Deployed: refit on all {everything.rows:,} labelled rows, read again from the file "
                        f"({time.perf_counter() - whole_started:.0f}s; estimated {estimate:.0f}s); missing "
                        "numbers filled with the sample's medians.")
    timings["refit_s"] = time.perf_counter() - started - timings["fit_s"]

    step("export")
    model_format, notes = onnx_export.export(model, schema, x_valid, task.outputs(model, x_valid), out_dir)
    if stopped:
        notes.append(f"The search stopped at {search['seconds']:.0f}s of its {time_budget_s:.0f}s budget: it had "
                     f"plateaued (no gain of {PLATEAU_GAIN:.1%} in cross-validated {task.search_loss} for half as "
                     "long as the last gain took).")
    if leave_for_fit:
        at, fit = leave_for_fit[0]
        notes.append(f"The search stopped at {at:.0f}s, leaving about {fit:.0f}s of its {search_budget:.0f}s for "
                     f"fitting its best configuration on the {len(x_train):,} training rows.")
    if sampled:
        assert everything is not None
        notes.insert(0, f"Searched on {len(frame):,} of {everything.rows:,} labelled rows (a uniform sample that "
                        "keeps every class): the search, the ensemble and the validation metrics use it, the "
                        f"search within {search_budget:.0f}s of the {time_budget_s:.0f}s budget"
                        + (f", the ensemble and the threshold out of fold on {len(x_ens):,} of its training rows."
                           if len(selection.oof) else "."))
    notes.append(selection.note)
    notes.append(f"{deployed} Validation metrics: the same configuration fit on {len(train_frame):,} rows, scored "
                 f"on the other {len(valid_frame):,}.")
    timings["total_s"] = time.perf_counter() - started
    trials = _read_trials(log_file)
    (out_dir / "trials.json").write_text(json.dumps(trials, indent=1, default=str))
    outcome = TrainingOutcome(
        best_learner=str(automl.best_estimator) if selection.estimator is None else ENSEMBLE,
        best_config=dict(automl.best_config), threshold=threshold,
        classes=classes, validation_metrics=validation, trials=trials, timings=timings,
        model_format=model_format, notes=notes, importance=by_column(importance(estimator, prep, x_all), schema),
        fit_rows={"holdout_fit": len(train_frame), "validation": len(valid_frame), "final_fit": final_rows,
                  **({"sampled_from": everything.rows} if sampled and everything is not None else {})},
        search=search, ensemble={"members": selection.weights, "out_of_fold": selection.scores},
    )
    (out_dir / "model_meta.json").write_text(json.dumps(describe(outcome, schema), indent=1, default=str))
    return outcome


class _TrialWatcher:
    """Reports FLAML's trials as its log file grows (FLAML has no per-trial callback)."""

    def __init__(self, log_file: Path, on_trial: Callable[[list[dict[str, Any]]], None]) -> None:
        import threading

        self._file = log_file
        self._on_trial = on_trial
        self._seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self._poll()

    def _poll(self) -> None:
        try:
            trials = _read_trials(self._file)
        except (OSError, ValueError):
            return  # the file is being written; next poll
        if len(trials) != self._seen:
            self._seen = len(trials)
            try:
                self._on_trial(trials)
            except Exception:  # progress reporting must never stop the training
                log.exception("Could not report training progress")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()
