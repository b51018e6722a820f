"""Blue/green deployment on a managed online endpoint, and the Azure side of the champion/challenger gate.

A new model goes to the idle colour at 0% traffic, answers a smoke test with
the dataset's example row, and only then takes all traffic. The previous
deployment stays at 0% for rollback until the next deployment replaces it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared import metrics
from shared.azure import entities
from shared.azure.config import AzureSettings
from shared.ports import DatasetRegistry, Deployer, Evaluator, ModelRegistry, ModelVersion, RunInfo
from shared.schema import Schema

log = logging.getLogger(__name__)


class SmokeTestFailed(RuntimeError):
    """The new deployment did not answer the example row; traffic stays where it was."""


def example_request(schema: Schema) -> dict[str, Any]:
    """One plausible row in the MLflow ``input_data`` form: the most frequent category, or 0."""
    features = schema.features
    row = [c.categories[0] if c.categories else (0 if c.is_numeric else "") for c in features]
    return {"input_data": {"columns": [c.name for c in features], "index": [0], "data": [row]}}


def live_color(traffic: dict[str, int] | None) -> str | None:
    live = [(share, name) for name, share in (traffic or {}).items() if share > 0]
    return max(live)[1] if live else None


class AzureDeployer(Deployer):
    def __init__(self, ml: Any, registry: ModelRegistry, datasets: DatasetRegistry, settings: AzureSettings) -> None:
        self.ml = ml
        self.registry = registry
        self.datasets = datasets
        self.settings = settings

    def deploy(self, model: ModelVersion) -> None:
        name = entities.endpoint_name(self.settings, model.name)
        endpoint = self._endpoint(name)
        if endpoint is None:
            endpoint = self.ml.online_endpoints.begin_create_or_update(
                entities.online_endpoint(self.settings, model.name)).result()
        live = live_color(endpoint.traffic)
        color = entities.other_color(live)
        # The idle colour holds the previous rollback target: replace it (the one before last goes now).
        deployment = entities.online_deployment(self.settings, model.name, color, model.version)
        self.ml.online_deployments.begin_create_or_update(deployment).result()
        self._smoke_test(name, color, model)
        keep = self.settings.keep_rollback and live is not None
        traffic = {color: 100, **({live: 0} if keep and live else {})}
        self.ml.online_endpoints.begin_create_or_update(
            entities.online_endpoint(self.settings, model.name, traffic)).result()
        if live and not keep:
            self.ml.online_deployments.begin_delete(name=live, endpoint_name=name).result()
        log.info("Endpoint %s: %s (v%s) takes 100%% of traffic; previous: %s", name, color, model.version,
                 f"{live} kept at 0% for rollback" if keep else (f"{live} deleted" if live else "none"))

    def _endpoint(self, name: str) -> Any | None:
        try:
            return self.ml.online_endpoints.get(name)
        except ResourceNotFoundError:
            return None

    def _smoke_test(self, endpoint: str, color: str, model: ModelVersion) -> None:
        dataset = self.datasets.get(model.dataset_name, model.dataset_version or None)
        if dataset is None:
            raise SmokeTestFailed(f"no dataset {model.dataset_name} v{model.dataset_version} for the example row")
        handle, path = tempfile.mkstemp(suffix=".json")
        try:
            with os.fdopen(handle, "w") as request_file:
                json.dump(example_request(dataset.schema), request_file)
            answer = self.ml.online_endpoints.invoke(endpoint_name=endpoint, deployment_name=color,
                                                     request_file=path)
        finally:
            os.unlink(path)
        try:
            predictions = json.loads(answer)
        except (TypeError, ValueError):
            raise SmokeTestFailed(f"deployment {color} answered the example row with {answer!r}") from None
        if not isinstance(predictions, list) or len(predictions) != 1:
            raise SmokeTestFailed(f"deployment {color} answered the example row with {predictions!r}")

    def production(self, model_name: str) -> ModelVersion | None:
        endpoint = self._endpoint(entities.endpoint_name(self.settings, model_name))
        if endpoint is None:
            return None
        color = live_color(endpoint.traffic)
        if color is None:
            return None
        deployment = self.ml.online_deployments.get(name=color, endpoint_name=endpoint.name)
        return self.registry.get(model_name, entities.deployed_version(deployment))


class AzureEvaluator(Evaluator):
    """Compares the validation scores AutoML logged: the challenger's own, and the champion's from its tags.

    Unlike the local evaluator, the champion is not re-scored on the challenger's
    rows (that would need compute); the decision reason says so.
    """

    basis = "as each run's AutoML validation logged them (not the same rows)"

    def score(self, model: ModelVersion, run: RunInfo) -> float | None:
        metric = metrics.resolve(run.metric).name
        if model.run_id == run.run_id:
            value = run.result.get("primary_metric", {}).get("value")
            return float(value) if value is not None else None
        return model.metrics.get(metric)
