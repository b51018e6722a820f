"""Time series on the real local stack (Azurite, the host process, the training worker): a monthly CSV dropped
with its forecasting settings is trained, promoted and forecast over HTTP; several stores with promotions planned
ahead are one model; a second upload is gated on the same windows."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from cli import sample_data
from devhost.process import wait_for
from tests.browser import read_page
from tests.integration.ml_stack import Stack, running_stack

pytestmark = pytest.mark.integration

SALES = sample_data.monthly_sales(108)  # nine years: eight trained on, the ninth to check the forecast against
MONTHLY = {"target": "units", "time_column": "month", "horizon": "12"}
STORES = sample_data.store_weeks(4, 168)  # the last 8 weeks of each store are what the forecast is checked on
CUT = sorted({str(r["week"]) for r in STORES})[160]
WEEKLY = {"target": "sales", "time_column": "week", "horizon": "8", "series": "store"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Drift windows of a second, closed once 30 rows were scored: the drift test sees one within the test.
    with running_stack(tmp_path_factory.mktemp("forecast"), DRIFT_WINDOW_S="1", DRIFT_MIN_ROWS="30") as running:
        yield running


def forecast(stack: Stack, model: str, rows: list[dict[str, object]], **extra: object) -> requests.Response:
    return requests.post(f"{stack.host.url}/api/models/{model}/score", json={"data": rows, **extra},
                         headers=stack.headers, timeout=60)


def test_a_monthly_csv_is_promoted_and_forecasts_the_next_twelve_months_over_http(stack: Stack):
    record = stack.wait_final(stack.upload("sales/history.csv", sample_data.to_csv(SALES[:96]), MONTHLY))
    assert record["state"] == "promoted", record
    details = record["details"]
    assert details["task"] == "forecasting" and details["metric"] == "normalized_root_mean_squared_error"
    assert details["time_series"] == {"time_column": "month", "horizon": 12, "series": [], "frequency": "monthly",
                                      "anchor": "1"}
    frequency = next(g for g in details["guardrails"] if g["check"] == "frequency")
    assert "monthly (all 95 steps are one month, on day 1 of the month)" in frequency["message"]
    run = stack.get(f"runs/{record['run_id']}")["result"]
    assert run["task"] == "forecasting" and run["model_format"] == "forecaster"
    assert run["fit_rows"] == {"holdout_fit": 84, "validation": 12, "final_fit": 96}  # the last year held out
    assert {t["learner"] for t in run["leaderboard"]} >= {"seasonal-naive", "ets", "lightgbm"}

    future = SALES[96:]
    answer = forecast(stack, "sales", [{"month": row["month"]} for row in future])
    assert answer.status_code == 200, answer.text
    values = answer.json()["result"]
    assert len(values) == 12 and all(isinstance(v, float) for v in values)
    truth = [float(str(row["units"])) for row in future]
    mae = sum(abs(v - t) for v, t in zip(values, truth, strict=True)) / 12
    naive = sum(abs(float(str(SALES[84 + i]["units"])) - t) for i, t in enumerate(truth)) / 12  # last year's
    assert mae < naive, (mae, naive)  # better than repeating last year, on months it never saw


@pytest.mark.parametrize(("month", "says"), [
    ("2022-12-01", "not after the end of the history of the series (2022-12-01"),
    ("2024-01-01", "13 monthly periods after the end of the history of the series (2022-12-01 00:00:00); the "
                   "horizon is 12 periods"),
    ("2023-01-15", "not on the monthly grid"),
])
def test_a_time_the_model_cannot_forecast_is_a_400_that_says_why(stack: Stack, month: str, says: str):
    stack.wait_final(stack.upload("sales/history.csv", sample_data.to_csv(SALES[:96]), MONTHLY))
    answer = forecast(stack, "sales", [{"month": "2023-02-01"}, {"month": month}])
    assert answer.status_code == 400, answer.text
    assert says in answer.json()["error"]


def test_the_api_document_says_what_a_forecast_request_is(stack: Stack):
    stack.wait_final(stack.upload("sales/history.csv", sample_data.to_csv(SALES[:96]), MONTHLY))
    document = stack.get("swagger.json")
    operation = document["paths"]["/models/sales/score"]["post"]
    assert "a forecast per row of a future time" in operation["summary"]
    assert "one of the 12 monthly period(s) after the end of its series' history" in operation["description"]
    assert operation["requestBody"]["content"]["application/json"]["example"] == {"data": [{"month": "2023-01-01"}]}
    row = document["components"]["schemas"]["Row_sales"]
    assert row["required"] == ["month"] and "pattern" in row["properties"]["month"]


def test_what_a_forecast_cannot_give_is_refused_plainly(stack: Stack):
    stack.wait_final(stack.upload("sales/history.csv", sample_data.to_csv(SALES[:96]), MONTHLY))
    assert forecast(stack, "sales", [{"month": "2023-01-01"}], probabilities=True).status_code == 400
    explained = forecast(stack, "sales", [{"month": "2023-01-01"}], explain=True)
    assert explained.status_code == 501 and "report shows its forecasts" in explained.json()["error"]
    not_a_date = forecast(stack, "sales", [{"month": "January"}])
    assert not_a_date.status_code == 400 and "ISO 8601" in not_a_date.text
    no_time = forecast(stack, "sales", [{"month": "2023-01-01"}, {"month": None}])
    assert no_time.status_code == 400 and "row 1 has no time in 'month'" in no_time.json()["error"]
    far = forecast(stack, "sales", [{"month": "9999-12-01"}])
    assert far.status_code == 400 and "the horizon is 12 periods" in far.json()["error"]


def test_several_stores_are_one_model_that_forecasts_each_from_its_own_history(stack: Stack):
    history = [r for r in STORES if str(r["week"]) < CUT]
    record = stack.wait_final(stack.upload("stores/weeks.csv", sample_data.to_csv(history), WEEKLY))
    assert record["state"] == "promoted", (record["reason"], record["details"])
    assert record["details"]["time_series"]["series"] == ["store"]
    ahead = [r for r in STORES if str(r["week"]) >= CUT]  # the next 8 weeks of the 4 stores
    assert len(ahead) == 32
    answer = forecast(stack, "stores", [{k: v for k, v in r.items() if k != "sales"} for r in ahead])
    assert answer.status_code == 200, answer.text
    values = answer.json()["result"]
    errors = [abs(v - float(str(r["sales"]))) / float(str(r["sales"])) for v, r in zip(values, ahead, strict=True)]
    assert sum(errors) / len(errors) < 0.15  # each store at its own level, promotions lifting their weeks

    unknown = forecast(stack, "stores", [{"week": CUT, "store": "S99", "promo": 0}])
    assert unknown.status_code == 400 and "series 'S99' has no history in training" in unknown.json()["error"]
    no_promo = forecast(stack, "stores", [{"week": CUT, "store": "S01"}])
    assert no_promo.status_code == 400 and "promo" in no_promo.text


def test_a_broken_time_series_is_rejected_with_its_reason_and_production_keeps_serving(stack: Stack):
    stack.wait_final(stack.upload("sales/history.csv", sample_data.to_csv(SALES[:96]), MONTHLY))
    twice = [*SALES[:96], SALES[50]]
    record = stack.wait_final(stack.upload("sales/twice.csv", sample_data.to_csv(twice), MONTHLY))
    assert record["state"] == "rejected" and "repeated time" in record["reason"], record
    assert forecast(stack, "sales", [{"month": "2023-01-01"}]).status_code == 200


def test_a_second_upload_is_gated_against_production_on_the_same_windows(stack: Stack):
    stack.wait_final(stack.upload("sales/history.csv", sample_data.to_csv(SALES[:96]), MONTHLY))
    record = stack.wait_final(stack.upload("sales/more.csv", sample_data.to_csv(SALES[:102]), MONTHLY))
    assert record["state"] in ("promoted", "not_promoted"), record
    decision = record["details"]["decision"]
    assert decision["metric"] == "normalized_root_mean_squared_error"
    # Production's method refit on the challenger's history, both forecasting the challenger's last 12 months.
    assert 0 < decision["challenger"] < 1 and 0 < decision["champion"] < 1, decision


def dropped(stack: Stack, name: str, rows: list[dict[str, object]]) -> tuple[dict, list[dict[str, str]]]:
    """A file dropped for batch scoring: its summary (or error) and its scored rows."""
    blobs = BlobServiceClient.from_connection_string(stack.host.storage)
    blobs.get_container_client("scoring-input").get_blob_client(f"{name}.csv").upload_blob(
        sample_data.to_csv(rows), overwrite=True)
    output = blobs.get_container_client("scoring-output")

    def outcome() -> dict | None:
        for suffix in ("summary", "error"):
            blob = output.get_blob_client(f"{name}.{suffix}.json")
            if output.exists() and blob.exists():
                return dict(json.loads(blob.download_blob().readall()))
        return None

    result = wait_for(outcome, timeout=120, interval=0.2, what=f"batch outcome of {name}")
    scored = output.get_blob_client(f"{name}.scored.csv")
    rows_out = list(csv.DictReader(io.StringIO(scored.download_blob().readall().decode()))) if scored.exists() \
        else []
    return result, rows_out


def test_a_dropped_file_of_future_rows_is_forecast_as_the_api_forecasts_them(stack: Stack):
    ahead = [{k: v for k, v in r.items() if k != "sales"} for r in STORES if str(r["week"]) >= CUT]
    summary, scored = dropped(stack, "stores/next-weeks", ahead)
    assert summary["rows"] == 32 and set(summary["predictions"]) == {"min", "mean", "max"}, summary
    online = forecast(stack, "stores", ahead).json()["result"]
    assert [float(r["prediction"]) for r in scored] == pytest.approx(online, abs=1e-4)

    beyond, nothing = dropped(stack, "stores/too-far", [{"week": "2031-01-06", "store": "S01", "promo": 0}])
    assert "the horizon is 8 periods" in beyond["error"] and nothing == []


def test_the_run_report_shows_each_store_forecast_against_what_happened(stack: Stack):
    run = next(r for r in stack.get("runs", model="stores")["runs"] if r["state"] == "completed")
    _, headings, text = read_page(f"{stack.host.url}/api/runs/{run['run_id']}/report?code={stack.host.function_key}")
    assert headings["h2"][:2] == ["Backtest", "Predicted against actual"]
    charts = sorted(h for h in headings["h2"] if h.endswith(": actual and forecast"))
    assert charts == [f"S0{i}: actual and forecast" for i in (1, 2, 3, 4)], headings["h2"]
    assert "forecasting 8 weekly period(s) of each series by store" in text
    assert "blue: forecast of the last 8 period(s)" in text and "2022-12-05 to 2025-01-20" in text
    naive = float(text.split("; seasonal naive ")[1].split()[0])
    best = float(text.split("Backtest\n")[1].split("\n")[1])
    assert best < naive  # the chosen forecast beat the baseline in the backtest, as the page shows


def test_drift_watches_the_forecasts_and_the_known_features_not_the_dates(stack: Stack):
    ahead = [{k: v for k, v in r.items() if k != "sales"} for r in STORES if str(r["week"]) >= CUT]
    promoted = [{**row, "promo": 1} for row in ahead]  # every week a promotion: forecasts lifted, promo shifted
    started = (datetime.now(UTC) + timedelta(seconds=1)).isoformat(timespec="seconds")  # after earlier traffic

    def shifted_window() -> dict | None:
        assert forecast(stack, "stores", promoted).status_code == 200
        window = stack.get("models/stores/drift").get("last_window")
        return window if window and window["start"] >= started and window["prediction_psi"] is not None else None

    window = wait_for(shifted_window, timeout=60, interval=0.3, what="a closed drift window")
    assert "week" not in window["psi"] and set(window["psi"]) == {"store", "promo"}
    assert window["psi"]["promo"] > 0.2 and "promo" in window["drifted"]  # 15% of weeks in training, all now
    assert window["prediction_psi"] > 0
