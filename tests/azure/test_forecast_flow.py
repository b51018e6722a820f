"""A forecasting upload end to end on the Azure backend: through the real ingest (the upload read from Azurite a range
at a time, its dataset version written there), the real MLClient against the REST stand-in (``rest_workspace``),
then the run's completion, the gate on the same held-out windows, the smoke test, drift, the run report and a
dropped file of future rows."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from cli import sample_data
from shared.azure import entities, holdout
from shared.azure.blobstore import ContainerStore
from shared.azure.config import AzureSettings
from shared.azure.deployment import AzureDeployer
from shared.azure.dry_run import InMemoryQueue, InMemoryRecords
from shared.azure.wiring import assemble
from shared.blob_stream import blob_stream
from shared.ingest import IngestOutcome, Upload, ingest
from shared.ports import Backend, DatasetVersion
from shared.promotion import RUN_COMPLETED, handle_run_completed
from shared.settings import Settings
from tests.azure.conftest import IDENTITY_ID, AzureStack

SALES = sample_data.monthly_sales(60)  # five years of one series, months on day 1
MONTHLY = {"target": "units", "time_column": "month", "horizon": "6"}
STORES = sample_data.store_weeks(3, 120)  # three stores, a promotion plan known ahead
WEEKLY = {"target": "sales", "time_column": "week", "horizon": "8", "series": "store"}


@dataclass
class Flow:
    """The Azure backend over the real MLClient (answered by the REST stand-in), its storage on Azurite."""

    backend: Backend
    service: Any  # tests.azure.rest_workspace.RestWorkspace
    settings: Settings
    uploads: ContainerClient
    versions: ContainerClient
    queue: InMemoryQueue

    def upload(self, path: str, content: bytes, metadata: dict[str, str]) -> IngestOutcome:
        """Drop the file in the uploads container and ingest it as the blob trigger does: read in ranges."""
        self.uploads.upload_blob(path, content, overwrite=True)
        client = self.uploads.get_blob_client(path)
        properties = client.get_blob_properties()
        stream = blob_stream(client, properties.size, properties.etag, range_bytes=4096)
        return ingest(Upload(path, client.url, stream, metadata, properties.etag.strip('"'),
                             properties.last_modified.isoformat()), self.backend, self.settings)

    def record(self, path: str) -> dict[str, Any]:
        """The upload record of the blob's current version."""
        etag = self.uploads.get_blob_client(path).get_blob_properties().etag.strip('"')
        found = self.backend.uploads.get(f"{path}@{etag}")
        assert found is not None
        return found

    def version(self, name: str) -> DatasetVersion:
        found = self.backend.datasets.get(name)
        assert found is not None
        return found

    def table(self, version: DatasetVersion, file: str) -> list[dict[str, str]]:
        path = f"{entities.dataset_folder(version.name, version.content_hash)}/{file}"
        return list(csv.DictReader(io.StringIO(self.versions.download_blob(path).readall().decode("utf-8"))))


@pytest.fixture()
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blob_service: BlobServiceClient) -> Flow:
    from shared.azure.run_metrics import MlflowRunMetrics
    from tests.azure.rest_workspace import FakeCredential, RestTransport, RestWorkspace, ml_client

    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path / "unused"))
    settings = Settings.from_env()
    azure = replace(AzureSettings.example(), endpoint_suffix="x7k2", endpoint_identity_id=IDENTITY_ID)
    service = RestWorkspace()
    ml = ml_client(service)
    versions = blob_service.create_container("dataset-versions")
    queue = InMemoryQueue()
    run_metrics = MlflowRunMetrics(ml, FakeCredential(), transport=RestTransport(service))
    backend = assemble(settings, azure, ml, ContainerStore(versions), InMemoryRecords(), credential=None,
                       queue=queue, run_metrics=run_metrics)
    return Flow(backend, service, settings, blob_service.create_container("datasets"), versions, queue)


def automl_node(flow: Flow, run_id: str) -> dict[str, Any]:
    body = flow.service.jobs[run_id]
    [node] = body["properties"]["jobs"].values()
    return dict(node)


# ---- ingest and the training job ------------------------------------------------------------------------------


