"""The azure-ai-ml entities the Azure backend creates, built by pure functions.

Keeping construction apart from the calls lets ``cli plan`` print exactly what
would be created, and lets the contract tests check each entity's REST form.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from azure.ai.ml import Input, Output, automl, dsl
from azure.ai.ml.automl import (
    ClassificationPrimaryMetrics,
    ForecastingJob,
    ForecastingPrimaryMetrics,
    RegressionPrimaryMetrics,
)
from azure.ai.ml.constants import AssetTypes, BatchDeploymentOutputAction
from azure.ai.ml.entities import (
    BatchEndpoint,
    BatchRetrySettings,
    CodeConfiguration,
    Data,
    IdentityConfiguration,
    ManagedIdentityConfiguration,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    Model,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
    PipelineJob,
)

from shared import metrics
from shared.azure.config import AzureSettings
from shared.errors import BadRequest
from shared.ports import TrainingRequest
from shared.run_events import APP_TAG as APP_TAG  # re-exported: the jobs and endpoints carry it
from shared.schema import TimeSeries
from shared.tasks import CLASSIFICATION, FORECASTING, REGRESSION, TaskKind, kind_of

AUTOML_NODE = "automl"  # the AutoML node's name in the pipeline: its run's display name
MLFLOW_MODEL_OUTPUT = "outputs/mlflow-model"
DEPLOYMENT_COLORS = ("blue", "green")
TABLE_FILE = "MLTable"
DATA_FILE = "data.csv"
# The app's own scoring script (labels and class probabilities), deployed beside each model; the SDK uploads the
# folder once and finds it again by its content hash.
SCORING_CODE = Path(__file__).parent / "endpoint_code"
SCORING_SCRIPT = "score.py"
BATCH_SCORING_SCRIPT = "batch_score.py"  # the batch deployments' script, in the same folder (it imports score.py)
BATCH_INPUT = "input"  # the batch job's input: the dropped file
BATCH_OUTPUT = "score"  # its output, as Azure ML names a model deployment's output
# The curated environment AutoML trains tabular models in (Azure/azureml-assets,
# assets/training/automl/environments/ai-ml-automl: it carries azureml-defaults' inference server and MLflow), as
# the Azure ML registry publishes it. Used when the AutoML run does not name its own.
DEFAULT_ENVIRONMENT = "azureml://registries/azureml/environments/ai-ml-automl/labels/latest"


def asset_name(model_name: str) -> str:
    """Azure ML asset names allow letters, digits, '-' and '_'."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", model_name)[:255]


def dataset_folder(model_name: str, content_hash: str) -> str:
    """The immutable folder of one dataset version inside the versions container."""
    return f"{asset_name(model_name)}/{content_hash[:16]}"


def datastore_uri(settings: AzureSettings, path: str) -> str:
    return f"azureml://datastores/{settings.datastore}/paths/{path}"


def mltable_text(data_uri: str, drop_columns: tuple[str, ...] = ()) -> str:
    """The MLTable descriptor of one run's training table (AutoML v2 reads tables, not bare files).

    Columns excluded from training are dropped here, so AutoML never sees them.
    """
    text = (f"paths:\n  - file: {data_uri}\n"
            "transformations:\n  - read_delimited:\n      delimiter: ','\n      encoding: utf8\n"
            "      header: all_files_same_headers\n      empty_as_string: false\n")
    if drop_columns:
        quoted = ", ".join('"' + c.replace('"', '\\"') + '"' for c in drop_columns)
        text += f"  - drop_columns: [{quoted}]\n"
    return text


def run_table_folder(job: str) -> str:
    """Where a run's MLTable lives in the versions container."""
    return f"runs/{job}"


def _accepted(service_names: list[str], task: TaskKind) -> tuple[str, ...]:
    """Our names (``AUC_weighted``) of the metrics the SDK's enum spells as the service does (``AUCWeighted``), among
    those that judge ``task``'s models (a forecast is judged by the regression metrics)."""
    spelled = {name.replace("_", "").lower() for name in service_names}
    return tuple(m.name for m in metrics.METRICS.values()
                 if m.task == task.metric_family and m.name.replace("_", "").lower() in spelled)


