"""Load a trained model's artefacts (ONNX or native) and predict probabilities from columns."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.model_contract import Columns, ModelSignature, Probabilities


@dataclass
class LoadedModel:
    meta: dict[str, Any]  # all of model_meta.json: metrics, drift baseline, lineage
    signature: ModelSignature
    proba: Callable[[Columns], Probabilities]
    folder: Path | None = None
    _explainer: Any = None

    def predict_proba(self, columns: Columns) -> Probabilities:
        return self.proba(columns)

    def explain(self, columns: Columns, labels: list[str]) -> list[dict[str, object]]:
        """Per-row contributions toward each row's class (the positive class for two); loaded on first use."""
        if self._explainer is None:
            from shared.local.explain import Explainer

            assert self.folder is not None
            self._explainer = Explainer(self.folder)
        rows: list[dict[str, object]] = self._explainer.explain(columns, list(self.signature.classes), labels)
        return rows

    def labels(self, proba: Probabilities) -> list[str]:
        return self.signature.labels(proba)


def load_judged(artifact_dir: str | Path) -> LoadedModel:
    """The fit the validation metrics describe (``holdout/``: trained without the validation rows).

    Models trained before refits were kept have none: the deployed model is that fit.
    """
    folder = Path(artifact_dir)
    holdout = folder / "holdout" / "model.pkl"
    if not holdout.exists():
        return load(folder)
    meta = json.loads((folder / "model_meta.json").read_text())
    return LoadedModel(meta, ModelSignature.from_meta(meta), _native(holdout), None)


def _native(pickle: Path) -> Callable[[Columns], Probabilities]:
    """Probabilities from the scikit-learn pipeline pickled at ``pickle``."""
    import joblib
    import pandas as pd

    pipeline = joblib.load(pickle)

    def native_proba(columns: Columns) -> Probabilities:
        frame = pd.DataFrame({name: values.reshape(-1) for name, values in columns.items()})
        return np.asarray(pipeline.predict_proba(frame), dtype=np.float64)

    return native_proba


def load(artifact_dir: str | Path) -> LoadedModel:
    """The ONNX Runtime session when the export succeeded, else the native pipeline."""
    folder = Path(artifact_dir)
    meta = json.loads((folder / "model_meta.json").read_text())
    names: dict[str, str] = meta["input_names"]
    if meta["model_format"] == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one request is tiny; threads only add latency
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])

        def onnx_proba(columns: Columns) -> Probabilities:
            feeds = {names[name]: values for name, values in columns.items()}
            return np.asarray(session.run(["probabilities"], feeds)[0], dtype=np.float64)

        return LoadedModel(meta, ModelSignature.from_meta(meta), onnx_proba, folder)
    return LoadedModel(meta, ModelSignature.from_meta(meta), _native(folder / "model.pkl"), folder)