def test_a_monthly_upload_is_read_as_a_series_held_out_by_its_last_horizon_and_trained_as_a_forecast(flow: Flow):
    outcome = flow.upload("sales/history.csv", sample_data.to_csv(SALES), MONTHLY)
    assert outcome.state == "training", outcome
    version = flow.version("sales")
    settings = version.schema.time_series
    assert version.schema.task == "forecasting" and version.schema.target == "units"
    assert settings is not None and settings.to_dict() == {
        "time_column": "month", "horizon": 6, "series": [], "frequency": "monthly", "anchor": "1"}
    assert any(g["check"] == "frequency" for g in version.guardrails)
    # The gate's windows: the last 6 months; training gets every month before them, each row once.
    held, train = flow.table(version, holdout.HOLDOUT_FILE), flow.table(version, holdout.TRAIN_FILE)
    assert [r["month"] for r in held] == [str(r["month"]) for r in SALES[-6:]]
    assert [r["month"] for r in train] == [str(r["month"]) for r in SALES[:-6]]
    assert version.holdout_rows == 6
    node = automl_node(flow, str(outcome.run_id))
    assert (node["task"], node["target_column_name"]) == ("forecasting", "units")
    assert node["forecasting"] == {"time_column_name": "month", "forecast_horizon": 6, "frequency": "MS"}
    assert node["primary_metric"] == "normalized_root_mean_squared_error"
    table = flow.versions.download_blob(f"runs/{outcome.run_id}/MLTable").readall().decode()
    assert "/train.csv" in table
    record = flow.record("sales/history.csv")
    assert record["state"] == "training" and record["details"]["time_series"] == settings.to_dict()


def test_several_stores_hold_out_each_ones_last_weeks_and_send_their_ids_and_known_promotions(flow: Flow):
    outcome = flow.upload("stores/weeks.csv", sample_data.to_csv(STORES), WEEKLY)
    assert outcome.state == "training", outcome
    version = flow.version("stores")
    assert version.schema.time_series is not None and version.schema.time_series.to_dict() == {
        "time_column": "week", "horizon": 8, "series": ["store"], "frequency": "weekly", "anchor": ""}
    held = flow.table(version, holdout.HOLDOUT_FILE)
    weeks = sorted({str(r["week"]) for r in STORES})
    assert sorted((r["store"], r["week"]) for r in held) == sorted(
        (store, week) for store in ("S01", "S02", "S03") for week in weeks[-8:])
    assert list(held[0]) == ["week", "store", "promo", "sales"]  # the known promotion plan goes with the rows
    assert len(flow.table(version, holdout.TRAIN_FILE)) == len(STORES) - 24
    node = automl_node(flow, str(outcome.run_id))
    # weekly: AutoML infers the weekday from the timestamps; the promotion is a feature known ahead (no setting)
    assert node["forecasting"] == {"time_column_name": "week", "forecast_horizon": 8,
                                   "time_series_id_column_names": ["store"]}
    baseline = json.loads(flow.versions.download_blob(
        f"{entities.dataset_folder('stores', version.content_hash)}/drift_baseline.json").readall())
    assert set(baseline["features"]) == {"store", "promo"}  # never the dates


def test_a_time_column_of_year_and_month_is_left_out_of_the_drift_baseline(flow: Flow):
    # 2015-01: text to the schema, a month to a series; a price list known ahead beside it
    rows = [{"month": str(r["month"])[:7], "price": 2 + i % 3, "units": r["units"]} for i, r in enumerate(SALES)]
    outcome = flow.upload("plain/months.csv", sample_data.to_csv(rows), MONTHLY)
    assert outcome.state == "training", outcome
    version = flow.version("plain")
    assert next(c for c in version.schema.columns if c.name == "month").kind == "string"
    assert version.schema.time_series is not None and version.schema.time_series.frequency == "monthly"
    assert [r["month"] for r in flow.table(version, holdout.HOLDOUT_FILE)] == [r["month"] for r in rows[-6:]]
    baseline = flow.backend.datasets.drift_baseline(version)
    assert baseline is not None and set(baseline["features"]) == {"price"}  # never the time

# ---- the run's completion: registration, the gate, the smoke test, drift ---------------------------------------


def trained(stack: AzureStack, rows: list[dict[str, object]], etag: str, score: float) -> tuple[str, dict[str, Any]]:
    run_id = stack.upload(sample_data.to_csv(rows), path="sales/history.csv", etag=etag, metadata=MONTHLY)
    return run_id, stack.workspace.complete_run(run_id, score=score)


