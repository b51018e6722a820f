"""A forecasting upload through the real ingest (on in-memory ports): what is checked, what is rejected and why,
and what the dataset version keeps of its settings."""

from __future__ import annotations

import pytest

from cli import sample_data
from shared.ingest import Upload, ingest
from shared.settings import Settings
from tests.unit.fakes import MemoryStack, memory_stack

MONTHLY = {"target": "units", "time_column": "month", "horizon": "12"}


stack = pytest.fixture(name="stack")(memory_stack)


@pytest.fixture()
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Settings:
    """The defaults (MIN_ROWS among them: a forecast's history is judged per series, against its horizon)."""
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("MIN_ROWS", raising=False)
    return Settings.from_env()


def send(stack: MemoryStack, settings: Settings, rows: list[dict[str, object]], **metadata: str) -> dict:
    upload = Upload("sales/a.csv", "memory://datasets/sales/a.csv", sample_data.to_csv(rows),
                    {**MONTHLY, **metadata}, '"1"', "2026-11-01T10:00:00+00:00")
    ingest(upload, stack.backend, settings)
    record = stack.backend.uploads.get(upload.upload_id)
    assert record is not None
    return record


def test_a_good_series_is_registered_with_its_frequency_and_trained_as_a_forecast(stack, settings):
    record = send(stack, settings, sample_data.monthly_sales(60))
    assert record["state"] == "training", record
    dataset = stack.backend.datasets.get("sales")
    assert dataset is not None and str(dataset.schema.task) == "forecasting"
    assert dataset.schema.time_series is not None
    assert (dataset.schema.time_series.frequency, dataset.schema.time_series.anchor) == ("monthly", "1")
    said = {g["check"]: g["message"] for g in record["details"]["guardrails"]}
    assert "reaches 12 months ahead" in said["frequency"]


def test_the_same_file_read_with_another_horizon_is_another_dataset_version(stack, settings):
    rows = sample_data.monthly_sales(60)
    send(stack, settings, rows)
    upload = Upload("sales/b.csv", "memory://datasets/sales/b.csv", sample_data.to_csv(rows),
                    {**MONTHLY, "horizon": "6"}, '"2"', "2026-11-01T10:00:01+00:00")
    assert ingest(upload, stack.backend, settings).dataset_version == 2


@pytest.mark.parametrize(("rows", "metadata", "code", "says"), [
    (sample_data.monthly_sales(30), {}, "too_short",
     "has 30 monthly periods of history; forecasting 12 ahead needs at least 36"),
    ([*sample_data.monthly_sales(60), sample_data.monthly_sales(60)[7]], {}, "duplicate_time",
     "repeated time(s) (first: 2015-08-01"),
    ([{**row, "month": f"2020-01-{1 + i % 28:02d}"} for i, row in enumerate(sample_data.monthly_sales(60))], {},
     "duplicate_time", "each time must appear once per series"),
    ([{**row, "month": f"{2015 + i // 12}-{i % 12 + 1:02d}-{1 + (i * 7) % 27:02d}"}
      for i, row in enumerate(sample_data.monthly_sales(60))], {}, "irregular",
     "irregular timestamps (the most common step is"),
    ([r for i, r in enumerate(sample_data.monthly_sales(72)) if i % 10 not in (3, 6, 8)], {}, "gap",
     "more than 25% missing is too many to fill"),
    ([{**row, "month": "the fifth"} if i == 5 else row for i, row in enumerate(sample_data.monthly_sales(60))], {},
     "bad_time", "no readable date in 'month'"),
    (sample_data.monthly_sales(60), {"time_column": "date"}, "missing_column", "'date'"),
    ([{**row, "next_units": sample_data.monthly_sales(61)[i + 1]["units"]}
      for i, row in enumerate(sample_data.monthly_sales(60))], {}, "future_target",
     "column 'next_units' holds the target 'units' of 1 period(s) later"),
    (sample_data.monthly_sales(60), {"series": "store"}, "missing_column", "'store'"),
])
def test_a_series_that_cannot_be_forecast_is_rejected_with_its_reason(stack, settings, rows, metadata, code, says):
    record = send(stack, settings, rows, **metadata)
    assert record["state"] == "rejected", record
    assert record["details"]["code"] == code and says in record["reason"], record
    assert stack.backend.datasets.get("sales") is None  # nothing registered, nothing trained


def test_series_of_different_frequencies_are_rejected_naming_them(stack, settings):
    weekly = [{"month": r["week"], "shop": r["store"], "units": r["sales"]} for r in sample_data.store_weeks(1, 120)]
    monthly = [{**r, "shop": "M"} for r in sample_data.monthly_sales(60)]
    record = send(stack, settings, weekly + monthly, series="shop")
    assert record["details"]["code"] == "mixed_frequency"
    assert "different frequencies (monthly: M; weekly: S01)" in record["reason"]


def test_a_few_missing_periods_are_filled_and_said(stack, settings):
    rows = [row for i, row in enumerate(sample_data.monthly_sales(72)) if i not in (20, 41)]
    record = send(stack, settings, rows)
    assert record["state"] == "training", record
    gap = next(g for g in record["details"]["guardrails"] if g["check"] == "gap")
    assert "misses 2 of its 72 monthly periods (first: 2016-09-01" in gap["message"]
    assert "filled by linear interpolation" in gap["message"]


def test_a_time_series_upload_needs_a_numeric_target(stack, settings):
    rows = [{**row, "units": "many"} if i % 2 else row for i, row in enumerate(sample_data.monthly_sales(60))]
    record = send(stack, settings, rows)
    assert record["details"]["code"] == "target_not_numeric"
    assert "asks for forecasting" in record["reason"]


def test_a_time_written_as_text_beside_the_target_alone_is_a_forecast_not_an_id_column(stack, settings):
    rows = [{"month": str(row["month"])[:7], "units": row["units"]} for row in sample_data.monthly_sales(60)]
    record = send(stack, settings, rows)
    assert record["state"] == "training", record  # "2015-01": text to the schema, still the series' time
    checks = {g["check"] for g in record["details"]["guardrails"]}
    assert "id_like_columns" not in checks and "frequency" in checks, checks
    dataset = stack.backend.datasets.get("sales")
    assert dataset is not None and dataset.schema.time_series is not None
    assert dataset.schema.time_series.frequency == "monthly"


def test_every_row_its_own_series_is_refused_in_one_short_reason(stack, settings):
    rows = [{**row, "shop": f"shop-{i}"} for i, row in enumerate(sample_data.monthly_sales(60))]
    record = send(stack, settings, rows, series="shop")
    assert record["details"]["code"] == "irregular"  # one time each: too few to tell a frequency
    assert record["reason"].count("shop-") == 10 and record["reason"].endswith("; and 50 more like these")


def test_more_series_than_one_model_forecasts_are_refused_naming_the_limit(stack, settings, monkeypatch):
    from shared.forecasting import upload

    monkeypatch.setattr(upload, "MAX_SERIES", 3)
    rows = [{**r, "units": r["sales"]} for r in sample_data.store_weeks(4, 120)]
    record = send(stack, settings, rows, time_column="week", series="store", target="units")
    assert record["details"]["code"] == "too_many_series"
    assert record["reason"].startswith("4 series (distinct store): at most 3 are forecast by one model")
