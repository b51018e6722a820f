"""Scoring in Azure: rows are checked against the model's schema here, then forwarded to its online endpoint."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared import drift, scoring, telemetry
from shared.azure import entities
from shared.azure.config import AzureSettings
from shared.azure.deployment import AzureDeployer, live_color
from shared.azure.endpoint_client import EndpointClient, endpoint_outputs
from shared.drift_windows import SharedDriftWindows
from shared.errors import NotSupported, ServiceUnavailable
from shared.model_contract import Columns, ModelSignature, Outputs, Results, ServedModel
from shared.ports import BatchSummary, DatasetRegistry, DatasetVersion, ModelServer, ModelVersion
from shared.run_events import APP_TAG

# Where an Azure model's explanations are, since its deployment does not compute them.
UNAVAILABLE_EXPLANATIONS = (
    "the Azure deployment answers labels and class probabilities, not explanations: AutoML computes a model's "
    "explanations in its run (GET /api/runs/{run_id}/report links the run in Azure ML studio, whose Explanations "
    "tab shows them once the run enables model explainability), and the local backend explains each row")
LABELS_ONLY = ("this deployment answers labels only (it was made without the app's scoring script): redeploy the "
               "model to get class probabilities")
TARGET_TTL_S = 30.0  # a deployment is noticed within this long, without a control-plane call per request
ML_SCOPE = "https://ml.azure.com/.default"


@dataclass(frozen=True)
class Target:
    version: ModelVersion
    scoring_uri: str
    deployment: str
    signature: ModelSignature
    dataset: DatasetVersion
    production: bool  # the version the endpoint's traffic goes to, whose requests the drift monitor watches


class EndpointModelServer(ModelServer):
    def __init__(self, ml: Any, deployer: AzureDeployer, datasets: DatasetRegistry, client: EndpointClient,
                 settings: AzureSettings, default: str, credential: Any = None,
                 clock: Callable[[], float] = time.monotonic, windows: SharedDriftWindows | None = None,
                 drift_threshold: float = 0.2, drift_min_rows: int = 200) -> None:
        self.ml = ml
        self.deployer = deployer
        self.datasets = datasets
        self.client = client
        self.settings = settings
        self.default = default
        self.credential = credential
        self.clock = clock
        self._targets: dict[str, tuple[float, Target | None]] = {}
        self._names: tuple[float, list[str]] | None = None
        self._secrets: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        # Every instance watches the production traffic it scores; the windows merge them all.
        self.windows = windows
        self.drift = drift.DriftTracker(windows.window_s if windows else 300, drift.publish,
                                        close=windows.flush if windows else None)
        self.drift_threshold = drift_threshold
        self.drift_min_rows = drift_min_rows
        self._baselines: dict[str, dict[str, Any] | None] = {}

    def default_model(self) -> str | None:
        return self.default or next(iter(self._endpoint_models()), None)

    def _endpoint_models(self) -> list[str]:
        """The models with an endpoint of this app, listed at most once per TARGET_TTL_S."""
        now = self.clock()
        if self._names is None or now - self._names[0] > TARGET_TTL_S:
            endpoints = [e for e in self.ml.online_endpoints.list() if (e.tags or {}).get("app") == APP_TAG]
            self._names = (now, sorted(e.tags["model"] for e in endpoints if e.tags.get("model")))
        return self._names[1]

    def deployed(self) -> dict[str, ModelSignature]:
        signatures = {}
        for name in self._endpoint_models():
            target = self._target(name, None)
            if target is not None:
                signatures[name] = target.signature
        return signatures

    def monitor(self, target: Target) -> drift.DriftMonitor | None:
        """The drift monitor of the version in production; None for another version, or one whose dataset
        version has no baseline (registered before baselines were kept)."""
        if not target.production or self.windows is None:
            return None
        version, dataset = target.version, target.dataset
        key = f"{version.name}@{version.version}"
        found = self.drift.monitors.get(key)
        if found is not None:
            return found
        reference = self._baseline(dataset)
        if reference is None:
            return None
        if not dataset.schema.task.predicts_classes:
            prediction = self.deployer.prediction_reference(version)
            reference = {**reference, **({"prediction": prediction} if prediction else {})}
        return self.drift.monitor(key, lambda: drift.DriftMonitor(
            version.name, version.version, version.run_id, f"{dataset.name}:{dataset.version}", reference,
            str(reference.get("positive_class", "")), self.drift_threshold, self.drift_min_rows))

    def _baseline(self, dataset: DatasetVersion) -> dict[str, Any] | None:
        key = f"{dataset.name}:{dataset.content_hash}"
        if key not in self._baselines:
            self._baselines[key] = self.datasets.drift_baseline(dataset)
        return self._baselines[key]

    def drift_summary(self, model_name: str) -> dict[str, object] | None:
        """The latest window merged across every instance: it closed between one and two windows ago."""
        target = self._target(model_name, None)
        monitor = self.monitor(target) if target is not None else None
        if monitor is None or self.windows is None:
            return None
        return {"model": model_name, "version": monitor.version, "threshold": monitor.threshold,
                "window_s": self.windows.window_s, "training_positive_rate": monitor.reference.get("positive_rate"),
                "last_window": self.windows.summarise(monitor), "at_most_s_old": 2 * self.windows.window_s}

    def score_file(self, model_name: str, content: bytes, chunk_rows: int, write: Callable[[bytes], None]
                   ) -> BatchSummary | None:
        raise NotSupported("in Azure a drop is scored by a job of the model's batch endpoint (shared.batch_flow), "
                           "not in the function")

    def score(self, model_name: str, request: scoring.ScoreRequest, version: ModelVersion | None = None
              ) -> scoring.ScoreResult | None:
        target = self._target(model_name, version)
        if target is None:
            return None
        return scoring.score(request, EndpointServedModel(target, self))

    def post(self, target: Target, body: dict[str, Any]) -> Any:
        """One call to the deployment holding the target version, with this app's credential."""
        headers = {"Authorization": f"Bearer {self._credential_for(target)}",
                   "azureml-model-deployment": target.deployment}
        with telemetry.span("endpoint.score", attributes={"model": target.version.name,
                                                          "version": target.version.version}):
            return self.client.post(target.scoring_uri, body, headers)

    def _target(self, model_name: str, version: ModelVersion | None) -> Target | None:
        key = f"{model_name}@{version.version if version else ''}"
        now = self.clock()
        cached = self._targets.get(key)
        if cached is not None and now - cached[0] < TARGET_TTL_S:
            return cached[1]
        with self._lock:
            target = self._resolve(model_name, version)
            self._targets[key] = (now, target)
            return target

    def _resolve(self, model_name: str, version: ModelVersion | None) -> Target | None:
        try:
            endpoint = self.ml.online_endpoints.get(entities.endpoint_name(self.settings, model_name))
        except ResourceNotFoundError:
            return None
        production = version is None
        if version is None:
            color = live_color(endpoint.traffic)
            version = self.deployer.production(model_name)
            if color is None or version is None:
                return None
        else:
            color = self._deployment_holding(endpoint.name, version)
            if color is None:
                raise ServiceUnavailable(f"version {version.version} of {model_name} is not deployed on the endpoint")
        dataset = self.datasets.get(version.dataset_name, version.dataset_version or None)
        if dataset is None:
            raise ServiceUnavailable(f"the schema of {model_name} v{version.version} is not available")
        excluded = frozenset(filter(None, version.tags.get("excluded_columns", "").split(",")))
        return Target(version, str(endpoint.scoring_uri), color,
                      ModelSignature.from_schema(dataset.schema, ignored=excluded), dataset, production)

    def _deployment_holding(self, endpoint: str, version: ModelVersion) -> str | None:
        for deployment in self.ml.online_deployments.list(endpoint_name=endpoint):
            if entities.deployed_version(deployment) == version.version:
                return str(deployment.name)
        return None

    def _credential_for(self, target: Target) -> str:
        """An Entra ID token from the managed identity (``aad_token``), or the endpoint's key (``key``)."""
        now = time.time()
        keyed = self.settings.auth_mode == "key"
        slot = entities.endpoint_name(self.settings, target.version.name) if keyed else "token"
        cached = self._secrets.get(slot)
        if cached is not None and cached[0] > now:
            return cached[1]
        if keyed:
            secret = (now + 3600, str(self.ml.online_endpoints.get_keys(slot).primary_key))
        else:
            token = self.credential.get_token(ML_SCOPE)
            secret = (float(token.expires_on) - 300, str(token.token))
        self._secrets[slot] = secret
        return secret[1]