# The primary metrics Azure AutoML accepts per task, as the installed SDK lists them; the others (f1, log_loss)
# are computed but cannot drive the search.
AUTOML_PRIMARY_METRICS = {
    kind.name: _accepted([m.value for m in enum], kind) for kind, enum in (
        (CLASSIFICATION, ClassificationPrimaryMetrics), (REGRESSION, RegressionPrimaryMetrics),
        (FORECASTING, ForecastingPrimaryMetrics))
}


def metric_refused(metric_name: str, task: TaskKind | str) -> str | None:
    """Why Azure AutoML cannot optimise ``metric_name`` for ``task``, with the choices; None when it can."""
    metric = metrics.resolve(metric_name)
    accepted = AUTOML_PRIMARY_METRICS[kind_of(task).name]
    if metric.name in accepted:
        return None
    return f"Azure AutoML {task} cannot optimise {metric.name}: choose one of {', '.join(accepted)}"


# The pandas offset alias of each frequency AutoML is told, where the schema's frequency and anchor fix the grid
# alone. Spelled as pandas 1.5 reads them (AutoML's curated environments carry it; later pandas still reads these,
# "ME"/"h" are unknown to it). Months, quarters and years step from each series' own first time: "3MS" is every
# third month start whichever months those are, where "QS" would be quarters from January only. A week's weekday,
# and a month's day other than the first or the last, are not kept: for those AutoML infers the frequency from the
# timestamps themselves (ingest found them on a regular grid).
FREQUENCY_ALIASES = {
    ("hourly", ""): "H", ("daily", ""): "D",
    ("monthly", "1"): "MS", ("monthly", "end"): "M",
    ("quarterly", "1"): "3MS", ("quarterly", "end"): "3M",
    ("yearly", "1"): "12MS", ("yearly", "end"): "12M",
}


def frequency_alias(time_series: TimeSeries) -> str | None:
    """The frequency as the pandas offset alias AutoML takes, or None to let AutoML infer it."""
    return FREQUENCY_ALIASES.get((time_series.frequency, time_series.anchor))


def forecast_settings(time_series: TimeSeries) -> dict[str, Any]:
    """``set_forecast_settings`` of a forecasting node: the time column, the horizon in periods, the columns naming
    each series (none: one series) and the frequency when it is known for certain."""
    settings: dict[str, Any] = {"time_column_name": time_series.time_column,
                                "forecast_horizon": time_series.horizon}
    if time_series.series:
        settings["time_series_id_column_names"] = list(time_series.series)
    frequency = frequency_alias(time_series)
    if frequency:
        settings["frequency"] = frequency
    return settings


class _ForecastingNode(ForecastingJob):
    """A forecasting node whose series id columns reach the pipeline's body as a list.

    Inside a pipeline the SDK writes a node through its YAML schema, whose ``time_series_id_column_names`` tries a
    string before a list: ``["store", "item"]`` would go out as the one name ``"['store', 'item']"``. The service
    reads the list that an AutoML job's YAML gives (azureml-examples,
    ``cli/jobs/automl-standalone-jobs/cli-automl-forecasting-orange-juice-sales``)."""

    def _to_dict(self, inside_pipeline: bool = False) -> dict[str, Any]:
        written: dict[str, Any] = super()._to_dict(inside_pipeline=inside_pipeline)
        ids = self.forecasting_settings.time_series_id_column_names if self.forecasting_settings else None
        if ids:
            written.setdefault("forecasting", {})["time_series_id_column_names"] = \
                [ids] if isinstance(ids, str) else list(ids)
        return written


def validation(task: TaskKind, settings: AzureSettings) -> dict[str, Any]:
    """How AutoML judges its trials without validation data: a share of the rows at random for rows without an
    order; for series, rolling-origin cross-validation (each fold forecasts the periods after its origin), with as
    many folds as AutoML decides: AutoML takes no random validation share for forecasting."""
    if task.tabular:
        return {"validation_data_size": settings.validation_size}
    return {"n_cross_validations": "auto"}


