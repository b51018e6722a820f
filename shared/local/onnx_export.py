"""Export a fitted preprocessing + estimator pipeline to one ONNX file that scores raw columns.

Each feature becomes its own ONNX input (strings for text columns, float32 for
numbers) named by ``input_names``; the probabilities (or, for a regressor, the
predicted numbers) come out as a plain tensor.
The export is checked against the native pipeline on the validation split, and
the native pickle is kept as the fallback when conversion fails or disagrees.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shared.schema import Schema

log = logging.getLogger(__name__)
MAX_GAP = 1e-4  # for probabilities; a regressor's predictions are allowed this much of their own magnitude



def input_names(schema: Schema) -> dict[str, str]:
    """Column name -> a safe ONNX input name (``emp.var.rate`` -> ``emp_var_rate``), unique."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for column, _ in schema.model_inputs:
        base = re.sub(r"\W", "_", column) or "column"
        if base[0].isdigit():
            base = f"c_{base}"
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        names[column] = name
    return names


def _register_boosters() -> None:
    from lightgbm import LGBMClassifier, LGBMRegressor
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    from xgboost import XGBClassifier, XGBRegressor

    options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    update_registered_converter(LGBMClassifier, "LightGbmLGBMClassifier", calculate_linear_classifier_output_shapes,
                                convert_lightgbm, options=options)
    update_registered_converter(XGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes,
                                convert_xgboost, options=options)
    update_registered_converter(LGBMRegressor, "LightGbmLGBMRegressor", calculate_linear_regressor_output_shapes,
                                convert_lightgbm)
    update_registered_converter(XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes,
                                convert_xgboost)


def onnx_feeds(frame: pd.DataFrame, schema: Schema, names: dict[str, str]) -> dict[str, np.ndarray]:
    """The ONNX inputs for a frame of model inputs (``automl.feature_frame``)."""
    feeds: dict[str, np.ndarray] = {}
    for column, numeric in schema.model_inputs:
        values = frame[column]
        if numeric:
            feeds[names[column]] = values.to_numpy(dtype=np.float32, na_value=np.nan).reshape(-1, 1)
        else:
            feeds[names[column]] = np.array([("" if v is None else str(v)) for v in values],
                                            dtype=object).reshape(-1, 1)
    return feeds


def float32_thresholds(estimator: Any) -> None:
    """Round a LightGBM model's split thresholds down to float32, in place.

    LightGBM splits at double thresholds between data values; ONNX compares in
    float32, so a threshold rounded up past a value sends that row the other way.
    For float32 inputs ``x <= t`` equals ``x <= largest_float32_below(t)``, so this
    changes no native prediction and makes the ONNX tree ensemble exact.
    """
    from lightgbm import Booster, LGBMModel
    from sklearn.ensemble import VotingClassifier, VotingRegressor

    if isinstance(estimator, (VotingClassifier, VotingRegressor)):
        for member in estimator.estimators_:
            float32_thresholds(member)
        return
    if not isinstance(estimator, LGBMModel):
        return
    lines = estimator.booster_.model_to_string().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("threshold="):
            values = np.array(line.removeprefix("threshold=").split(), dtype=np.float64)
            down = values.astype(np.float32)
            down = np.where(down.astype(np.float64) > values, np.nextafter(down, np.float32(-np.inf)), down)
            lines[i] = "threshold=" + " ".join(repr(float(v)) for v in down)
    # tree_sizes holds each tree's length in bytes, which the edit changes: without it LightGBM parses sequentially.
    kept = [line for line in lines if not line.startswith("tree_sizes=")]
    estimator._Booster = Booster(model_str="\n".join(kept) + "\n")


def export(model: Any, schema: Schema, x_valid: pd.DataFrame, native: np.ndarray,
           out_dir: Path) -> tuple[str, list[str]]:
    """Write model.pkl always and model.onnx when it converts and agrees; returns (format, notes).

    ``native`` is the model's outputs on ``x_valid`` (probabilities, or predictions as rows x 1), computed
    after ``float32_thresholds``.
    """
    import joblib

    joblib.dump(model, out_dir / "model.pkl")
    try:
        converted = _convert(model, schema)
    except Exception as error:  # converters raise many kinds of errors
        note = f"ONNX export failed ({type(error).__name__}: {error}); serving the native model"
        log.warning("%s", note)
        return "native", [note]
    import onnxruntime as ort

    names = input_names(schema)
    session = ort.InferenceSession(converted.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = onnx_feeds(x_valid, schema, names)
    exported = np.asarray(session.run([schema.task.onnx_output], feeds)[0], dtype=np.float64).reshape(native.shape)
    gap = float(np.max(np.abs(exported - native))) if len(native) else 0.0
    # ONNX sums trees in float32: a regressor's error grows with the size of what it predicts.
    allowed = MAX_GAP * max(1.0, float(np.max(np.abs(native)))) if len(native) else MAX_GAP
    if gap > allowed:
        note = f"ONNX outputs differ from the native model by {gap:.2e}; serving the native model"
        log.warning("%s", note)
        return "native", [note]
    (out_dir / "model.onnx").write_bytes(converted.SerializeToString())
    return "onnx", [f"ONNX export agrees with the native model on the validation split (max gap {gap:.1e})"]


def _convert(model: Any, schema: Schema) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    _register_boosters()
    names = input_names(schema)
    initial_types = [
        (names[column], FloatTensorType([None, 1]) if numeric else StringTensorType([None, 1]))
        for column, numeric in schema.model_inputs
    ]
    # The ColumnTransformer refers to columns by name: give it the ONNX input names.
    prep = model.steps[0][1]
    renamed_transformers = [(n, t, [names[c] for c in cols]) for n, t, cols in prep.transformers_]
    original = prep.transformers_
    prep.transformers_ = renamed_transformers
    try:
        options = {id(model.steps[-1][1]): {"zipmap": False}} if schema.task.predicts_classes else None
        return convert_sklearn(model, initial_types=initial_types, target_opset={"": 17, "ai.onnx.ml": 3},
                               options=options)
    finally:
        prep.transformers_ = original
