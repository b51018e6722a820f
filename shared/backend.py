"""The composition root: pick the implementations of the ports once, from settings (nothing imports this but the
function blueprints and the tools that start them)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from shared.blob_records import JsonBlobs
from shared.deployment_flow import DEPLOYMENTS_QUEUE
from shared.ports import Backend
from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    from shared.azure.plan import Plan



def build_backend(settings: Settings) -> Backend:
    if settings.backend == "azure":
        from shared.azure.wiring import build_azure_backend

        return build_azure_backend(settings)
    from shared.local.datasets import LocalDatasetRegistry
    from shared.local.deployment import LocalDeployer, LocalEvaluator
    from shared.local.pipeline import LocalTrainingPipeline
    from shared.local.promotions import LocalPromotionLedger
    from shared.local.registry import MlflowModelRegistry
    from shared.local.report import LocalRunReports
    from shared.local.serving import LocalModelServer, ModelCache
    from shared.local.uploads import LocalUploadLog
    from shared.storage import StorageDeploymentQueue, blob_service

    state = settings.state_dir
    registry = MlflowModelRegistry(state)
    datasets = LocalDatasetRegistry(state)
    cache = ModelCache(state, settings.drift_window_s, settings.drift_threshold, settings.drift_min_rows)
    records = JsonBlobs(None, lambda: blob_service().get_container_client(settings.state_container))
    return Backend(datasets, LocalUploadLog(state), LocalTrainingPipeline(state), registry,
                   LocalEvaluator(), LocalDeployer(state, registry), LocalPromotionLedger(state),
                   LocalModelServer(cache, settings.default_model), records,
                   StorageDeploymentQueue(DEPLOYMENTS_QUEUE), LocalRunReports(state, datasets, registry))


def stop_background_work(settings: Settings) -> int | None:
    """Stop the local training worker (its runs resume at the next start); returns its pid. Azure: nothing."""
    if settings.backend != "local":
        return None
    from shared.local.pipeline import stop_worker

    return stop_worker(settings.state_dir)


def plan_azure_upload(content: bytes, blob_path: str, metadata: dict[str, str], settings: Settings
                      ) -> Plan:
    """What the Azure backend would do for an upload, against an in-memory workspace (``cli plan``)."""
    from shared.azure.config import AzureSettings
    from shared.azure.plan import plan_upload

    try:
        azure = AzureSettings.from_env()
    except ValueError:
        azure = AzureSettings.example()  # placeholders: the plan's shape does not depend on them
    return plan_upload(content, blob_path, metadata, settings, azure)


@lru_cache(maxsize=1)
def get_backend() -> Backend:
    return build_backend(get_settings())
