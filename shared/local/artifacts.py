"""Load a trained model's artefacts (ONNX or native) and predict from columns."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.model_contract import Columns, ModelSignature, Outputs, Results
from shared.schema import input_columns
from shared.tasks import TaskKind

# The judged fit's outputs on the validation rows (validation.csv's, in order), recorded by training beside it.
JUDGED_OUTPUTS = "holdout/validation_outputs.npy"
FORECASTER = "forecaster"  # the model format of a pickled shared.forecasting.Forecaster
FORECAST_WINDOWS = "forecast_windows.json"  # a forecaster's judged forecasts of its held-out windows, for the report
FORECASTS_UNEXPLAINED = ("a forecast has no per-row explanation: it follows the series' own history (the run's "
                         "report shows its forecasts against what happened); leave out 'explain'")


@dataclass
class LoadedModel:
    meta: dict[str, Any]  # all of model_meta.json: metrics, drift baseline, lineage
    signature: ModelSignature
    outputs: Callable[[Columns], Outputs]
    folder: Path | None = None
    unavailable_explanations: str | None = None  # why it cannot explain its answers; None when it can
    _explainer: Any = None

    def predict(self, columns: Columns) -> Outputs:
        return self.outputs(columns)

    def explain(self, columns: Columns, results: Results) -> list[dict[str, object]]:
        """Per-row contributions toward each row's class (the positive class for two) or predicted number;
        the explainer is loaded on first use."""
        if self._explainer is None:
            from shared.local.explain import Explainer

            assert self.folder is not None
            self._explainer = Explainer(self.folder, input_columns(self.signature.features))
        rows: list[dict[str, object]] = self._explainer.explain(columns, list(self.signature.classes), results)
        return rows

    def results(self, outputs: Outputs) -> Results:
        return self.signature.results(outputs)


def load_judged(artifact_dir: str | Path) -> LoadedModel:
    """The fit the validation metrics describe (``holdout/``: trained without the validation rows).

    Models trained before refits were kept have none: the deployed model is that fit.
    """
    folder = Path(artifact_dir)
    holdout = folder / "holdout" / "model.pkl"
    if not holdout.exists():
        return load(folder)
    meta = json.loads((folder / "model_meta.json").read_text())
    signature = ModelSignature.from_meta(meta)
    return LoadedModel(meta, signature, _pickled(holdout, meta, signature), None)


def _pickled(pickle: Path, meta: dict[str, Any], signature: ModelSignature) -> Callable[[Columns], Outputs]:
    """The outputs of a pickled model: a forecaster, or a scikit-learn pipeline."""
    if meta["model_format"] == FORECASTER:
        return _forecaster(pickle, signature)
    return _native(pickle, signature.task)


def _forecaster(pickle: Path, signature: ModelSignature) -> Callable[[Columns], Outputs]:
    """Forecasts of the ``shared.forecasting.Forecaster`` pickled at ``pickle``: one number per row."""
    import joblib

    from shared.forecasting.requests import rows_of

    forecaster = joblib.load(pickle)

    def forecast(columns: Columns) -> Outputs:
        return np.asarray(forecaster.predict(rows_of(columns, signature)), dtype=np.float64).reshape(-1, 1)

    return forecast


def _native(pickle: Path, task: TaskKind) -> Callable[[Columns], Outputs]:
    """Outputs of the scikit-learn pipeline pickled at ``pickle``."""
    import joblib
    import pandas as pd

    pipeline = joblib.load(pickle)

    def native(columns: Columns) -> Outputs:
        return task.outputs(pipeline, pd.DataFrame({name: values.reshape(-1) for name, values in columns.items()}))

    return native


def load(artifact_dir: str | Path) -> LoadedModel:
    """The ONNX Runtime session when the export succeeded, else the native pipeline."""
    folder = Path(artifact_dir)
    meta = json.loads((folder / "model_meta.json").read_text())
    names: dict[str, str] = meta["input_names"]
    signature = ModelSignature.from_meta(meta)
    if meta["model_format"] == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one request is tiny; threads only add latency
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])

        output = [signature.task.onnx_output]

        def onnx_outputs(columns: Columns) -> Outputs:
            feeds = {names[name]: values for name, values in columns.items()}
            return np.asarray(session.run(output, feeds)[0], dtype=np.float64)

        return LoadedModel(meta, signature, onnx_outputs, folder)
    return LoadedModel(meta, signature, _pickled(folder / "model.pkl", meta, signature), folder,
                       unavailable_explanations=FORECASTS_UNEXPLAINED if meta["model_format"] == FORECASTER else None)