def decided(stack: AzureStack, event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The final decision once the deployment queue ran, and the upload's record."""
    outcome = handle_run_completed(RUN_COMPLETED, event, stack.backend)
    if outcome.decision == "deploying":
        stack.queue.drain(stack.backend)
    final = stack.backend.promotions.decision(event["runId"])
    assert final is not None
    run = stack.backend.pipeline.get_run(event["runId"])
    assert run is not None and run.upload_id
    record = stack.backend.uploads.get(run.upload_id)
    assert record is not None
    return str(final["decision"]), record


def scored_rows(stack: AzureStack) -> list[list[list[Any]]]:
    return [c.args["request"]["input_data"]["data"] for c in stack.workspace.calls
            if c.operation == "online_endpoints.invoke"]


def test_a_forecaster_is_deployed_with_its_held_out_months_and_smoke_tested_after_the_upload(stack: AzureStack):
    run_id, event = trained(stack, SALES[:48], '"a"', 0.9)
    decision, record = decided(stack, event)
    assert decision == "deployed" and record["state"] == "promoted", record
    model = stack.backend.deployer.production("sales")
    assert model is not None and model.run_id == run_id and model.version == "1"
    # Its code folder carries the six months training did not see, with what happened in them: its context.
    [created] = [c.args["deployment"] for c in stack.workspace.calls
                 if c.operation == "online_deployments.begin_create_or_update"]
    shipped = stack.workspace.deployment_views[(created.endpoint_name, created.name)].code_files
    assert set(shipped) == {"score.py", "batch_score.py", "context.csv", "context.json"}
    context = list(csv.DictReader(io.StringIO(shipped["context.csv"].decode())))
    assert [(r["month"], float(r["units"])) for r in context] == [(str(r["month"]), r["units"]) for r in SALES[42:48]]
    assert json.loads(shipped["context.json"]) == {
        "target": "units", "time_column": "month", "series": [], "horizon": 6, "rows": 6,
        "source": "dataset sales v1: each series' last 6 period(s), held out of training"}
    # The smoke test asked for the first month after the uploaded data, which only that context lets it reach.
    smoke = next(c.args for c in stack.workspace.calls if c.operation == "online_endpoints.invoke")
    assert smoke["request"]["input_data"]["columns"] == ["month"]
    assert smoke["request"]["input_data"]["data"] == [[SALES[48]["month"]]]
    # Drift: the forecasts are held against its forecasts of its held-out window; the dates are never watched.
    deployer = stack.backend.deployer
    assert isinstance(deployer, AzureDeployer)
    reference = deployer.prediction_reference(model)
    assert reference is not None and reference["kind"] == "number" and len(reference["edges"]) > 1
    dataset = stack.backend.datasets.get("sales")
    assert dataset is not None
    baseline = stack.backend.datasets.drift_baseline(dataset)
    assert baseline is not None and "month" not in baseline["features"]


def test_a_forecaster_without_an_answer_for_the_first_window_is_refused(stack: AzureStack):
    _, event = trained(stack, SALES[:48], '"a"', 0.9)
    stack.workspace.store = None  # the endpoint answers with the script's fixed answer, not a forecast
    stack.workspace.invoke_answer = '{"predictions": [null]}'
    decision, record = decided(stack, event)
    assert decision == "refused" and record["state"] == "not_promoted"
    assert f"has no forecast for the first period after the uploaded data ({SALES[48]['month']})" in record["reason"]


def test_a_champion_of_older_data_forecasts_the_new_windows_from_the_end_of_its_own_data(stack: AzureStack):
    decided(stack, trained(stack, SALES[:48], '"a"', 0.9)[1])
    # Six more months: the new model is judged on them. Production trained up to month 42, but was deployed with
    # months 42-47 as its context: it forecasts 48-53 from there, so both are compared on the same six months.
    _, event = trained(stack, SALES[:54], '"b"', 0.2)
    decision, record = decided(stack, event)
    assert decision == "rejected" and record["state"] == "not_promoted", record
    chosen = record["details"]["decision"]
    assert chosen["champion"] is not None and chosen["challenger"] is not None and chosen["compared_rows"] == 6
    assert "does not beat production v1" in record["reason"]
    assert "on the same 6 rows of dataset sales v2 held out of training (each series' last 6 period(s); neither " \
           "model trained on them)" in record["reason"]
    window = [[str(r["month"])] for r in SALES[48:54]]
    assert scored_rows(stack)[-2:] == [window, window]


def test_a_champion_whose_data_ends_beyond_a_horizon_before_the_new_windows_is_stale_and_replaced(
        stack: AzureStack):
    decided(stack, trained(stack, SALES[:48], '"a"', 0.9)[1])
    # A year more: the new windows (months 54-59) lie beyond production's horizon from the end of its data (47).
    run_id, event = trained(stack, SALES[:60], '"b"', 0.2)
    decision, record = decided(stack, event)
    assert decision == "deployed" and record["state"] == "promoted", record
    reason = record["reason"]
    assert reason.startswith("production (v1) cannot score the windows held out of dataset sales v2 (each series' "
                             "last 6 period(s), 6 rows; neither model trained on them): it has no forecast for 6 "
                             "of them"), reason
    assert "is stale, so the new model takes over" in reason
    chosen = record["details"]["decision"]
    assert chosen["champion"] is None and chosen["challenger"] is not None and chosen["compared_rows"] == 6
    production = stack.backend.deployer.production("sales")
    assert production is not None and production.run_id == run_id
    # Both colours were asked for the same six months: the new model's window.
    window = [[str(r["month"])] for r in SALES[54:60]]
    assert scored_rows(stack)[-3:-1] == [window, window]


def test_forecasters_of_the_same_history_are_compared_on_the_same_windows(stack: AzureStack):
    decided(stack, trained(stack, SALES[:48], '"a"', 0.0)[1])  # its forecasts a quarter off
    revised = [{**SALES[0], "units": 190.0}, *SALES[1:48]]  # a correction of the first month: the same windows
    _, event = trained(stack, revised, '"b"', 1.0)  # its forecasts right
    decision, record = decided(stack, event)
    assert decision == "deployed", record
    chosen = record["details"]["decision"]
    assert chosen["challenger"] == 0.0 and chosen["champion"] > 0.1
    assert record["reason"].startswith("normalized_root_mean_squared_error 0.0000 vs production v1 ")
    assert record["reason"].endswith("on the same 6 rows of dataset sales v2 held out of training (each series' "
                                     "last 6 period(s); neither model trained on them)")
    # ...and a third of the same history, worse than the one serving, is not promoted.
    _, event = trained(stack, [{**SALES[0], "units": 191.0}, *SALES[1:48]], '"c"', 0.0)
    decision, record = decided(stack, event)
    assert decision == "rejected" and record["state"] == "not_promoted"
    assert "does not beat production v2" in record["reason"]


# ---- the run report -----------------------------------------------------------------------------------------------


def test_the_run_report_shows_each_series_forecast_against_what_happened_and_the_backtest(
        stack: AzureStack, monkeypatch: pytest.MonkeyPatch):
    from types import SimpleNamespace

    from shared.azure import reports
    from tests.browser import chromium

    monkeypatch.setattr(reports, "SERIES_SHOWN", 2)  # a sample of the series: the first by name
    run_id = stack.upload(sample_data.to_csv(STORES), path="stores/weeks.csv", etag='"a"', metadata=WEEKLY)
    event = stack.workspace.complete_run(run_id, score=0.9, algorithm="TCNForecaster")
    node = f"{run_id}_automl"
    for trial, (learner, value) in enumerate({"SeasonalNaive": 0.21, "ExponentialSmoothing": 0.12}.items()):
        name = f"{node}_{trial}"
        stack.workspace.job_views[name] = SimpleNamespace(
            name=name, type="base", display_name=f"trial {trial}", status="Completed", tags={},
            properties={"run_algorithm": learner, "runTemplate": "automl_child"}, studio_url="",
            creation_context=None, parent=node)
        stack.workspace.logged[name] = {"normalized_root_mean_squared_error": value}
    stack.workspace.logged[f"{node}_3"] = {"normalized_root_mean_squared_error": 0.9}
    decision, _ = decided(stack, event)
    assert decision == "deployed"
    page = stack.backend.reports.html(run_id)
    assert page is not None
    with chromium() as browser:  # as a person sees it
        tab = browser.new_page()
        tab.set_content(page)
        text = tab.inner_text("body")
        headings = [h.strip() for h in tab.locator("h2").all_inner_texts()]
        charts = tab.locator("svg").count()
    assert headings[:2] == ["Backtest", "Predicted against actual"]
    assert [h for h in headings if h.endswith(": actual and forecast")] == ["S01: actual and forecast",
                                                                            "S02: actual and forecast"]
    assert charts == 4  # the backtest, predicted against actual, two series
    weeks = sorted({str(r["week"]) for r in STORES})
    assert f"{weeks[-8]} to {weeks[-1]}" in text  # each chart spans its series' held-out weeks
    assert "Forecasts of 2 of 3 series by store" in text
    assert "dark: what happened; blue: forecast of these 8 held-out period(s)" in text
    assert "3 trials; normalized_root_mean_squared_error as AutoML logged it over its rolling-origin backtest; " \
           "seasonal naive 0.2100" in text
    board = text.split("Backtest\n")[1].split("\n")
    assert board[:2] == ["ExponentialSmoothing", "0.1200"]  # the lowest error first
    assert "24 of 24 rows of each series' last 8 weekly period(s), held out of training" in text


def test_the_series_windows_keep_time_order_and_a_missing_forecast_as_not_a_number():
    import math

    from shared.azure.reports import forecast_windows
    from shared.schema import TimeSeries

    records: list[dict[str, str | None]] = [
        {"week": "2024-01-15", "store": "b", "sales": "3"}, {"week": "2024-01-08", "store": "b", "sales": "2"},
        {"week": "2024-01-08", "store": "a", "sales": "5"}]
    windows = forecast_windows(records, [3.5, None, 4.0], TimeSeries("week", 2, ("store",), "weekly"), "sales")
    assert [w["series"] for w in windows] == ["a", "b"]
    b = windows[1]
    assert (b["first"], b["last"], b["actual"], b["history"]) == ("2024-01-08", "2024-01-15", [2.0, 3.0], [])
    assert math.isnan(b["forecast"][0]) and b["forecast"][1] == 3.5
