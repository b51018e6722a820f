"""The metrics a run logged, read through the workspace's MLflow tracking server.

Azure ML serves MLflow's REST API (``/api/2.0/mlflow``) under the workspace's ``mlflow_tracking_uri`` with the
``azureml://`` scheme swapped for ``https://``, and takes an Entra ID token for Azure Resource Manager: the way
the azureml-examples read AutoML's metrics (``mlflow.get_run(best_child).data.metrics``), without the
azureml-mlflow plugin in the Function App. A run's properties carry no dependable score.
"""

from __future__ import annotations

import abc
import json
import logging
from typing import Any

from azure.core import PipelineClient
from azure.core.exceptions import AzureError
from azure.core.pipeline.policies import BearerTokenCredentialPolicy, HeadersPolicy, RetryPolicy
from azure.core.rest import HttpRequest

log = logging.getLogger(__name__)
ARM_SCOPE = "https://management.azure.com/.default"
MLFLOW_API = "api/2.0/mlflow"


class RunMetricsUnavailable(Exception):
    """The tracking server did not give the run's metrics; the message says why."""


class RunMetrics(abc.ABC):
    @abc.abstractmethod
    def of(self, run_id: str) -> dict[str, float]:
        """The latest value of each metric ``run_id`` logged; RunMetricsUnavailable when they cannot be read."""


def latest_metrics(answer: Any) -> dict[str, float]:
    """MLflow's ``GetRun`` response (``run.data.metrics``: key, value, timestamp, step) as the newest value of
    each key, by step, then timestamp."""
    found: dict[str, tuple[int, int, float]] = {}
    metrics = (((answer or {}).get("run") or {}).get("data") or {}).get("metrics") or []
    for item in metrics if isinstance(metrics, list) else []:
        try:
            key, value = str(item["key"]), float(item["value"])
            order = (int(item.get("step") or 0), int(item.get("timestamp") or 0))
        except (KeyError, TypeError, ValueError):
            continue
        if key not in found or order >= found[key][:2]:
            found[key] = (*order, value)
    return {key: value for key, (_, _, value) in found.items()}


class MlflowRunMetrics(RunMetrics):
    def __init__(self, ml: Any, credential: Any, transport: Any = None, timeout_s: float = 15.0) -> None:
        self.ml = ml
        self.credential = credential
        self.transport = transport
        self.timeout_s = timeout_s
        self._client: tuple[PipelineClient[HttpRequest, Any], str] | None = None

    def _pipeline(self) -> tuple[PipelineClient[HttpRequest, Any], str]:
        if self._client is None:
            uri = str(self.ml.workspaces.get(self.ml.workspace_name).mlflow_tracking_uri or "")
            if not uri.startswith("azureml://"):
                raise RunMetricsUnavailable(f"the workspace has no MLflow tracking URI ({uri!r})")
            base = "https://" + uri.removeprefix("azureml://").rstrip("/")
            policies = [HeadersPolicy({"Accept": "application/json"}), RetryPolicy(retry_total=2),
                        BearerTokenCredentialPolicy(self.credential, ARM_SCOPE)]
            options: dict[str, Any] = {"transport": self.transport} if self.transport is not None else {}
            self._client = (PipelineClient(base_url=base, policies=policies, **options), base)
        return self._client

    def of(self, run_id: str) -> dict[str, float]:
        try:  # any failure (the workspace lookup, the network, the answer) is the metrics being unavailable
            client, base = self._pipeline()
            request = HttpRequest("GET", f"{base}/{MLFLOW_API}/runs/get", params={"run_id": run_id})
            response = client.send_request(request, timeout=self.timeout_s)
            response.raise_for_status()
            return latest_metrics(json.loads(response.text()))
        except (AzureError, ValueError) as error:
            raise RunMetricsUnavailable(f"the metrics of run {run_id} could not be read: "
                                        f"{type(error).__name__}: {str(error)[:200]}") from None
