"""Load a trained model's artefacts (ONNX or native) and predict probabilities from columns."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass
class LoadedModel:
    meta: dict[str, Any]
    predict_proba: Any  # (columns: dict[name, ndarray(n,1)]) -> ndarray(n, classes)
    folder: Path | None = None
    _explainer: Any = None

    def explain(self, columns: dict[str, NDArray[Any]], labels: list[str]) -> list[dict[str, Any]]:
        """Per-row contributions toward each row's class (the positive class for two); loaded on first use."""
        if self._explainer is None:
            from shared.local.explain import Explainer

            assert self.folder is not None
            self._explainer = Explainer(self.folder)
        rows: list[dict[str, Any]] = self._explainer.explain(columns, self.classes, labels)
        return rows

    @property
    def ignored(self) -> frozenset[str]:
        return frozenset(self.meta.get("ignored_columns", ()))

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"])

    def labels(self, proba: NDArray[np.float64]) -> list[str]:
        classes = self.classes
        if len(classes) == 2:
            return [classes[1] if p >= self.threshold else classes[0] for p in proba[:, 1]]
        return [classes[i] for i in proba.argmax(axis=1)]


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

        def onnx_proba(columns: dict[str, NDArray[Any]]) -> NDArray[np.float64]:
            feeds = {names[name]: values for name, values in columns.items()}
            return np.asarray(session.run(["probabilities"], feeds)[0], dtype=np.float64)

        return LoadedModel(meta, onnx_proba, folder)
    import joblib
    import pandas as pd

    pipeline = joblib.load(folder / "model.pkl")

    def native_proba(columns: dict[str, NDArray[Any]]) -> NDArray[np.float64]:
        frame = pd.DataFrame({name: values.reshape(-1) for name, values in columns.items()})
        return np.asarray(pipeline.predict_proba(frame), dtype=np.float64)

    return LoadedModel(meta, native_proba, folder)


def columns_from_frame(frame: Any, meta: dict[str, Any]) -> dict[str, NDArray[Any]]:
    """Model inputs from a DataFrame of raw rows (missing text -> '' which encodes as unknown)."""
    out: dict[str, NDArray[Any]] = {}
    for feature in meta["features"]:
        series = frame[feature["name"]]
        if feature["kind"] in ("integer", "number"):
            import pandas as pd

            out[feature["name"]] = pd.to_numeric(series, errors="coerce").to_numpy(
                dtype=np.float32, na_value=np.nan).reshape(-1, 1)
        else:
            out[feature["name"]] = np.array(["" if v is None or v != v else str(v) for v in series],
                                            dtype=object).reshape(-1, 1)
    return out
