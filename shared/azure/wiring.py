"""The Azure backend assembled from one MLClient and the app's storage account, both on managed identity."""

from __future__ import annotations

from typing import Any

from shared.azure.batch_scoring import AzureBatchScorer, ContainerJobOutputs, InMemoryJobOutputs, JobOutputs
from shared.azure.blobstore import BlobStore, ContainerStore
from shared.azure.config import AzureSettings
from shared.azure.datasets import AzureDatasetRegistry
from shared.azure.deployment import AzureDeployer, AzureEvaluator
from shared.azure.endpoint_client import EndpointClient, pooled_session
from shared.azure.pipeline import AzureTrainingPipeline
from shared.azure.registry import AzureModelRegistry
from shared.azure.reports import AzureRunReports
from shared.azure.run_metrics import MlflowRunMetrics, RunMetrics
from shared.azure.serving import EndpointModelServer
from shared.azure.state import BlobPromotionLedger, BlobUploadLog, JsonBlobs
from shared.batch_flow import BATCH_QUEUE
from shared.deployment_flow import DEPLOYMENTS_QUEUE
from shared.drift_windows import SharedDriftWindows
from shared.ports import Backend, DeploymentQueue
from shared.settings import Settings
from shared.storage import StorageDeploymentQueue


def ml_client(azure: AzureSettings, credential: Any) -> Any:
    from azure.ai.ml import MLClient

    return MLClient(credential, azure.subscription_id, azure.resource_group, azure.workspace)


def assemble(settings: Settings, azure: AzureSettings, ml: Any, store: BlobStore, state: JsonBlobs, credential: Any,
             client: EndpointClient | None = None, queue: DeploymentQueue | None = None,
             run_metrics: RunMetrics | None = None, batch_outputs: JobOutputs | None = None,
             batch_queue: DeploymentQueue | None = None) -> Backend:
    """Every Azure port over the given clients; tests and ``cli plan`` pass an in-memory ``ml`` (and its
    ``run_metrics``, and where batch jobs write)."""
    datasets = AzureDatasetRegistry(ml, store, azure)
    registry = AzureModelRegistry(ml)
    deployer = AzureDeployer(ml, registry, datasets, azure, store)
    client = client or EndpointClient(pooled_session(), timeout_s=azure.endpoint_timeout_s,
                                      retries=azure.endpoint_retries)
    windows = SharedDriftWindows(state, settings.drift_window_s)
    server = EndpointModelServer(ml, deployer, datasets, client, azure, settings.default_model, credential,
                                 windows=windows, drift_threshold=settings.drift_threshold,
                                 drift_min_rows=settings.drift_min_rows)
    run_metrics = run_metrics or MlflowRunMetrics(ml, credential)
    pipeline = AzureTrainingPipeline(ml, store, state, azure, run_metrics)
    return Backend(datasets, BlobUploadLog(state), pipeline, registry, AzureEvaluator(), deployer,
                   BlobPromotionLedger(state), server, state, queue or StorageDeploymentQueue(DEPLOYMENTS_QUEUE),
                   AzureRunReports(ml, store, datasets, registry, deployer, run_metrics, azure),
                   AzureBatchScorer(ml, azure, batch_outputs or InMemoryJobOutputs(), settings.batch_chunk_rows,
                                    datasets, store),
                   batch_queue or StorageDeploymentQueue(BATCH_QUEUE))


def build_azure_backend(settings: Settings) -> Backend:
    from azure.identity import DefaultAzureCredential

    from shared.storage import blob_service

    azure = AzureSettings.from_env()
    credential = DefaultAzureCredential()  # the Function App's user-assigned identity (AZURE_CLIENT_ID)
    blobs = blob_service()
    store = ContainerStore(blobs.get_container_client(azure.versions_container))
    state = JsonBlobs(blobs.get_container_client(azure.state_container))
    outputs = ContainerJobOutputs(blobs.get_container_client(azure.batch_output_container))
    return assemble(settings, azure, ml_client(azure, credential), store, state, credential, batch_outputs=outputs)
