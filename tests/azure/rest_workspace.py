"""Azure ML as REST, for the real ``MLClient``: an azure-core transport that answers like the service.

The contract tests build a real ``azure.ai.ml.MLClient`` over this transport,
so the SDK's own serializers shape every request and its deserializers read
every answer. Each response body follows a published document:

- ARM resources (jobs, data and model versions, online endpoints and
  deployments): Azure/azure-rest-api-specs,
  ``specification/machinelearningservices/resource-manager/Microsoft.MachineLearningServices/stable/2025-09-01``
  and its ``examples/`` (``Job/PipelineJob/get.json``, ``Workspace/ModelVersion/createOrUpdate.json``,
  ``Workspace/OnlineEndpoint/createOrUpdate.json``, ``OnlineDeployment/ManagedOnlineDeployment/get.json``,
  ``Workspace/DataVersionBase/createOrUpdate.json``, ``Workspace/BatchEndpoint/createOrUpdate.json`` and
  ``get.json``, ``Workspace/BatchDeployment/createOrUpdate.json`` and ``get.json``): ``{id, name, type,
  properties, systemData}``, with the request's ``properties`` echoed back plus the read-only fields
  (``provisioningState``, ``scoringUri``).
- A batch endpoint's jobs: the POST to its ``scoringUri`` answers ``BatchJobResource`` of the data-plane
  specification (Azure/azure-sdk-for-python, ``sdk/ml/azure-ai-ml/swagger/machinelearningservices/resource-manager/
  Microsoft.MachineLearningServices/preview/2020-09-01-dataplanepreview/mfe.json``), and the job is then a pipeline
  job of the jobs API (``Job/PipelineJob/get.json``), whose ``status`` tells how it went.
- Run history (children of a pipeline job, the AutoML best child): the ``Run`` and ``PaginatedRunList``
  models of the SDK's own ``azure/ai/ml/_restclient/runhistory``; the service answers those for pipeline
  child jobs, which the jobs endpoint returns with ``properties: null``.
- Long-running operations: ARM's ``Azure-AsyncOperation`` header, answered ``{"status": "Succeeded"}``.
- Logged metrics: MLflow's REST API (``GET api/2.0/mlflow/runs/get``, whose answer is the ``GetRun.Response``
  message of MLflow's ``mlflow/protos/service.proto``) under the workspace's ``mlFlowTrackingUri``, as
  azureml-examples' ``sdk/python/using-mlflow/using-rest-api/using_mlflow_rest_api.ipynb`` calls it. The best
  child's run-history properties carry no ``score`` (the published ``automl_child`` runs have none).

Every request is kept (method, path, JSON body) so tests can check what the
app sent, and its body against the spec's schema (``spec_schemas.py``).
"""

from __future__ import annotations

import copy
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import requests
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.pipeline._tools import is_rest
from azure.core.pipeline.transport import HttpTransport
from azure.core.pipeline.transport._requests_basic import RequestsTransportResponse
from azure.core.rest._requests_basic import RestRequestsTransportResponse

from shared.azure.dry_run import graded_answer

SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
GROUP = "test-rg"
WORKSPACE = "my-aml-workspace"
REGION = "westeurope"
ARM = "https://management.azure.com"
RUN_HISTORY = f"https://{REGION}.api.azureml.ms"
WS_PATH = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/Microsoft.MachineLearningServices"
           f"/workspaces/{WORKSPACE}")
SYSTEM_DATA = {"createdAt": "2026-01-01T12:34:56.999Z", "createdBy": "app", "createdByType": "ManagedIdentity",
               "lastModifiedAt": "2026-01-01T12:34:56.999Z", "lastModifiedBy": "app",
               "lastModifiedByType": "ManagedIdentity"}