def data_asset(settings: AzureSettings, name: str, sequence: int, content_hash: str, rows: int, columns: int,
               source_uri: str, schema_json: str) -> Data:
    """A uri_file Data asset over the immutable copy; its version is the content hash, so a re-upload is a no-op."""
    folder = dataset_folder(name, content_hash)
    return Data(
        name=asset_name(name), version=content_hash[:16], type=AssetTypes.URI_FILE,
        path=datastore_uri(settings, f"{folder}/{DATA_FILE}"),
        description=f"Upload to datasets/{name}/, version {sequence}",
        tags={"app": APP_TAG, "model": name, "sequence": str(sequence), "content_hash": content_hash, "rows": str(rows),
              "columns": str(columns), "source_uri": source_uri},
        properties={"schema": schema_json},
    )


def job_name(idempotency_key: str | None, fallback: str) -> str:
    """Job names are unique in a workspace: the same key always gives the same name, so a re-post is one run."""
    if not idempotency_key:
        return fallback
    return "train-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]


def run_tags(request: TrainingRequest, name: str) -> dict[str, str]:
    return {"app": APP_TAG, "pipeline_job": name, "model": request.model_name,
            "dataset": request.dataset.name, "dataset_version": str(request.dataset.version),
            "metric": metrics.resolve(request.metric).name, "pipeline": request.pipeline,
            "upload_id": request.upload_id or "", "traceparent": request.trace_parent,
            "excluded_columns": ",".join(request.excluded_columns), "time_budget_s": str(request.time_budget_s)}


