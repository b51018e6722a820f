"""Settings of the Azure backend, read from the Function App's settings (all set by ``infra/``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from shared.settings import env_choice, env_flag, env_float, env_int

AUTH_MODES = ("aad_token", "key")


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ValueError(f"setting {name} is required with PIPELINE_BACKEND=azure (infra/ sets it)")
    return value


@dataclass(frozen=True)
class AzureSettings:
    subscription_id: str
    """AZURE_SUBSCRIPTION_ID"""
    resource_group: str
    """AZURE_RESOURCE_GROUP"""
    workspace: str
    """AZUREML_WORKSPACE: the Azure ML workspace that trains, registers and serves."""
    compute: str
    """AZUREML_COMPUTE: the CPU cluster AutoML runs on (scales to zero)."""
    datastore: str
    """AZUREML_DATASTORE: the workspace datastore over the dataset-versions container."""
    versions_container: str
    """DATASET_VERSIONS_CONTAINER: where immutable copies of uploads are kept."""
    state_container: str
    """STATE_CONTAINER: upload records and the promotion ledger."""
    endpoint_suffix: str
    """ENDPOINT_SUFFIX: makes endpoint names unique in the region (infra sets a short hash)."""
    instance_type: str
    """ENDPOINT_INSTANCE_TYPE: VM size of the online deployments."""
    instance_count: int
    """ENDPOINT_INSTANCE_COUNT"""
    auth_mode: str
    """ENDPOINT_AUTH_MODE: ``aad_token`` (managed identity, the default) or ``key``."""
    pipeline_endpoint: str
    """PIPELINE_BATCH_ENDPOINT: when set, runs go to this batch endpoint's pipeline component deployment."""
    max_trials: int
    """AUTOML_MAX_TRIALS"""
    validation_size: float
    """AUTOML_VALIDATION_SIZE: share of rows AutoML holds out for validation."""
    onnx_compatible: bool
    """AUTOML_ONNX_COMPATIBLE: only search models that export to ONNX."""
    keep_rollback: bool
    """ENDPOINT_KEEP_ROLLBACK: keep the previous deployment at 0% for rollback (it costs an instance) or delete it."""
    endpoint_timeout_s: float
    """ENDPOINT_TIMEOUT_S: read timeout of one scoring call to the endpoint."""
    endpoint_retries: int
    """ENDPOINT_RETRIES: retries on 429/503 from the endpoint, with backoff."""
    deploy_poll_s: int = 20
    """DEPLOY_POLL_S: how long a deployment step still provisioning waits before it looks again."""
    deploy_timeout_s: int = 45 * 60
    """DEPLOY_TIMEOUT_S: a deployment step still provisioning after this long has failed."""
    endpoint_identity_id: str = ""
    """ENDPOINT_IDENTITY_ID: resource id of the user-assigned identity endpoints run as (empty: system-assigned)."""
    batch_input_datastore: str = "scoringinput"
    """BATCH_INPUT_DATASTORE: the workspace datastore over the scoring-input container (batch jobs read drops)."""
    batch_output_datastore: str = "scoringjobs"
    """BATCH_OUTPUT_DATASTORE: the workspace datastore over BATCH_OUTPUT_CONTAINER, where batch jobs write."""
    batch_output_container: str = "scoring-jobs"
    """BATCH_OUTPUT_CONTAINER: the app's container the batch jobs' outputs land in before the app copies them."""
    batch_instance_count: int = 1
    """BATCH_INSTANCE_COUNT: cluster nodes per batch job."""
    batch_poll_s: int = 30
    """BATCH_POLL_S: how long a batch step still in progress (provisioning, the job running) waits to look again."""
    batch_timeout_s: int = 6 * 3600
    """BATCH_TIMEOUT_S: a batch step still in progress after this long has failed; also the job's time per file."""

    @classmethod
    def from_env(cls) -> AzureSettings:
        return cls(
            subscription_id=_required("AZURE_SUBSCRIPTION_ID"),
            resource_group=_required("AZURE_RESOURCE_GROUP"),
            workspace=_required("AZUREML_WORKSPACE"),
            compute=os.environ.get("AZUREML_COMPUTE", "cpu-cluster"),
            datastore=os.environ.get("AZUREML_DATASTORE", "datasetversions"),
            versions_container=os.environ.get("DATASET_VERSIONS_CONTAINER", "dataset-versions"),
            state_container=os.environ.get("STATE_CONTAINER", "pipeline-state"),
            endpoint_suffix=os.environ.get("ENDPOINT_SUFFIX", "").strip().lower(),
            instance_type=os.environ.get("ENDPOINT_INSTANCE_TYPE", "Standard_DS3_v2"),
            instance_count=env_int("ENDPOINT_INSTANCE_COUNT", 1, 1, 20),
            auth_mode=env_choice("ENDPOINT_AUTH_MODE", "aad_token", AUTH_MODES),
            pipeline_endpoint=os.environ.get("PIPELINE_BATCH_ENDPOINT", "").strip(),
            max_trials=env_int("AUTOML_MAX_TRIALS", 20, 1, 1000),
            validation_size=env_float("AUTOML_VALIDATION_SIZE", 0.2, 0.05, 0.5),
            onnx_compatible=env_flag("AUTOML_ONNX_COMPATIBLE", True),
            keep_rollback=env_flag("ENDPOINT_KEEP_ROLLBACK", True),
            endpoint_timeout_s=env_float("ENDPOINT_TIMEOUT_S", 30, 0.1, 300),
            endpoint_retries=env_int("ENDPOINT_RETRIES", 3, 0, 10),
            deploy_poll_s=env_int("DEPLOY_POLL_S", 20, 1, 600),
            deploy_timeout_s=env_int("DEPLOY_TIMEOUT_S", 45 * 60, 60, 6 * 3600),
            endpoint_identity_id=os.environ.get("ENDPOINT_IDENTITY_ID", "").strip(),
            batch_input_datastore=os.environ.get("BATCH_INPUT_DATASTORE", "scoringinput"),
            batch_output_datastore=os.environ.get("BATCH_OUTPUT_DATASTORE", "scoringjobs"),
            batch_output_container=os.environ.get("BATCH_OUTPUT_CONTAINER", "scoring-jobs"),
            batch_instance_count=env_int("BATCH_INSTANCE_COUNT", 1, 1, 20),
            batch_poll_s=env_int("BATCH_POLL_S", 30, 1, 600),
            batch_timeout_s=env_int("BATCH_TIMEOUT_S", 6 * 3600, 300, 72 * 3600),
        )

    @classmethod
    def example(cls) -> AzureSettings:
        """Placeholder values for a dry run (``cli plan``) on a machine without Azure settings."""
        return cls("00000000-0000-0000-0000-000000000000", "rg-csv-to-endpoint", "mlw-csv-to-endpoint",
                   "cpu-cluster", "datasetversions", "dataset-versions", "pipeline-state", "abc123",
                   "Standard_DS3_v2", 1, "aad_token", "", 20, 0.2, True, True, 30.0, 3)