class FakeCredential:
    """A token credential for the SDK (no Entra ID here): JWT-shaped, with the audience asked for, because
    the SDK decodes the Azure ML token of a job submission and checks its audience."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def _token(self, scopes: tuple[str, ...]) -> str:
        self.scopes.extend(scopes)
        audience = scopes[0].removesuffix("/.default") if scopes else ""
        claims = {"aud": audience, "tid": "33333333-4444-5555-6666-777777777777", "exp": 4_102_444_800}
        return jwt.encode(claims, "contract-test-signing-key-of-32-bytes", algorithm="HS256")

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token(scopes), 4_102_444_800)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo(self._token(scopes), 4_102_444_800)


@dataclass
class Sent:
    method: str
    path: str
    query: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    host: str = ""

    @property
    def operation(self) -> str:
        """The request with names reduced to their kind, e.g. ``PUT onlineEndpoints/{}``."""
        tail = self.path.split(WS_PATH, 1)[-1].strip("/") if WS_PATH in self.path else self.path.strip("/")
        prefix = "history/" if self.path.startswith("/history/") else ""
        parts = tail.split("/")
        if prefix == "" and tail == "jobs" and self.host.endswith(".inference.ml.azure.com"):
            return f"{self.method} batch-scoring/jobs"
        kinds = [p if i % 2 == 0 or p in ("children", "cancel", "listKeys", "score") else "{}"
                 for i, p in enumerate(parts)]
        return f"{self.method} {prefix}{'/'.join(kinds)}"


@dataclass
class RestWorkspace:
    """The service's state: what was created, and what the next answers should be."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # ARM JobBase resources
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # run history Run objects
    logged: dict[str, dict[str, float]] = field(default_factory=dict)  # MLflow metrics per run id
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    models: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    batch_endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    batch_deployments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    codes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # Whether the scoring script's folder is already stored (uploaded by an earlier deployment): the lookup by
    # content hash then finds it. Otherwise the SDK asks for a place to upload to, and gets ``upload_sas``.
    code_stored: bool = True
    upload_sas: str = ""
    # Where each upload goes, by the Code asset's name, as the service hands each pending upload a place of its
    # own (a container SAS URL); without it, ``upload_sas`` for every upload.
    upload_location: Callable[[str], str] | None = None
    store: Any = None  # the app's storage (a RecordingStore): deployments find the held-out rows' labels there
    sent: list[Sent] = field(default_factory=list)
    batch_jobs: list[str] = field(default_factory=list)  # the jobs batch endpoints were asked for, in order
    scoring_answer: str = '["no"]'
    scoring_status: int = 200  # what the endpoint's scoring route answers (424: the model's scoring failed)
    new_resource_state: str = "Creating"  # the provisioningState a fresh PUT of an endpoint/deployment reports
    # What a deployment answers, when a test plays it (e.g. its uploaded scoring script over a stand-in model):
    # called with the deployment resource and the request body, it returns the answer's JSON text.
    scorer: Callable[[dict[str, Any], Any], str] | None = None

    def writes(self) -> list[str]:
        return [s.operation for s in self.sent if s.method in ("PUT", "POST", "DELETE", "PATCH")]

    def bodies(self, operation: str) -> list[Any]:
        return [s.body for s in self.sent if s.operation == operation]

    # ---- what Azure does on its own ------------------------------------------------
    def provision_all(self, state: str = "Succeeded") -> None:
        """Azure ML finishing every pending endpoint and deployment operation."""
        for resource in [*self.endpoints.values(), *self.deployments.values(), *self.batch_endpoints.values(),
                         *self.batch_deployments.values()]:
            resource["properties"]["provisioningState"] = state

    def add_run(self, run_id: str, parent: str | None, status: str, *, display_name: str = "",
                tags: dict[str, str] | None = None, properties: dict[str, str] | None = None,
                experiment: str = "") -> dict[str, Any]:
        """A run as run history stores it (``Run`` of the runhistory restclient)."""
        run = {"runId": run_id, "parentRunId": parent, "rootRunId": parent or run_id, "status": status,
               "displayName": display_name or run_id, "experimentId": "6a2a8e3f-0000-0000-0000-000000000000",
               "runType": None, "tags": dict(tags or {}), "properties": dict(properties or {}),
               "createdUtc": "2026-01-01T12:00:00.000Z", "startTimeUtc": "2026-01-01T12:00:05.000Z",
               "endTimeUtc": "2026-01-01T12:40:00.000Z" if status in ("Completed", "Failed") else None,
               "name": experiment or None}
        self.runs[run_id] = run
        return run

    def finish_pipeline(self, job_name: str, *, score: float = 0.91, algorithm: str = "LightGBM",
                        status: str = "Completed", node_tags: bool = True) -> dict[str, str]:
        """Play Azure ML running pipeline job ``job_name`` to the end: its AutoML node (a child run with the
        node's tags as the job definition gave them, unless ``node_tags`` is off) and the node's trials.
        Returns the run ids: pipeline, node, best."""
        job = self.jobs[job_name]
        job["properties"]["status"] = status
        node_name, node = next(iter(job["properties"]["jobs"].items()))
        node_run, best = f"{job_name}_{node_name}_0", f"AutoML_{job_name[-8:]}_3"
        failure = {} if status == "Completed" else {"azureml.failure_reason": "UserError: no trial finished"}
        tags = dict(node.get("tags") or {}) if node_tags else {}
        if status == "Completed":
            tags["automl_best_child_run_id"] = best
        # AutoML's parent run names the curated environment its trials ran in (as the published runs show it)
        self.add_run(node_run, job_name, status, display_name=node_name, tags=tags,
                     properties={"runTemplate": "AutoML", "azureml.pipelinerunid": job_name, **failure,
                                 "environment_cpu_name": "AzureML-ai-ml-automl", "environment_cpu_label": "7"})
        metric = str(job["properties"]["tags"].get("metric", "accuracy"))
        for trial in range(4):
            trial_id = f"AutoML_{job_name[-8:]}_{trial}"
            self.add_run(trial_id, node_run, status, tags={},
                         properties={"runTemplate": "automl_child", "run_algorithm": algorithm})
            self.logged[trial_id] = {metric: score - (0 if trial == 3 else 0.01 * (trial + 1)), "log_loss": 0.3}
        return {"pipeline": job_name, "node": node_run, "best": best}

    # ---- the transport's dispatch --------------------------------------------------
    def answer(self, method: str, url: str, body: Any, headers: dict[str, str] | None = None
               ) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(url)
        self.sent.append(Sent(method, parts.path, parts.query, body, dict(headers or {}), parts.netloc))
        if method == "POST" and parts.path == "/jobs" and parts.netloc.endswith(".inference.ml.azure.com"):
            return self._invoke_batch(body, parts.netloc.split(".", 1)[0])
        for pattern, verb, handler in self._routes():
            match = re.fullmatch(pattern, parts.path)
            if match and verb == method:
                return handler(body, *match.groups())
        return 404, _error("NotFound", f"no route for {method} {parts.path}"), {}

    def _routes(self) -> list[tuple[str, str, Callable[..., tuple[int, Any, dict[str, str]]]]]:
        ws = re.escape(WS_PATH)
        history = (r"/history/v1\.0/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
                   r"Microsoft\.MachineLearningServices/workspaces/[^/]+")
        return [
            (ws, "GET", self._workspace),
            (r"/discovery/workspaces/([^/]+)", "GET", self._discovery),
            (ws + r"/jobs/([^/]+)", "PUT", self._put_job),
            (ws + r"/jobs/([^/]+)", "GET", self._get_job),
            (ws + r"/jobs/([^/]+)/cancel", "POST", self._cancel_job),
            (history + r"/runs/([^/]+)", "GET", self._get_run),
            (history + r"/runs/([^/]+)/children", "GET", self._run_children),
            (ws + r"/data/([^/]+)/versions/([^/]+)", "PUT", self._put_data),
            (ws + r"/data/([^/]+)/versions/([^/]+)", "GET", self._get_data),
            (ws + r"/data/([^/]+)/versions", "GET", self._list_data),
            (ws + r"/data", "GET", self._data_containers),
            (ws + r"/models/([^/]+)/versions/([^/]+)", "PUT", self._put_model),
            (ws + r"/models/([^/]+)/versions/([^/]+)", "GET", self._get_model),
            (ws + r"/models/([^/]+)/versions", "GET", self._list_models),
            (ws + r"/models/([^/]+)", "GET", self._model_container),
            (ws + r"/models", "GET", self._model_containers),
            (ws + r"/codes/([^/]+)/versions", "GET", self._list_codes),
            (ws + r"/codes/([^/]+)/versions/([^/]+)", "GET", self._get_code),
            (ws + r"/codes/([^/]+)/versions/([^/]+)", "PUT", self._put_code),
            (ws + r"/codes/([^/]+)/versions/([^/]+)/startPendingUpload", "POST", self._pending_upload),
            (ws + r"/onlineEndpoints/([^/]+)", "PUT", self._put_endpoint),
            (ws + r"/onlineEndpoints/([^/]+)", "GET", self._get_endpoint),
            (ws + r"/onlineEndpoints", "GET", self._list_endpoints),
            (ws + r"/onlineEndpoints/([^/]+)/listKeys", "POST", self._endpoint_keys),
            (ws + r"/onlineEndpoints/([^/]+)/token", "POST", self._endpoint_token),
            (ws + r"/onlineEndpoints/([^/]+)/deployments", "GET", self._list_deployments),
            (ws + r"/onlineEndpoints/([^/]+)/deployments/([^/]+)", "PUT", self._put_deployment),
            (ws + r"/onlineEndpoints/([^/]+)/deployments/([^/]+)", "GET", self._get_deployment),
            (ws + r"/onlineEndpoints/([^/]+)/deployments/([^/]+)", "DELETE", self._delete_deployment),
            (ws + r"/batchEndpoints/([^/]+)", "PUT", self._put_batch_endpoint),
            (ws + r"/batchEndpoints/([^/]+)", "GET", self._get_batch_endpoint),
            (ws + r"/batchEndpoints/([^/]+)/deployments", "GET", self._list_batch_deployments),
            (ws + r"/batchEndpoints/([^/]+)/deployments/([^/]+)", "PUT", self._put_batch_deployment),
            (ws + r"/batchEndpoints/([^/]+)/deployments/([^/]+)", "GET", self._get_batch_deployment),
            (r"/operations/([^/]+)", "GET", self._operation),
            (r"/score/([^/]+)", "POST", self._score),
            (r"/mlflow/v1\.0" + ws + r"/api/2\.0/mlflow/runs/get", "GET", self._mlflow_run),
        ]

    def _workspace(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        return 200, {"id": WS_PATH, "name": WORKSPACE, "type": "Microsoft.MachineLearningServices/workspaces",
                     "location": REGION, "properties": {
                         "discoveryUrl": f"{RUN_HISTORY}/discovery/workspaces/{WORKSPACE}",
                         "mlFlowTrackingUri": f"azureml://{REGION}.api.azureml.ms/mlflow/v1.0{WS_PATH}",
                         "workspaceId": "11111111-2222-3333-4444-555555555555"},
                     "systemData": SYSTEM_DATA}, {}

    def _discovery(self, body: Any, name: str) -> tuple[int, Any, dict[str, str]]:
        return 200, {"api": RUN_HISTORY, "catalog": RUN_HISTORY, "experimentation": RUN_HISTORY,
                     "history": RUN_HISTORY, "modelmanagement": RUN_HISTORY, "pipelines": RUN_HISTORY}, {}

    def _arm(self, kind: str, path: str, name: str, properties: dict[str, Any], extra: dict[str, Any] | None = None
             ) -> dict[str, Any]:
        return {"id": f"{WS_PATH}/{path}", "name": name, "type": f"Microsoft.MachineLearningServices/workspaces/{kind}",
                "properties": properties, "systemData": SYSTEM_DATA, **(extra or {})}

    # jobs: ARM for the pipeline job itself, run history for its children (the SDK's documented split)
    def _put_job(self, body: Any, name: str) -> tuple[int, Any, dict[str, str]]:
        properties = copy.deepcopy(body["properties"])
        properties.setdefault("status", "NotStarted")
        properties.setdefault("services", {"Studio": {"endpoint": f"https://ml.azure.com/runs/{name}"}})
        self.jobs[name] = self._arm("jobs", f"jobs/{name}", name, properties)
        return 201, self.jobs[name], {}

    def _get_job(self, body: Any, name: str) -> tuple[int, Any, dict[str, str]]:
        if name in self.jobs:
            return 200, self.jobs[name], {}
        if name in self.runs:  # a pipeline child: the jobs endpoint has no properties for it
            return 200, {"id": f"{WS_PATH}/jobs/{name}", "name": name, "type": "Microsoft.MachineLearningServices/"
                         "workspaces/jobs", "properties": None, "systemData": SYSTEM_DATA}, {}
        return 404, _error("UserError", f"job {name} not found"), {}

    def _cancel_job(self, body: Any, name: str) -> tuple[int, Any, dict[str, str]]:
        if name not in self.jobs:
            return 404, _error("UserError", f"job {name} not found"), {}
        self.jobs[name]["properties"]["status"] = "CancelRequested"
        return 202, None, {"Location": f"{ARM}/operations/cancel-{name}"}

    def _get_run(self, body: Any, run_id: str) -> tuple[int, Any, dict[str, str]]:
        run = self.runs.get(run_id)
        return (200, run, {}) if run else (404, _error("UserError", f"run {run_id} not found"), {})

    def _run_children(self, body: Any, run_id: str) -> tuple[int, Any, dict[str, str]]:
        return 200, {"value": [r for r in self.runs.values() if r["parentRunId"] == run_id], "nextLink": None}, {}

    # assets
    def _put_data(self, body: Any, name: str, version: str) -> tuple[int, Any, dict[str, str]]:
        self.data[(name, version)] = self._arm("data/versions", f"data/{name}/versions/{version}", version,
                                               copy.deepcopy(body["properties"]))
        return 201, self.data[(name, version)], {}

    def _get_data(self, body: Any, name: str, version: str) -> tuple[int, Any, dict[str, str]]:
        found = self.data.get((name, version))
        return (200, found, {}) if found else (404, _error("UserError", f"data {name}:{version} not found"), {})

    def _list_data(self, body: Any, name: str) -> tuple[int, Any, dict[str, str]]:
        return 200, {"value": [d for (n, _v), d in self.data.items() if n == name]}, {}

    def _data_containers(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        names = sorted({n for (n, _v) in self.data})
        return 200, {"value": [self._arm("data", f"data/{n}", n, {"dataType": "uri_file"}) for n in names]}, {}

    def _put_model(self, body: Any, name: str, version: str) -> tuple[int, Any, dict[str, str]]:
        properties = copy.deepcopy(body["properties"])
        if properties.get("modelType") == "mlflow_model" and not properties.get("flavors"):
            # The service reads the flavors from the MLmodel file it finds at modelUri.
            properties["flavors"] = {"python_function": {"data": {"loader_module": "mlflow.sklearn"}}}
        properties.setdefault("flavors", {})
        self.models[(name, version)] = self._arm("models/versions", f"models/{name}/versions/{version}", version,
                                                 properties)
        return 201, self.models[(name, version)], {}

    def _get_model(self, body: Any, name: str, version: str) -> tuple[int, Any, dict[str, str]]:
        found = self.models.get((name, version))
        return (200, found, {}) if found else (404, _error("UserError", f"model {name}:{version} not found"), {})

    def _list_models(self, body: Any, name: str) -> tuple[int, Any, dict[str, str]]:
        return 200, {"value": [m for (n, _v), m in self.models.items() if n == name]}, {}

    def _model_containers(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        """Workspace/ModelContainer/list.json."""
        return 200, {"value": [self._model_container(None, n)[1] for n in sorted({n for (n, _v) in self.models})]}, {}

    def _model_container(self, body: Any, name: str) -> tuple[int, Any, dict[str, str]]:
        versions = [int(v) for (n, v) in self.models if n == name and v.isdigit()]
        if not versions:
            return 404, _error("UserError", f"model {name} not found"), {}
        return 200, self._arm("models", f"models/{name}", name,
                              {"latestVersion": str(max(versions)), "nextVersion": str(max(versions) + 1)}), {}

    # code assets (Workspace/CodeVersion/createOrUpdate.json, get.json, list.json; the pending upload's answer is
    # the spec's PendingUploadResponseDto, as Workspace/CodeVersion's startPendingUpload example gives it)
    def _list_codes(self, body: Any, name: str) -> tuple[int, Any, dict[str, str]]:
        wanted = parse_qs(self.sent[-1].query).get("hash", [""])[0]
        found = [c for (n, _v), c in self.codes.items() if n == name
                 and c["properties"].get("properties", {}).get("hash_sha256") == wanted]
        if not found and wanted and self.code_stored:  # stored by an earlier deployment of this script
            found = [self._code(name, "1", {"codeUri": f"https://wsstore.blob.core.windows.net/code/{wanted}",
                                            "isAnonymous": True, "properties": {"hash_sha256": wanted,
                                                                                "hash_version": "202208"}})]
        return 200, {"value": found}, {}

    def _code(self, name: str, version: str, properties: dict[str, Any]) -> dict[str, Any]:
        self.codes[(name, version)] = self._arm("codes/versions", f"codes/{name}/versions/{version}", version,
                                                properties)
        return self.codes[(name, version)]

    def _get_code(self, body: Any, name: str, version: str) -> tuple[int, Any, dict[str, str]]:
        found = self.codes.get((name, version))
        return (200, found, {}) if found else (404, _error("UserError", f"code {name}:{version} not found"), {})

    def _put_code(self, body: Any, name: str, version: str) -> tuple[int, Any, dict[str, str]]:
        return 201, self._code(name, version, copy.deepcopy(body["properties"])), {}

    def _pending_upload(self, body: Any, name: str, version: str) -> tuple[int, Any, dict[str, str]]:
        sas = self.upload_location(name) if self.upload_location is not None else self.upload_sas
        if not sas:
            return 500, _error("InternalError", "no upload location in this test"), {}
        blob_uri = sas.split("?", 1)[0]
        return 200, {"blobReferenceForConsumption": {
            "blobUri": blob_uri, "storageAccountArmId": None,
            "credential": {"credentialType": "SAS", "sasUri": sas}},
            "pendingUploadId": None, "pendingUploadType": "TemporaryBlobReference"}, {}

    # online endpoints and deployments: PUTs are long-running; the resource shows its provisioningState
    def _put_endpoint(self, body: Any, name: str) -> tuple[int, Any, dict[str, str]]:
        properties = copy.deepcopy(body["properties"])
        existing = self.endpoints.get(name)
        properties.update(provisioningState="Updating" if existing else self.new_resource_state,
                          scoringUri=f"{ARM}/score/{name}", swaggerUri=f"{ARM}/score/{name}/swagger.json")
        self.endpoints[name] = self._arm("onlineEndpoints", f"onlineEndpoints/{name}", name, properties,
                                         {"location": body.get("location", REGION), "tags": body.get("tags", {}),
                                          "identity": {"type": "SystemAssigned"}})
        return 201, self.endpoints[name], {"Azure-AsyncOperation": f"{ARM}/operations/endpoint-{name}"}

    def _get_endpoint(self, body: Any, name: str) -> tuple[int, Any, dict[str, str]]:
        found = self.endpoints.get(name)
        return (200, found, {}) if found else (404, _error("UserError", f"endpoint {name} not found"), {})

    def _list_endpoints(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        return 200, {"value": list(self.endpoints.values())}, {}

    def _endpoint_keys(self, body: Any, name: str) -> tuple[int, Any, dict[str, str]]:
        return 200, {"primaryKey": f"key-of-{name}", "secondaryKey": f"other-key-of-{name}"}, {}

    def _endpoint_token(self, body: Any, name: str) -> tuple[int, Any, dict[str, str]]:
        return 200, {"accessToken": f"token-of-{name}", "expiryTimeUtc": 4_102_444_800, "refreshAfterTimeUtc":
                     4_102_444_000, "tokenType": "Bearer"}, {}

    def _put_deployment(self, body: Any, endpoint: str, name: str) -> tuple[int, Any, dict[str, str]]:
        # The service fills in what the request left out, as the published get.json example shows.
        properties = {"scaleSettings": {"scaleType": "Default"},
                      "requestSettings": {"maxQueueWait": "PT0.5S", "requestTimeout": "PT5S",
                                          "maxConcurrentRequestsPerInstance": 1},
                      "livenessProbe": {"failureThreshold": 30, "successThreshold": 1, "timeout": "PT2S",
                                        "period": "PT10S", "initialDelay": "PT10S"},
                      "readinessProbe": {"failureThreshold": 30, "successThreshold": 1, "timeout": "PT2S",
                                         "period": "PT10S", "initialDelay": "PT10S"},
                      **copy.deepcopy(body["properties"]), "provisioningState": self.new_resource_state}
        self.deployments[(endpoint, name)] = self._arm(
            "onlineEndpoints/deployments", f"onlineEndpoints/{endpoint}/deployments/{name}", name, properties,
            {"location": body.get("location", REGION), "tags": body.get("tags", {}), "sku": body.get("sku")})
        return 201, self.deployments[(endpoint, name)], {
            "Azure-AsyncOperation": f"{ARM}/operations/deployment-{endpoint}-{name}"}

    def _list_deployments(self, body: Any, endpoint: str) -> tuple[int, Any, dict[str, str]]:
        return 200, {"value": [d for (e, _n), d in self.deployments.items() if e == endpoint]}, {}

    def _get_deployment(self, body: Any, endpoint: str, name: str) -> tuple[int, Any, dict[str, str]]:
        found = self.deployments.get((endpoint, name))
        return (200, found, {}) if found else (404, _error("UserError", f"deployment {name} not found"), {})

    def _delete_deployment(self, body: Any, endpoint: str, name: str) -> tuple[int, Any, dict[str, str]]:
        self.deployments.pop((endpoint, name), None)
        return 202, None, {"Location": f"{ARM}/operations/delete-{endpoint}-{name}"}

    # batch endpoints and deployments (Workspace/BatchEndpoint/*.json, Workspace/BatchDeployment/*.json): long-running
    # PUTs whose resource shows its provisioningState; the endpoint's scoringUri takes the jobs
    def _put_batch_endpoint(self, body: Any, name: str) -> tuple[int, Any, dict[str, str]]:
        properties = copy.deepcopy(body["properties"])
        existing = self.batch_endpoints.get(name)
        properties.update(provisioningState="Updating" if existing else self.new_resource_state,
                          scoringUri=f"https://{name}.{REGION}.inference.ml.azure.com/jobs",
                          swaggerUri=f"https://{name}.{REGION}.inference.ml.azure.com/swagger.json")
        self.batch_endpoints[name] = self._arm("batchEndpoints", f"batchEndpoints/{name}", name, properties,
                                               {"location": body.get("location", REGION),
                                                "tags": body.get("tags", {}), "kind": "string"})
        return 201, self.batch_endpoints[name], {"Azure-AsyncOperation": f"{ARM}/operations/batch-endpoint-{name}"}

    def _get_batch_endpoint(self, body: Any, name: str) -> tuple[int, Any, dict[str, str]]:
        found = self.batch_endpoints.get(name)
        return (200, found, {}) if found else (404, _error("UserError", f"batch endpoint {name} not found"), {})

    def _put_batch_deployment(self, body: Any, endpoint: str, name: str) -> tuple[int, Any, dict[str, str]]:
        properties = {**copy.deepcopy(body["properties"]), "provisioningState": self.new_resource_state}
        self.batch_deployments[(endpoint, name)] = self._arm(
            "batchEndpoints/deployments", f"batchEndpoints/{endpoint}/deployments/{name}", name, properties,
            {"location": body.get("location", REGION), "tags": body.get("tags", {}), "kind": "string"})
        return 201, self.batch_deployments[(endpoint, name)], {
            "Azure-AsyncOperation": f"{ARM}/operations/batch-deployment-{endpoint}-{name}"}

    def _get_batch_deployment(self, body: Any, endpoint: str, name: str) -> tuple[int, Any, dict[str, str]]:
        found = self.batch_deployments.get((endpoint, name))
        return (200, found, {}) if found else (404, _error("UserError", f"batch deployment {name} not found"), {})

    def _list_batch_deployments(self, body: Any, endpoint: str) -> tuple[int, Any, dict[str, str]]:
        return 200, {"value": [d for (e, _n), d in self.batch_deployments.items() if e == endpoint]}, {}

    def _invoke_batch(self, body: Any, endpoint: str) -> tuple[int, Any, dict[str, str]]:
        """A job on the endpoint's deployment (the ``azureml-model-deployment`` header, else its default): the
        data plane answers BatchJobResource, and the job shows in the jobs API as a pipeline job."""
        deployment = self.sent[-1].headers.get("azureml-model-deployment") or ""
        if endpoint not in self.batch_endpoints or (endpoint, deployment) not in self.batch_deployments:
            return 404, _error("UserError", f"no deployment {deployment!r} on batch endpoint {endpoint}"), {}
        job = copy.deepcopy(body["properties"])
        name = job.get("name") or f"batchjob-{len(self.jobs)}"
        if name in self.jobs:
            return 409, _error("UserError", f"a job named {name} exists"), {}
        job.update(name=name, status="NotStarted", provisioningState="Succeeded",
                   output={"datastoreId": f"{WS_PATH}/datastores/workspaceblobstore", "path": f"azureml/{name}/"})
        self.jobs[name] = self._arm("jobs", f"jobs/{name}", name, {
            "jobType": "Pipeline", "status": "NotStarted", "displayName": name, "experimentName": endpoint,
            "isArchived": False, "computeId": None, "tags": {}, "properties": {
                "azureml.batchrun": "true", "azureml.deploymentname": deployment, "azureml.endpointname": endpoint},
            "inputs": {key: {"jobInputType": "uri_file" if i["jobInputType"] == "UriFile" else "uri_folder",
                             "uri": i["uri"]} for key, i in job.get("inputData", {}).items()},
            "outputs": {key: {"jobOutputType": "uri_file", "uri": o.get("uri"), "mode": "ReadWriteMount"}
                        for key, o in job.get("outputData", {}).items()},
            "jobs": {}, "settings": {},
            "services": {"Studio": {"endpoint": f"https://ml.azure.com/runs/{name}"}}})
        self.batch_jobs.append(name)
        return 200, {"id": f"{WS_PATH}/batchEndpoints/{endpoint}/jobs/{name}", "name": name,
                     "type": "Microsoft.MachineLearningServices/workspaces/batchEndpoints/jobs", "properties": job,
                     "systemData": SYSTEM_DATA}, {}

    def _operation(self, body: Any, operation: str) -> tuple[int, Any, dict[str, str]]:
        return 200, {"status": "Succeeded"}, {}

    def _mlflow_run(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        run_id = parse_qs(self.sent[-1].query).get("run_id", [""])[0]
        if run_id not in self.logged:
            return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Run '{run_id}' not found"}, {}
        metrics = [{"key": key, "value": value, "timestamp": 1767225600000, "step": 0}
                   for key, value in self.logged[run_id].items()]
        return 200, {"run": {"info": {"run_id": run_id, "run_uuid": run_id, "status": "FINISHED",
                                      "lifecycle_stage": "active"},
                             "data": {"metrics": metrics, "params": [], "tags": []}}}, {}

    def _score(self, body: Any, endpoint: str) -> tuple[int, Any, dict[str, str]]:
        deployment = self.sent[-1].headers.get("azureml-model-deployment", "")
        if self.scorer is not None and (endpoint, deployment) in self.deployments:
            return 200, json.loads(self.scorer(self.deployments[(endpoint, deployment)], body)), {}
        graded = self._graded(endpoint, deployment, body)
        return self.scoring_status, json.loads(graded or self.scoring_answer), {}

    def _graded(self, endpoint: str, deployment: str, body: Any) -> str | None:
        """A deployed model answering held-out rows as well as its best trial logged (dry_run.graded_answer)."""
        found = self.deployments.get((endpoint, deployment))
        if found is None or self.store is None or not isinstance(body, dict):
            return None
        name, version = str(found["properties"]["model"]).rstrip("/").split("/")[-3::2]
        model = self.models.get((name, version))
        best = (model or {}).get("properties", {}).get("tags", {}).get("best_child_run_id", "")
        logged = {k: v for k, v in self.logged.get(best, {}).items() if k != "log_loss"}
        return graded_answer(body, max(logged.values()), self.store.blobs) if logged else None


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class RestTransport(HttpTransport):
    """Hands every request the SDK sends to ``RestWorkspace.answer`` instead of the network."""

    def __init__(self, workspace: RestWorkspace) -> None:
        self.workspace = workspace

    def __enter__(self) -> RestTransport:
        return self

    def __exit__(self, *args: Any) -> None:
        return None

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def send(self, request: Any, **kwargs: Any) -> Any:
        raw = request.data if request.data is not None else getattr(request, "content", None)
        if isinstance(raw, (bytes, bytearray)):
            raw = raw.decode()
        try:
            body = json.loads(raw) if isinstance(raw, str) and raw else raw
        except ValueError:
            body = raw
        status, answer, headers = self.workspace.answer(request.method, request.url, body,
                                                        {k.lower(): v for k, v in request.headers.items()})
        response = requests.Response()
        response.status_code = status
        response._content = b"" if answer is None else json.dumps(answer).encode()
        response.raw = io.BytesIO(response._content)
        response.headers.update({"content-type": "application/json", "x-ms-request-id": "contract-test",
                                 "date": datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT"), **headers})
        response.url = request.url
        response.request = requests.Request(request.method, request.url).prepare()
        if is_rest(request):  # the newer generated clients read answers through azure.core.rest
            rest = RestRequestsTransportResponse(request=request, internal_response=response)
            rest._content = response._content  # the whole body is here already: nothing to stream
            return rest
        return RequestsTransportResponse(request, response)


def ml_client(workspace: RestWorkspace) -> Any:
    """The real MLClient, talking to ``workspace`` through the transport."""
    from azure.ai.ml import MLClient

    return MLClient(FakeCredential(), SUBSCRIPTION, GROUP, WORKSPACE, transport=RestTransport(workspace),
                    enable_telemetry=False, show_progress=False)