def training_job(settings: AzureSettings, request: TrainingRequest, name: str, table_uri: str) -> PipelineJob:
    """The published pipeline as an Azure ML pipeline job whose one node is an AutoML classification, regression
    or forecasting, as the dataset version was read."""
    metric = metrics.resolve(request.metric)
    schema = request.dataset.schema
    task = schema.task
    refused = metric_refused(metric.name, task)
    if refused:
        raise BadRequest(refused, [{"field": "metric", "error": refused}])
    if not task.tabular and schema.time_series is None:  # a series is read by its time column and horizon
        raise ValueError(f"dataset {request.dataset.name} v{request.dataset.version} is a {task} without its "
                         "time column and horizon")
    node_kind = getattr(automl, task.azure_node)  # automl.classification, automl.regression, automl.forecasting
    tags = run_tags(request, name)
    budget_minutes = max(15, -(-request.time_budget_s // 60))  # AutoML's minimum experiment timeout is 15 minutes

    @dsl.pipeline(None, name=f"automl_{task}", default_compute=settings.compute,
                  description=f"{request.pipeline}: AutoML {task} for {request.model_name}")
    def automl_pipeline(training_data):  # type: ignore[no-untyped-def]  # dsl reads real annotations only
        search = node_kind(
            training_data=training_data, target_column_name=request.target, primary_metric=metric.name,
            enable_model_explainability=False, outputs={"best_model": Output(type=AssetTypes.MLFLOW_MODEL)},
            **validation(task, settings))
        if schema.time_series is not None:
            search.__class__ = _ForecastingNode  # the same node, written with its series ids as a list
            search.set_forecast_settings(**forecast_settings(schema.time_series))
        search.set_limits(timeout_minutes=budget_minutes, max_trials=settings.max_trials,
                          enable_early_termination=True)
        # Only models with an ONNX graph are served from one (no forecaster converts: they read the series' own
        # history, which no graph holds); asking for them would leave AutoML no forecaster to try.
        search.set_training(enable_onnx_compatible_models=settings.onnx_compatible and bool(task.onnx_output))
        search.name = AUTOML_NODE
        # Our own marks on the node, so its run is found among the pipeline's children by what we set.
        search.tags = {**tags, "node": AUTOML_NODE}
        return {"best_model": search.outputs.best_model}

    job: PipelineJob = automl_pipeline(training_data=Input(type=AssetTypes.MLTABLE, path=table_uri))
    job.name = name
    job.experiment_name = asset_name(request.model_name)
    job.display_name = f"{request.model_name} v{request.dataset.version} ({metric.name})"
    job.tags = tags
    return job


def model_asset(model_name: str, best_child_run_id: str, tags: dict[str, str]) -> Model:
    """The best child's MLflow model, registered by reference to the job output (no copy)."""
    return Model(
        name=asset_name(model_name), type=AssetTypes.MLFLOW_MODEL,
        path=f"azureml://jobs/{best_child_run_id}/outputs/artifacts/{MLFLOW_MODEL_OUTPUT}/",
        description=f"Best AutoML model for datasets/{model_name}/", tags={"app": APP_TAG, **tags})


def inference_environment(properties: dict[str, Any] | None) -> str:
    """The environment to serve a model in: the curated one its AutoML run trained in, so that the pickled
    pipeline meets the very library versions that wrote it.

    AutoML records it on its parent run (``environment_cpu_name`` with ``environment_cpu_label``, a version
    number or a label such as ``prod``); azureml-examples' automl-classification-task-bankmarketing notebook
    references it as ``AzureML-ai-ml-automl:<version>``.
    """
    name = str((properties or {}).get("environment_cpu_name") or "")
    label = str((properties or {}).get("environment_cpu_label") or (properties or {}).get("environment_cpu_version")
                or "")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}", name):
        return DEFAULT_ENVIRONMENT
    return f"azureml:{name}:{label}" if label.isdigit() else f"azureml:{name}@latest"


def endpoint_name(settings: AzureSettings, model_name: str) -> str:
    """Endpoint names are unique per region: 3-32 characters, a letter first, letters, digits and '-'."""
    base = re.sub(r"[^a-z0-9-]", "-", model_name.lower()).strip("-") or "model"
    if not base[0].isalpha():
        base = "m-" + base
    suffix = f"-{settings.endpoint_suffix}" if settings.endpoint_suffix else ""
    return (base[: 32 - len(suffix)].rstrip("-") + suffix)[:32]


def online_endpoint(settings: AzureSettings, model_name: str, traffic: dict[str, int] | None = None
                    ) -> ManagedOnlineEndpoint:
    identity = None
    if settings.endpoint_identity_id:  # pulls the image and the model with roles infra/ granted, not by assignment
        identity = IdentityConfiguration(type="user_assigned", user_assigned_identities=[
            ManagedIdentityConfiguration(resource_id=settings.endpoint_identity_id)])
    return ManagedOnlineEndpoint(
        name=endpoint_name(settings, model_name), auth_mode=settings.auth_mode,
        description=f"Serves the production model for datasets/{model_name}/",
        tags={"app": APP_TAG, "model": model_name}, traffic=traffic or {}, identity=identity)


def online_deployment(settings: AzureSettings, model_name: str, color: str, model_version: str,
                      environment: str = DEFAULT_ENVIRONMENT, code: Path = SCORING_CODE) -> ManagedOnlineDeployment:
    """The MLflow model with the app's scoring script, in the environment it was trained in: without a script,
    Azure ML's MLflow server answers labels only. ``code``: the folder uploaded with it (a forecaster's holds its
    context too, ``shared.azure.forecast_context``)."""
    return ManagedOnlineDeployment(
        name=color, endpoint_name=endpoint_name(settings, model_name),
        model=f"azureml:{asset_name(model_name)}:{model_version}", instance_type=settings.instance_type,
        environment=environment,
        code_configuration=CodeConfiguration(code=str(code), scoring_script=SCORING_SCRIPT),
        # Off: the deployment's own Application Insights logging authenticates with an instrumentation key,
        # and the app's Application Insights accepts Entra ID only. The app records every scoring call itself.
        instance_count=settings.instance_count, app_insights_enabled=False,
        tags={"app": APP_TAG, "model_version": model_version})


def find_automl_node(children: list[Any]) -> Any | None:
    """The AutoML run among a pipeline job's children, by what is certain.

    Run history gives every child the generic type ``base``, so the type says
    nothing. In order: our ``node`` tag, the node's name (the child run's display
    name), AutoML's own marks on its parent run (the best-child tag, the
    ``AutoML`` run template), and finally the pipeline's only child.
    """
    checks: tuple[Callable[[Any], bool], ...] = (
        lambda c: (c.tags or {}).get("node") == AUTOML_NODE,
        lambda c: c.display_name == AUTOML_NODE,
        lambda c: "automl_best_child_run_id" in (c.tags or {})
        or str((c.properties or {}).get("runTemplate", "")).lower() == "automl",
    )
    for check in checks:
        found = [c for c in children if check(c)]
        if len(found) == 1:
            return found[0]
    return children[0] if len(children) == 1 else None


def other_color(color: str | None) -> str:
    return DEPLOYMENT_COLORS[1] if color == DEPLOYMENT_COLORS[0] else DEPLOYMENT_COLORS[0]


def app_assets(operations: Any, name: str | None) -> list[Any]:
    """Every version this app registered of asset ``name`` (of all assets when None), from ``ml.data`` or
    ``ml.models``: listing by name gives the versions, and the ``app`` tag tells ours from the rest."""
    from azure.core.exceptions import ResourceNotFoundError

    names = [asset_name(name)] if name else [asset.name for asset in operations.list()]
    found: list[Any] = []
    for each in names:
        try:
            found += [a for a in operations.list(name=each) if (a.tags or {}).get("app") == APP_TAG]
        except ResourceNotFoundError:
            continue
    return found


def deployed_version(deployment: Any) -> str:
    """The model version of an online deployment, whether it names ``azureml:name:3`` or an ARM id."""
    return str(deployment.model).rstrip("/").split("/")[-1].split(":")[-1]


def batch_endpoint_name(settings: AzureSettings, model_name: str) -> str:
    """The model's batch endpoint: named as its online endpoint with ``-batch`` before the suffix (endpoint names
    are unique per region, whatever their kind)."""
    base = endpoint_name(replace(settings, endpoint_suffix=""), model_name)
    suffix = f"-{settings.endpoint_suffix}" if settings.endpoint_suffix else ""
    return (base[: 32 - len(suffix) - len("-batch")].rstrip("-") + "-batch" + suffix)[:32]


def batch_deployment_name(model_version: str) -> str:
    """One batch deployment per model version: a drop's job scores with the version it was checked against."""
    return f"version-{re.sub(r'[^A-Za-z0-9-]', '-', model_version)}"[:32]


def batch_endpoint(settings: AzureSettings, model_name: str) -> BatchEndpoint:
    # Spelled as the service's enum: the SDK camel-cases a batch endpoint's auth mode as given ("aad_token" would
    # go out as "aadToken"), unlike an online endpoint's.
    return BatchEndpoint(name=batch_endpoint_name(settings, model_name), auth_mode="AADToken",
                         description=f"Scores CSVs dropped into scoring-input/{model_name}/",
                         tags={"app": APP_TAG, "model": model_name})


def batch_deployment(settings: AzureSettings, model_name: str, model_version: str, chunk_rows: int,
                     environment: str = DEFAULT_ENVIRONMENT, code: Path = SCORING_CODE) -> ModelBatchDeployment:
    """The registered MLflow model with the app's batch script, which writes the scored CSV and its summary in
    the local backend's form (so the deployment's own output is the summary only), one file per mini-batch."""
    return ModelBatchDeployment(
        name=batch_deployment_name(model_version), endpoint_name=batch_endpoint_name(settings, model_name),
        model=f"azureml:{asset_name(model_name)}:{model_version}", environment=environment,
        code_configuration=CodeConfiguration(code=str(code), scoring_script=BATCH_SCORING_SCRIPT),
        compute=settings.compute,
        settings=ModelBatchDeploymentSettings(
            mini_batch_size=1, instance_count=settings.batch_instance_count, max_concurrency_per_instance=1,
            output_action=BatchDeploymentOutputAction.SUMMARY_ONLY, error_threshold=0,
            retry_settings=BatchRetrySettings(max_retries=1, timeout=settings.batch_timeout_s),
            environment_variables={"BATCH_CHUNK_ROWS": str(chunk_rows)}, logging_level="Info"),
        tags={"app": APP_TAG, "model_version": model_version})


def batch_job_output(settings: AzureSettings, job: str) -> str:
    """Where a batch job writes (a folder of BATCH_OUTPUT_CONTAINER), relative to the container."""
    return f"jobs/{job}"


def batch_job_io(settings: AzureSettings, job: str, blob_path: str) -> tuple[dict[str, Input], dict[str, Output]]:
    """The job's input (the drop, through the datastore over scoring-input) and output: a file in the job's own
    folder of the output datastore (the data-plane API takes file outputs); the script writes beside it."""
    source = datastore_uri(replace(settings, datastore=settings.batch_input_datastore), blob_path)
    folder = batch_job_output(settings, job)
    target = datastore_uri(replace(settings, datastore=settings.batch_output_datastore), f"{folder}/predictions.csv")
    return ({BATCH_INPUT: Input(type=AssetTypes.URI_FILE, path=source)},
            {BATCH_OUTPUT: Output(type=AssetTypes.URI_FILE, path=target)})