class EndpointServedModel(ServedModel):
    """A model version on its online deployment, behind the same contract as a local one: scoring, its checks
    and its telemetry are ``shared.scoring``'s, whichever backend answers."""

    unavailable_explanations = UNAVAILABLE_EXPLANATIONS

    def __init__(self, target: Target, server: EndpointModelServer) -> None:
        self.target = target
        self.server = server
        self._signature = target.signature
        self.monitor = server.monitor(target)

    @property
    def name(self) -> str:
        return self.target.version.name

    @property
    def version(self) -> str:
        return self.target.version.version

    @property
    def signature(self) -> ModelSignature:
        return self._signature

    def predict(self, columns: Columns) -> Outputs:
        raise NotSupported("an Azure deployment scores the rows as sent, not prepared columns")

    def predict_rows(self, rows: Sequence[Mapping[str, object]], columns: Columns, probabilities: bool) -> Outputs:
        names = self._signature.names
        body = {"input_data": {"columns": names, "index": list(range(len(rows))),
                               "data": [[row.get(n) for n in names] for row in rows]}}
        answer = self.server.post(self.target, body)
        outputs, classes, certain = endpoint_outputs(answer, len(rows), self._signature.regression)
        if certain and probabilities:
            raise NotSupported(LABELS_ONLY)
        if classes:
            self._signature = replace(self._signature, classes=classes, threshold=None)
        return outputs

    def explain(self, columns: Columns, results: Results) -> list[dict[str, object]]:
        raise NotSupported(UNAVAILABLE_EXPLANATIONS)
