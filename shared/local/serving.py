"""Keeps each deployed model loaded, and swaps in a newly deployed one without a restart."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from shared import batch, drift, heap, scoring
from shared.local import artifacts
from shared.local.deployment import deployments_dir, read_pointer
from shared.model_contract import Columns, ModelSignature, Outputs, Results, ServedModel
from shared.ports import BatchSummary, ModelServer, ModelVersion

MAX_PINNED_VERSIONS = 8
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served(ServedModel):
    """A registered version loaded from its artefact folder."""

    registered: ModelVersion
    model: artifacts.LoadedModel
    monitor: drift.DriftMonitor | None = None  # production traffic only

    @property
    def name(self) -> str:
        return self.registered.name

    @property
    def version(self) -> str:
        return self.registered.version

    @property
    def signature(self) -> ModelSignature:
        return self.model.signature

    @property
    def unavailable_explanations(self) -> str | None:  # type: ignore[override]
        return self.model.unavailable_explanations

    def predict(self, columns: Columns) -> Outputs:
        return self.model.predict(columns)

    def explain(self, columns: Columns, results: Results) -> list[dict[str, object]]:
        return self.model.explain(columns, results)


class ModelCache:
    def __init__(self, state_dir: Path, drift_window_s: float = 300, drift_threshold: float = 0.2,
                 drift_min_rows: int = 200) -> None:
        self.state_dir = state_dir
        self.drift = drift.DriftTracker(drift_window_s, drift.publish)
        self.drift_threshold = drift_threshold
        self.drift_min_rows = drift_min_rows
        self._loaded: dict[str, tuple[float, Served]] = {}
        self._lock = threading.Lock()
        self._versions: dict[str, Served] = {}
        self._names: tuple[int, list[str]] | None = None
        # Plain strings for the stat() each request makes: building Path objects cost more than the call.
        self._folder = str(deployments_dir(state_dir))
        self._pointers: dict[str, str] = {}

    def _pointer(self, model_name: str) -> str:
        path = self._pointers.get(model_name)
        if path is None:
            path = self._pointers.setdefault(model_name, os.path.join(self._folder, f"{model_name}.json"))
        return path

    def deployed_names(self) -> list[str]:
        """Deployed model names, most recently deployed first; re-listed only when the folder changes."""
        try:
            stamp = os.stat(self._folder).st_mtime_ns  # a deployment renames a file in: the folder's mtime moves
        except FileNotFoundError:
            return []
        if self._names is None or self._names[0] != stamp:
            folder = deployments_dir(self.state_dir)
            pointers = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
            self._names = (stamp, [p.stem for p in pointers])
        return self._names[1]

    def get_version(self, version: ModelVersion) -> Served:
        """A registered version (deployed or not), loaded once and kept (a few at most)."""
        key = f"{version.name}@{version.version}"
        with self._lock:
            cached = self._versions.get(key)
            if cached is None:
                cached = Served(version, artifacts.load(version.artifact_uri))
                if len(self._versions) >= MAX_PINNED_VERSIONS:
                    self._versions.pop(next(iter(self._versions)))
                self._versions[key] = cached
            return cached

    def _monitor(self, version: ModelVersion, loaded: artifacts.LoadedModel) -> drift.DriftMonitor | None:
        reference = loaded.meta.get("drift_baseline")
        if not reference:
            return None
        dataset = loaded.meta.get("dataset", {})
        return self.drift.monitor(f"{version.name}@{version.version}", lambda: drift.DriftMonitor(
            version.name, version.version, version.run_id, f"{dataset.get('name')}:{dataset.get('version')}",
            reference, loaded.signature.positive_class, self.drift_threshold, self.drift_min_rows))

    def drift_summary(self, model_name: str) -> dict[str, object] | None:
        """The last closed window of the model in production, with the threshold."""
        version = read_pointer(self.state_dir, model_name)
        monitor = self.drift.monitors.get(f"{model_name}@{version.version}") if version else None
        if monitor is None:
            return None
        last = monitor.last
        return {"model": model_name, "version": monitor.version, "threshold": monitor.threshold,
                "window_s": self.drift.window_s, "training_positive_rate": monitor.reference.get("positive_rate"),
                "last_window": asdict(last) if last else None}

    def loaded(self, model_name: str) -> Served | None:
        """The model serving ``model_name`` when it is the one deployed, else None (``get`` would load)."""
        cached = self._loaded.get(model_name)
        if cached is None:
            return None
        try:
            current = os.stat(self._pointer(model_name)).st_mtime_ns == cached[0]
        except FileNotFoundError:
            return None
        return cached[1] if current else None

    def get(self, model_name: str) -> Served | None:
        """The model serving ``model_name``; one stat() per call notices a new deployment."""
        try:
            stamp = os.stat(self._pointer(model_name)).st_mtime_ns
        except FileNotFoundError:
            return None
        cached = self._loaded.get(model_name)
        if cached and cached[0] == stamp:
            return cached[1]
        with self._lock:
            cached = self._loaded.get(model_name)
            if cached and cached[0] == stamp:
                return cached[1]
            version = read_pointer(self.state_dir, model_name)
            if version is None:
                return None
            loaded = artifacts.load(version.artifact_uri)
            served = Served(version, loaded, self._monitor(version, loaded))
            heap.keep()  # the model and the libraries its loading imported serve until the next swap
            # Requests in flight keep the object they already hold; new ones get the new model.
            self._loaded[model_name] = (stamp, served)
            return served


class LocalModelServer(ModelServer):
    def __init__(self, cache: ModelCache, default: str) -> None:
        self.cache = cache
        self.default = default

    def default_model(self) -> str | None:
        return self.default or next(iter(self.cache.deployed_names()), None)

    def loaded(self, model_name: str | None) -> Served | None:
        name = model_name or self.default_model()
        return self.cache.loaded(name) if name else None

    def _served(self, model_name: str, version: ModelVersion | None) -> Served | None:
        return self.cache.get_version(version) if version is not None else self.cache.get(model_name)

    def score(self, model_name: str, request: scoring.ScoreRequest, version: ModelVersion | None = None
              ) -> scoring.ScoreResult | None:
        served = self._served(model_name, version)
        return scoring.score(request, served) if served is not None else None

    def deployed(self) -> dict[str, ModelSignature]:
        signatures = {}
        for name in self.cache.deployed_names():
            served = self.cache.get(name)
            if served is not None:
                signatures[name] = served.signature
        return signatures

    def drift_summary(self, model_name: str) -> dict[str, object] | None:
        return self.cache.drift_summary(model_name)

    def score_file(self, model_name: str, content: bytes, chunk_rows: int, write: Callable[[bytes], None]
                   ) -> BatchSummary | None:
        served = self.cache.get(model_name)
        return batch.score_csv(content, served, chunk_rows, write) if served is not None else None
