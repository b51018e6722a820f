"""Data guardrails: what a careful data scientist checks before trusting a model, computed at ingest.

Each finding has a plain-language message and a severity (``info``, ``warning``,
``alert``). Nothing is dropped silently: a suspect column is reported, and the
user decides (blob metadata ``exclude``). Only numpy and pandas, so the same
checks run in the Function App in Azure.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shared.dataset_validation import is_date_column
from shared.tasks import CLASSIFICATION, TaskKind

if TYPE_CHECKING:
    from shared.csv_stream import Counts

IMBALANCE_RATIO = 0.2  # minority / majority below this: imbalanced
MISSING_WARNING = 0.05
ID_UNIQUE_SHARE = 0.9
ID_NAME = re.compile(r"(^|[^a-z])(id|key|uuid|guid|index|row|rownum|row_?number|record)\Z", re.IGNORECASE)
DUPLICATE_WARNING = 0.01
LEAKAGE_MIN_AUC = 0.8  # one column alone this strong, and stronger than all others together
SAMPLE_ROWS = 50_000  # the leakage check works on a sample of big files
BINS = 20
FOLDS = 5
SMOOTHING = 10.0


@dataclass(frozen=True)
class Finding:
    check: str  # class_balance, missing_values, constant_columns, id_like_columns, date_columns, duplicate_rows,
    # target_leakage
    severity: str  # info, warning, alert
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def evaluate(frame: pd.DataFrame, target: str, excluded: tuple[str, ...] = (),
             task: TaskKind = CLASSIFICATION, counts: Counts | None = None) -> list[dict[str, Any]]:
    """The findings on ``frame``. With ``counts`` (an upload read in chunks, ``frame`` a uniform sample of its
    labelled rows), the checks of one column at a time use the exact counts, and those that need rows side by side
    run on the sample and say so when it is not every row."""
    features = [c for c in frame.columns if c != target]
    regression = not task.predicts_classes  # a target's range, not its classes' balance
    if counts is None:
        dates = [c for c in features if is_date_column(frame[c])]
        findings = [_target_range(frame[target]) if regression else _class_balance(frame[target].astype(str)
                                                                                   .str.strip().value_counts()),
                    _missing({c: int(frame[c].isna().sum()) for c in features}, len(frame)),
                    _constant([c for c in features if frame[c].nunique(dropna=True) <= 1]),
                    _id_like(frame, [c for c in features if c not in dates], excluded), _dates(dates),
                    _duplicates(int(frame.duplicated().sum()), len(frame)),
                    _leakage(frame, target, features, excluded, regression)]
        return [asdict(f) for f in findings if f is not None]
    dates = [c for c in features if c in counts.dates]
    sampled = len(frame) if len(frame) < counts.rows else None
    range_filled = {c: high - low + 1 == counts.rows - counts.missing[c] for c, (low, high) in counts.numbers.items()}
    findings = [_target_range(frame[target], counts) if regression else
                _class_balance(pd.Series(counts.classes, dtype="int64")),
                _missing({c: counts.missing[c] for c in features}, counts.rows),
                _constant([c for c in features if c in counts.constant]),
                _estimated(_id_like(frame, [c for c in features if c not in dates], excluded, range_filled), sampled),
                _dates(dates),
                _estimated(_duplicates(counts.duplicates, counts.rows), counts.duplicates_estimated_on),
                _estimated(_leakage(frame, target, features, excluded, regression), sampled)]
    return [asdict(f) for f in findings if f is not None]


def _estimated(finding: Finding | None, rows: int | None) -> Finding | None:
    """A finding worked out on a sample of ``rows`` rows (None: on every row) says so."""
    if finding is None or rows is None:
        return finding
    return Finding(finding.check, finding.severity, f"{finding.message} (Estimated on {rows:,} sampled rows.)",
                   {**finding.details, "estimated_on_rows": rows})


def nothing_to_learn_from(frame: pd.DataFrame, target: str, excluded: tuple[str, ...],
                          findings: list[dict[str, Any]]) -> str | None:
    """Why no feature is left to learn from, or None: the upload excludes every column but the target, or what it
    keeps is constant or ID-like (as ``findings`` name them), which carries nothing to new rows (and which Azure
    AutoML's featurization drops, leaving it an empty table)."""
    features = [c for c in frame.columns if c != target and c not in excluded]
    after = f" after excluding {', '.join(excluded)}" if excluded else ""
    if not features:
        return f"no features remain{after}: the file has no other column than the target {target!r}"
    void = {kind: [c for c in _columns_of(findings, check) if c in features]
            for kind, check in (("constant", "constant_columns"), ("ID-like", "id_like_columns"))}
    if any(c not in void["constant"] + void["ID-like"] for c in features):
        return None
    dropped = " and ".join(f"{kind} ({', '.join(columns)})" for kind, columns in void.items() if columns)
    return f"no features remain{after}: the other columns are {dropped}, with nothing to predict {target!r} from"


def _columns_of(findings: list[dict[str, Any]], check: str) -> list[str]:
    return [str(c) for f in findings if f["check"] == check for c in f["details"]["columns"]]


def _target_range(y: pd.Series, counts: Counts | None = None) -> Finding:
    values = y.astype(float)
    quantiles = values.quantile([0.0, 0.5, 1.0]).round(6).tolist()
    distinct = int(values.nunique())
    estimated = ""
    if counts is not None and counts.target_low is not None and counts.target_high is not None:
        # The range is exact; the median and skew come from the sample when it is not every row.
        quantiles[0], quantiles[2] = round(counts.target_low, 6), round(counts.target_high, 6)
        distinct = counts.target_distinct if counts.target_distinct is not None else distinct
        if len(values) < counts.rows:
            estimated = f" The median is estimated on {len(values):,} sampled rows."
    details = {"min": quantiles[0], "median": quantiles[1], "max": quantiles[2],
               "distinct": distinct, "skew": round(float(values.skew()), 4)}
    return Finding("target_range", "info",
                   f"Numeric target: from {quantiles[0]:g} to {quantiles[2]:g}, median {quantiles[1]:g}, "
                   f"{details['distinct']:,} distinct values. Errors are normalised by this range.{estimated}",
                   details)


def _class_balance(counts: pd.Series) -> Finding:
    """From the rows per class, most first."""
    minority, majority = counts.index[-1], counts.index[0]
    share = counts.iloc[-1] / counts.sum()
    details = {"classes": {str(k): int(v) for k, v in counts.items()}, "minority": str(minority),
               "minority_share": round(float(share), 4)}
    if counts.iloc[-1] / counts.iloc[0] >= IMBALANCE_RATIO:
        return Finding("class_balance", "info", f"Classes are balanced enough: {minority!r} is {share:.1%} of rows.",
                       details)
    return Finding(
        "class_balance", "warning",
        f"Classes are imbalanced: {minority!r} is {share:.1%} of rows ({counts.iloc[-1]:,} of {counts.sum():,}). "
        f"A model that always says {majority!r} is {1 - share:.1%} accurate, so accuracy flatters. Training "
        "minimises log loss and, for a label metric, picks the decision threshold on out-of-fold predictions; "
        "AUC_weighted or average_precision_score_weighted judge such data better.", details)


def _missing(missing_rows: dict[str, int], rows: int) -> Finding:
    shares = {c: n / rows for c, n in missing_rows.items()}
    missing = {c: round(s, 4) for c, s in shares.items() if s > 0}
    if not missing:
        return Finding("missing_values", "info", "No missing values.", {"columns": {}})
    worst = max(missing, key=lambda c: missing[c])
    severity = "warning" if missing[worst] >= MISSING_WARNING else "info"
    listed = ", ".join(f"{c} {s:.1%}" for c, s in sorted(missing.items(), key=lambda kv: -kv[1])[:5])
    return Finding("missing_values", severity,
                   f"{len(missing)} column(s) have missing values ({listed}); they are imputed during featurization "
                   "(the median for numbers, a code of their own for text).", {"columns": missing})


def _constant(constant: list[str]) -> Finding | None:
    if not constant:
        return None
    return Finding("constant_columns", "warning",
                   f"Column(s) with a single value carry no information: {', '.join(constant)}.",
                   {"columns": constant})


def _id_like(frame: pd.DataFrame, features: list[str], excluded: tuple[str, ...] = (),
             range_filled: dict[str, bool] | None = None) -> Finding | None:
    """``range_filled``: whether each numeric column's values, over every row, span exactly as many numbers as
    there are values (a shuffled row number), when ``frame`` is a sample of the rows."""
    rows = len(frame)
    suspects = []
    for column in features:
        values = frame[column].dropna()
        unique = values.nunique()
        if rows < 50 or unique < 50:
            continue
        integers = pd.api.types.is_integer_dtype(values) or (
            pd.api.types.is_float_dtype(values) and bool((values % 1 == 0).all()))  # numbers with gaps read as floats
        text = pd.api.types.is_string_dtype(values) or values.dtype == object
        share = unique / len(values)
        # Row numbers and keys: every value once, in order or filling a range (a shuffled row number), or named so.
        numbered = integers and unique == len(values) and (
            values.is_monotonic_increasing or values.is_monotonic_decreasing
            or (float(values.max()) - float(values.min()) + 1 == len(values) if range_filled is None
                else range_filled.get(str(column), False)))
        words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(column))  # customerId -> customer_Id
        named = bool(ID_NAME.search(words)) and share >= ID_UNIQUE_SHARE
        if (text and share >= ID_UNIQUE_SHARE) or numbered or named:
            suspects.append(column)
    if not suspects:
        return None
    advice = "the upload excludes them from training" if set(suspects) <= set(excluded) else "exclude them"
    return Finding("id_like_columns", "warning",
                   f"Column(s) look like identifiers (almost every value unique): {', '.join(suspects)}. A model can "
                   f"memorise them without learning anything that carries to new rows; {advice}.",
                   {"columns": suspects})


