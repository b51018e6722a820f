"""Blue/green deployment on a managed online endpoint, and the Azure side of the champion/challenger gate.

A new model goes to the idle colour at 0% traffic, answers a smoke test with
the dataset's example row, and only then takes all traffic. The previous
deployment stays at 0% for rollback until the next deployment replaces it.

A forecaster is deployed with its context: its dataset version's held-out rows
(each series' last ``horizon`` periods, with their actual values), shipped in
the deployment's code folder (``shared.azure.forecast_context``), so that it
forecasts from the end of the uploaded data, as a local model refitted on every
row does. Its smoke test asks for the first period after the uploaded data,
which only that context lets it reach. The gate compares two forecasters on the
challenger's held-out windows; asked for those periods, the scoring script
gives a model none of its context from them on, so both forecast them from
where their training ended, without their actual values (a champion of older
data gets its own context, all earlier than the windows: it forecasts them
from the end of the data it was deployed with). A champion without a forecast
for some of them (times beyond its horizon from where its data ends, or series
it never saw) is stale: its data ends too long before the newer data's, so the
challenger takes over, and the decision's reason says how many rows production
could not forecast.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from shared import drift, metrics
from shared.azure import entities, forecast_context, holdout
from shared.azure.blobstore import BlobStore
from shared.azure.config import AzureSettings
from shared.azure.datasets import held_out_rows
from shared.azure.endpoint_client import endpoint_outputs, predictions_in
from shared.errors import ArtifactUnusable, BadGateway, DeploymentFailed, ScoreMissing
from shared.model_contract import Outputs
from shared.ports import (
    Comparison,
    DatasetRegistry,
    DatasetVersion,
    Deployer,
    Evaluator,
    ModelRegistry,
    ModelVersion,
    RunInfo,
)
from shared.schema import DATETIME, Schema

log = logging.getLogger(__name__)
EXAMPLE_DATE = "2024-01-01T00:00:00"  # a date column's value in the smoke test's row
BUSY_STATUSES = (408, 429, 503, 504)  # answers that say "not now" rather than "this model cannot answer"
COMPARE_BATCH = 1000  # held-out rows per scoring call of the comparison


class SmokeTestFailed(ArtifactUnusable):
    """The new deployment did not answer the example row: it is refused; traffic stays where it was."""


def _provisioned(resource: Any, what: str) -> bool:
    """True once ``provisioning_state`` is Succeeded; DeploymentFailed when it ended Failed or Canceled."""
    raw = resource.provisioning_state
    # The SDK gives endpoints an enum (EndpointProvisioningState) and deployments a plain string.
    state = str(getattr(raw, "value", raw) or "").lower()
    if state in ("failed", "canceled"):
        raise DeploymentFailed(f"{what} ended {state}")
    return state == "succeeded"


def example_request(schema: Schema) -> dict[str, Any]:
    """One plausible row in the MLflow ``input_data`` form: the most frequent category, 0, or a date."""
    features = schema.features
    row = [c.categories[0] if c.categories else (0 if c.is_numeric else EXAMPLE_DATE if c.kind == DATETIME else "")
           for c in features]
    return {"input_data": {"columns": [c.name for c in features], "index": [0], "data": [row]}}


def prediction_reference_path(model: ModelVersion) -> str:
    return f"models/{model.name}/v{model.version}/prediction_reference.json"


def live_color(traffic: dict[str, int] | None) -> str | None:
    live = [(share, name) for name, share in (traffic or {}).items() if share > 0]
    return max(live)[1] if live else None


class AzureDeployer(Deployer):
    """Each step sends at most one request and never waits on a long-running operation: the deployment
    flow polls by re-enqueueing its message, so no call outlives a queue invocation."""

    def __init__(self, ml: Any, registry: ModelRegistry, datasets: DatasetRegistry, settings: AzureSettings,
                 store: BlobStore) -> None:
        self.ml = ml
        self.registry = registry
        self.datasets = datasets
        self.settings = settings
        self.store = store
        self.poll_interval_s = float(settings.deploy_poll_s)
        self.max_polls = max(1, settings.deploy_timeout_s // max(1, settings.deploy_poll_s))

    def ensure_endpoint(self, model: ModelVersion) -> bool:
        endpoint = self._endpoint(entities.endpoint_name(self.settings, model.name))
        if endpoint is None:
            self.ml.online_endpoints.begin_create_or_update(entities.online_endpoint(self.settings, model.name))
            return False
        return _provisioned(endpoint, f"endpoint {endpoint.name}")

    def begin(self, model: ModelVersion, slot: str | None) -> str:
        name = entities.endpoint_name(self.settings, model.name)
        endpoint = self._endpoint(name)
        if endpoint is None or not _provisioned(endpoint, f"endpoint {name}"):
            raise RuntimeError(f"endpoint {name} is gone or busy")  # transient: the queue retries
        # The idle colour holds the previous rollback target: replace it (the one before last goes now).
        color = slot or entities.other_color(live_color(endpoint.traffic))
        existing = self._deployment(name, color)
        if existing is None or entities.deployed_version(existing) != model.version:
            environment = model.tags.get("inference_environment") or entities.DEFAULT_ENVIRONMENT
            # A forecaster's folder carries its context (its version's held-out rows): the SDK uploads the folder
            # before this call returns, so the temporary copy may go afterwards.
            with forecast_context.code_folder(model, self.datasets, self.store) as code:
                self.ml.online_deployments.begin_create_or_update(entities.online_deployment(
                    self.settings, model.name, color, model.version, environment, code))
        return color

    def ready(self, model: ModelVersion, slot: str) -> bool:
        name = entities.endpoint_name(self.settings, model.name)
        deployment = self._deployment(name, slot)
        if deployment is None:
            raise RuntimeError(f"deployment {name}/{slot} is not there yet")  # transient: the queue retries
        return _provisioned(deployment, f"deployment {name}/{slot}")

    def smoke_test(self, model: ModelVersion, slot: str) -> None:
        dataset = self.datasets.get(model.dataset_name, model.dataset_version or None)
        if dataset is None:
            raise SmokeTestFailed(f"no dataset {model.dataset_name} v{model.dataset_version} for the example row")
        endpoint = entities.endpoint_name(self.settings, model.name)
        request = example_request(dataset.schema)
        forecaster = dataset.schema.time_series is not None
        # Read once: a forecaster asks for the period after them, a regression model keeps its answers on them.
        records = held_out_rows(self.store, dataset) if not dataset.schema.task.predicts_classes else []
        if forecaster:
            request, asked = self._first_period_after(model, dataset, records)
        try:
            answer = self._invoke(endpoint, slot, request)
        except HttpResponseError as error:
            if error.status_code in BUSY_STATUSES:
                raise  # throttled or still warming up: the queue tries again after its visibility timeout
            # The model answered its own example row with an error: it cannot serve, trying again will not help.
            raise SmokeTestFailed(f"deployment {slot} answered the example row with HTTP {error.status_code}: "
                                  f"{str(error.message or error)[:300]}") from None
        try:
            predictions = predictions_in(json.loads(answer))
        except (TypeError, ValueError):
            predictions = None
        if predictions is None or len(predictions) != 1:
            raise SmokeTestFailed(f"deployment {slot} answered the example row with {str(answer)[:200]!r}")
        if forecaster and not _finite_number(predictions[0]):
            raise SmokeTestFailed(f"deployment {slot} has no forecast for {asked}: it answered {str(answer)[:200]!r}")
        if not dataset.schema.task.predicts_classes:
            self._keep_prediction_reference(model, slot, dataset, records)

    def _first_period_after(self, model: ModelVersion, dataset: DatasetVersion,
                            records: list[dict[str, str | None]]) -> tuple[dict[str, Any], str]:
        """A forecaster's smoke-test request in the ``input_data`` form, and what it asks for in words: the period
        after the last one uploaded of the first held-out row's series (what a user asks for), its other cells as
        in that series' last row. It can only be answered from the deployment's context (the held-out rows): a
        forecast from where training ended does not reach it. When the series' frequency is not known, the first
        held-out row itself (a time just after training)."""
        windows = dataset.schema.time_series
        if not records or windows is None:
            raise SmokeTestFailed(f"dataset {dataset.name} v{dataset.version} holds no rows out of training: no "
                                  "time is known that the forecaster must answer")
        excluded = set(filter(None, model.tags.get("excluded_columns", "").split(",")))
        features = [c.name for c in dataset.schema.features if c.name not in excluded]
        first = records[0]
        series = [r for r in records if all(r.get(n) == first.get(n) for n in windows.series)]
        times = holdout.wall_clock(pd.Series([r.get(windows.time_column) for r in series], dtype="object"))
        latest = int(times.fillna(pd.Timestamp.min).to_numpy().argmax())
        following = holdout.periods_back(times.iloc[latest], windows, -1) if pd.notna(times.iloc[latest]) else None
        named = ", ".join(f"{n} {first.get(n)}" for n in windows.series)
        if following is None:
            row, asked = first, "the first period after its training history"
        else:
            text = str(series[latest].get(windows.time_column) or "")
            row = {**series[latest], windows.time_column: _time_text(following, text)}
            asked = (f"the first period after the uploaded data ({row[windows.time_column]}"
                     f"{f' of {named}' if named else ''})")
        return {"input_data": {"columns": features, "index": [0], "data": [[row.get(n) for n in features]]}}, asked

    def _keep_prediction_reference(self, model: ModelVersion, slot: str, dataset: DatasetVersion,
                                   records: list[dict[str, str | None]]) -> None:
        """A regression model's answers on its held-out rows, kept beside the model version: what its drift
        monitor holds the served predictions against (locally: its predictions on its training rows)."""
        answers = self.answers_on(model, slot, records, dataset) if records else None
        if answers is not None:
            self.store.replace(prediction_reference_path(model),
                               json.dumps(drift.prediction_reference(answers.outputs)).encode("utf-8"))

    def prediction_reference(self, model: ModelVersion) -> dict[str, Any] | None:
        """What ``_keep_prediction_reference`` kept; None for a classifier, or before its smoke test."""
        found = self.store.read(prediction_reference_path(model))
        return json.loads(found) if found else None

    def switch(self, model: ModelVersion, slot: str) -> tuple[bool, str | None]:
        name = entities.endpoint_name(self.settings, model.name)
        endpoint = self._endpoint(name)
        if endpoint is None:
            raise RuntimeError(f"endpoint {name} is gone")
        traffic = dict(endpoint.traffic or {})
        # The colour must still hold this version: another run may have redeployed it meanwhile, and traffic
        # must never move to (or be reported done on) a colour that serves some other model.
        self._holds(name, slot, model)
        if traffic.get(slot) == 100:  # the change was sent: done once the endpoint has applied it
            return _provisioned(endpoint, f"endpoint {name}"), None
        if not _provisioned(endpoint, f"endpoint {name}"):
            return False, None  # still applying an earlier change: an update now would be refused (409)
        live = live_color(traffic)
        keep = self.settings.keep_rollback and live is not None and live != slot
        # One update moves all traffic: there is never a moment with two live colours.
        self.ml.online_endpoints.begin_create_or_update(entities.online_endpoint(
            self.settings, model.name, {slot: 100, **({live: 0} if keep and live else {})}))
        log.info("Endpoint %s: %s (v%s) takes 100%% of traffic; previous: %s", name, slot, model.version,
                 live or "none")
        return False, live if live != slot else None

    def _holds(self, endpoint: str, slot: str, model: ModelVersion) -> None:
        deployment = self._deployment(endpoint, slot)
        held = entities.deployed_version(deployment) if deployment is not None else None
        if held != model.version:
            raise DeploymentFailed(f"deployment {endpoint}/{slot} holds "
                                   f"{'nothing' if held is None else f'version {held}'}, not version {model.version}")

    def compare(self, model: ModelVersion, slot: str, champion: ModelVersion) -> Comparison:
        """Both deployments score the challenger's held-out rows (``shared.azure.holdout``), and this app computes
        the metric of each from their answers, with the code that scores local models."""
        metric = metrics.resolve(model.metric)
        name = f"dataset {model.dataset_name} v{model.dataset_version}"
        found = self.held_out_rows(model)
        if found is None:
            return Comparison(metric.name, None, None, 0, f"on held-out rows: {name} keeps none")
        dataset, records = found
        target = dataset.schema.target
        basis = (f"on the same {len(records)} rows of {name} held out of training (holdout.csv; neither model "
                 "trained on them)")
        windows = dataset.schema.time_series
        if windows is not None:
            basis = (f"on the same {len(records)} rows of {name} held out of training (each series' last "
                     f"{windows.horizon} period(s); neither model trained on them)")
        challenger = self.answers_on(model, slot, records, dataset)
        mine = _metric_of(metric, challenger, records, target) if challenger else None
        if challenger is None or mine is None:
            return Comparison(metric.name, None, None, len(records), basis)
        endpoint = self._endpoint(entities.endpoint_name(self.settings, model.name))
        live = live_color(endpoint.traffic if endpoint is not None else None)
        served = self.answers_on(champion, live, records) if live else None
        unanswered = int((~np.isfinite(served.outputs)).any(axis=1).sum()) if served is not None else 0
        if windows is not None and unanswered:
            # Production's history ends before the challenger's windows: it is stale, not comparable (the reason
            # reads "production (vN) cannot score <basis>").
            basis = (f"the windows held out of {name} (each series' last {windows.horizon} period(s), "
                     f"{len(records)} rows; neither model trained on them): it has no forecast for "
                     f"{unanswered} of them, times beyond its horizon from where its history ends (or series it "
                     "never saw); a forecaster whose history ends before the newer data is stale, so the new model "
                     "takes over")
            return Comparison(metric.name, mine, None, len(records), basis)
        theirs = _metric_of(metric, served, records, target, challenger.classes) if served else None
        return Comparison(metric.name, mine, theirs, len(records), basis)

    def held_out_rows(self, model: ModelVersion) -> tuple[DatasetVersion, list[dict[str, str | None]]] | None:
        """The dataset version ``model`` was trained on and its held-out rows; None without them."""
        dataset = self.datasets.get(model.dataset_name, model.dataset_version or None)
        records = held_out_rows(self.store, dataset) if dataset is not None else []
        return (dataset, records) if dataset is not None and records else None

    def answers_on(self, model: ModelVersion, slot: str, records: list[dict[str, str | None]],
                   dataset: DatasetVersion | None = None) -> Answers | None:
        """What the deployment on ``slot`` answers for the rows, in the ``ServedModel`` outputs form; None when it
        cannot answer them (columns it was not trained on, an error, labels only for a classifier). ``dataset``:
        the version ``model`` was trained on, when the caller has it already (each lookup lists the versions)."""
        dataset = dataset or self.datasets.get(model.dataset_name, model.dataset_version or None)
        if dataset is None:
            return None
        excluded = set(filter(None, model.tags.get("excluded_columns", "").split(",")))
        features = [c.name for c in dataset.schema.features if c.name not in excluded]
        if any(name not in records[0] for name in features):
            return None  # trained on columns these rows do not have
        regression = not dataset.schema.task.predicts_classes
        parts: list[Outputs] = []
        answered: tuple[str, ...] = ()
        endpoint = entities.endpoint_name(self.settings, model.name)
        for start in range(0, len(records), COMPARE_BATCH):
            batch = records[start:start + COMPARE_BATCH]
            body = {"input_data": {"columns": features, "index": list(range(len(batch))),
                                   "data": [[row.get(n) for n in features] for row in batch]}}
            try:
                outputs, named, certain = endpoint_outputs(json.loads(self._invoke(endpoint, slot, body)),
                                                           len(batch), regression)
            except HttpResponseError as error:
                if error.status_code in BUSY_STATUSES:
                    raise  # the queue tries again later
                return None
            except (ValueError, BadGateway):
                return None
            if certain and not regression:
                return None  # labels only: no probabilities to judge or chart
            answered = answered or named
            if named != answered:
                return None
            parts.append(outputs)
        return Answers(np.vstack(parts), answered)

    def _invoke(self, endpoint: str, slot: str, body: dict[str, Any]) -> str:
        """One scoring call to the deployment on ``slot`` through the SDK (which fetches the credential)."""
        handle, path = tempfile.mkstemp(suffix=".json")
        try:
            with os.fdopen(handle, "w") as request_file:
                json.dump(body, request_file)
            return str(self.ml.online_endpoints.invoke(endpoint_name=endpoint, deployment_name=slot,
                                                       request_file=path))
        finally:
            os.unlink(path)

    def discard(self, model: ModelVersion, slot: str) -> None:
        name = entities.endpoint_name(self.settings, model.name)
        endpoint = self._endpoint(name)
        if endpoint is not None and (endpoint.traffic or {}).get(slot, 0) > 0:
            return  # never remove what serves (it cannot be this model's: it never took traffic)
        deployment = self._deployment(name, slot)
        if deployment is not None and entities.deployed_version(deployment) == model.version:
            self.ml.online_deployments.begin_delete(name=slot, endpoint_name=name)

    def cleanup(self, model: ModelVersion, slot: str, previous: str | None) -> None:
        if not previous or previous == slot or self.settings.keep_rollback:
            return  # kept at 0% for rollback until the next deployment replaces it
        name = entities.endpoint_name(self.settings, model.name)
        if self._deployment(name, previous) is not None:
            self.ml.online_deployments.begin_delete(name=previous, endpoint_name=name)

    def _endpoint(self, name: str) -> Any | None:
        try:
            return self.ml.online_endpoints.get(name)
        except ResourceNotFoundError:
            return None

    def _deployment(self, endpoint: str, name: str) -> Any | None:
        try:
            return self.ml.online_deployments.get(name=name, endpoint_name=endpoint)
        except ResourceNotFoundError:
            return None

    def production(self, model_name: str) -> ModelVersion | None:
        endpoint = self._endpoint(entities.endpoint_name(self.settings, model_name))
        if endpoint is None:
            return None
        color = live_color(endpoint.traffic)
        if color is None:
            return None
        deployment = self.ml.online_deployments.get(name=color, endpoint_name=endpoint.name)
        return self.registry.get(model_name, entities.deployed_version(deployment))


@dataclass(frozen=True)
class Answers:
    outputs: Outputs  # class probabilities in ``classes`` order, or for regression the predictions (rows x 1)
    classes: tuple[str, ...]  # empty for regression


def _time_text(time: pd.Timestamp, like: str) -> str:
    """``time`` written as ``like`` writes its times: a date alone, or a date and time of day."""
    timed = len(like.strip()) > 10
    return str(time.isoformat(sep="T" if "T" in like else " ") if timed else time.strftime("%Y-%m-%d"))


def _finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


def _metric_of(metric: metrics.Metric, answers: Answers, records: list[dict[str, str | None]], target: str,
               classes: tuple[str, ...] = ()) -> float | None:
    """The metric of the answers against the rows' targets (a champion's probabilities read in the challenger's
    classes); None when it cannot be computed (a label in the rows the model never saw, a row without an answer)."""
    truth = [row.get(target) for row in records]
    if not np.isfinite(answers.outputs).all():
        return None  # a row the model has no number for (a forecast beyond its horizon): not comparable
    try:
        if not answers.classes:
            y = np.asarray([float(v) if v is not None else np.nan for v in truth], dtype=np.float64)
            return metric.compute(y, answers.outputs, [], 0.5)
        wanted = list(classes or answers.classes)
        aligned = np.zeros((len(records), len(wanted)), dtype=np.float64)
        for column, label in enumerate(answers.classes):
            if label in wanted:
                aligned[:, wanted.index(label)] = answers.outputs[:, column]
        return metric.compute(np.asarray([str(v) for v in truth], dtype=object), aligned, wanted, 0.5)
    except (ValueError, TypeError, ZeroDivisionError):
        return None


class AzureEvaluator(Evaluator):
    """The validation score AutoML logged for the challenger, kept with the decision. The decision itself waits
    for both models to be deployed and is made on the same held-out rows (``AzureDeployer.compare``)."""

    basis = "as AutoML's validation logged it"
    compares_when_deployed = True

    def score(self, model: ModelVersion, run: RunInfo) -> float | None:
        metric = metrics.resolve(run.metric).name
        if model.run_id != run.run_id:
            raise ScoreMissing(f"v{model.version} is scored on held-out rows once deployed, not from logs")
        value = run.result.get("primary_metric", {}).get("value")
        if value is None:
            raise ScoreMissing(str(run.result.get("score_missing") or f"run {run.run_id} has no {metric}"))
        return float(value)
