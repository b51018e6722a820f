"""Pick the implementations of the ports once, from settings."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from shared.local.serving import ModelCache
from shared.ports import (
    DatasetRegistry,
    Deployer,
    Evaluator,
    ModelRegistry,
    PromotionLedger,
    TrainingPipeline,
    UploadLog,
)
from shared.settings import Settings, get_settings


@dataclass(frozen=True)
class Backend:
    datasets: DatasetRegistry
    uploads: UploadLog
    pipeline: TrainingPipeline
    registry: ModelRegistry
    evaluator: Evaluator
    deployer: Deployer
    promotions: PromotionLedger
    serving: ModelCache


def build_backend(settings: Settings) -> Backend:
    if settings.backend == "local":
        from shared.local.datasets import LocalDatasetRegistry
        from shared.local.deployment import LocalDeployer, LocalEvaluator
        from shared.local.pipeline import LocalTrainingPipeline
        from shared.local.promotions import LocalPromotionLedger
        from shared.local.registry import MlflowModelRegistry
        from shared.local.uploads import LocalUploadLog

        state = settings.state_dir
        registry = MlflowModelRegistry(state)
        return Backend(LocalDatasetRegistry(state), LocalUploadLog(state), LocalTrainingPipeline(state), registry,
                       LocalEvaluator(), LocalDeployer(state, registry), LocalPromotionLedger(state),
                       ModelCache(state))
    raise NotImplementedError("PIPELINE_BACKEND=azure is not available yet; use PIPELINE_BACKEND=local")


@lru_cache(maxsize=1)
def get_backend() -> Backend:
    return build_backend(get_settings())