def _dates(columns: list[str]) -> Finding | None:
    if not columns:
        return None
    return Finding("date_columns", "info",
                   f"Column(s) read as dates: {', '.join(columns)}. The model sees each as its year, month, day, "
                   "weekday, day of the year and hour, which carry to dates it never saw.", {"columns": columns})


def _duplicates(count: int, rows: int) -> Finding:
    share = count / rows
    severity = "warning" if share >= DUPLICATE_WARNING else "info"
    message = (f"{count:,} row(s) ({share:.1%}) repeat an earlier row exactly; repeated rows weigh more in "
               "training and can leak between training and validation." if count else "No duplicated rows.")
    return Finding("duplicate_rows", severity, message, {"rows": count, "share": round(share, 4)})


def _leakage(frame: pd.DataFrame, target: str, features: list[str], excluded: tuple[str, ...],
             regression: bool = False) -> Finding | None:
    """A column that alone predicts the target better than all the others together is a leakage suspect.

    Each column becomes out-of-fold, smoothed target rates per value (numbers in quantile bins), in log-odds;
    all columns together are their sum (naive Bayes). Cheap, and it needs no model library. A numeric
    target is read as "above its median or not".
    """
    sample = frame.sample(SAMPLE_ROWS, random_state=0) if len(frame) > SAMPLE_ROWS else frame
    if regression:
        values = sample[target].astype(float)
        y = (values > values.median()).to_numpy(dtype=np.int8)
    else:
        labels = sample[target].astype(str).str.strip()
        positive = labels.value_counts().index[-1]  # the minority class
        y = (labels == positive).to_numpy(dtype=np.int8)
    folds = np.random.default_rng(0).integers(0, FOLDS, len(sample))
    contributions = {c: _log_odds(sample[c], y, folds) for c in features}
    total = np.sum(list(contributions.values()), axis=0)
    scores = {c: (_auc(y, v), _auc(y, total - v)) for c, v in contributions.items()}
    suspects = {c: s for c, s in scores.items() if s[0] >= LEAKAGE_MIN_AUC and s[0] >= s[1]}
    if not suspects:
        return None
    column = max(suspects, key=lambda c: suspects[c][0] - suspects[c][1])
    alone, others = suspects[column]
    kept = "It is excluded from training by the upload." if column in excluded else (
        f"It is kept: if it is only known after the outcome, exclude it (blob metadata exclude={column}).")
    return Finding(
        "target_leakage", "alert",
        f"Target leakage suspect: {column!r} alone predicts {target!r} better than all {len(features) - 1} other "
        f"columns together (AUC {alone:.3f} vs {others:.3f}). A column this strong is often known only after "
        f"the outcome, so the model would score well here and badly in use. {kept}",
        {"column": column, "auc_alone": round(alone, 4), "auc_others": round(others, 4),
         "suspects": {c: {"auc_alone": round(a, 4), "auc_others": round(o, 4)} for c, (a, o) in suspects.items()}})


def _log_odds(values: pd.Series, y: NDArray[np.int8], folds: NDArray[np.int64]) -> NDArray[np.float64]:
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > BINS:
        keys = pd.qcut(values.rank(method="first"), BINS, labels=False).fillna(-1).astype(int).astype(str)
    else:
        keys = values.astype(str)
    keys_array = keys.to_numpy()
    prior = float(y.mean())
    rates = np.empty(len(y))
    for fold in range(FOLDS):
        train = folds != fold
        stats = pd.DataFrame({"k": keys_array[train], "y": y[train]}).groupby("k")["y"].agg(["sum", "count"])
        smoothed = (stats["sum"] + prior * SMOOTHING) / (stats["count"] + SMOOTHING)
        rates[~train] = pd.Series(keys_array[~train]).map(smoothed).fillna(prior).to_numpy()
    rates = np.clip(rates, 1e-6, 1 - 1e-6)
    result: NDArray[np.float64] = np.log(rates / (1 - rates)) - np.log(prior / (1 - prior))
    return result


def _auc(y: NDArray[np.int8], score: NDArray[np.float64]) -> float:
    """Area under the ROC curve from ranks (ties averaged)."""
    ranks = pd.Series(score).rank().to_numpy()
    positives = y == 1
    n1 = int(positives.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return 0.5
    return float((ranks[positives].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
