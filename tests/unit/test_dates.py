"""Date columns: recognised in uploads, read as calendar parts in training and scoring, named in every answer."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from shared import drift, scoring
from shared.dataset_validation import is_date_column, validate
from shared.errors import BadRequest
from shared.guardrails import evaluate
from shared.local import automl
from shared.model_contract import ModelSignature, columns_from_frame
from shared.openapi import _row_schema
from shared.schema import DATE_PARTS, Column, date_parts, part_name

SIGNATURE = ModelSignature((Column("amount", "number"), Column("when", "datetime"),
                            Column("shop", "string", categories=("a", "b"))), "y", ("no", "yes"))
WHEN = tuple(part_name("when", p) for p in DATE_PARTS)


def upload(dates: list[str | None], rows: int = 120) -> bytes:
    frame = pd.DataFrame({"when": [dates[i % len(dates)] for i in range(rows)], "amount": range(rows),
                          "y": ["yes", "no"] * (rows // 2)})
    return str(frame.to_csv(index=False)).encode()


@pytest.mark.parametrize("dates", [
    ["2024-05-31", "2024-06-01"],
    ["2024-05-31T14:30:00", "2024-05-31 09:05"],
    ["2024-05-31T14:30:00.250Z", "2024-05-31T14:30:00+02:00", None],
])
def test_iso_dates_in_any_of_their_spellings_make_a_date_column(dates):
    dataset = validate(upload(dates), "y", max_bytes=10**7, min_rows=50)
    assert dataset.schema.column("when").kind == "datetime"
    assert dataset.schema.column("when").categories == ()


@pytest.mark.parametrize("dates", [
    ["05/31/2024", "06/01/2024"],  # month or day first: ambiguous, so text
    ["2024-05-31", "soon"],  # one value that is no date
    ["2024-02-30", "2024-03-01"],  # no such day
    ["2024-05", "2024-06"],  # no day
])
def test_other_spellings_and_impossible_dates_stay_text(dates):
    dataset = validate(upload(dates), "y", max_bytes=10**7, min_rows=50)
    assert dataset.schema.column("when").kind == "string"


def test_numbers_and_booleans_are_never_dates():
    assert not is_date_column(pd.Series([20240531, 20240601]))
    assert not is_date_column(pd.Series([True, False]))


def test_a_date_becomes_its_calendar_parts_read_as_written():
    assert date_parts("2024-05-31T14:30:00") == (2024.0, 5.0, 31.0, 5.0, 152.0, 14.5)  # a Friday, day 152
    assert date_parts("2024-05-31T14:30:00+09:00") == date_parts("2024-05-31T14:30:00Z") == \
        date_parts("2024-05-31 14:30")  # wall-clock time: the offset is not applied
    assert date_parts("2024-05-31") == (2024.0, 5.0, 31.0, 5.0, 152.0, 0.0)
    assert date_parts("31/05/2024") is None and date_parts("") is None


def test_scoring_reads_a_date_into_its_parts_alone_and_among_other_rows():
    row = {"amount": 3.5, "when": "2025-01-04T18:15:00", "shop": "a"}  # a Saturday
    assert scoring._one_good_row(row, SIGNATURE) is not None  # the fast path took it
    alone, _ = scoring.columns_for([row], SIGNATURE)
    among, _ = scoring.columns_for([row, {**row, "when": None}], SIGNATURE)
    assert set(alone) == {"amount", "shop", *WHEN}
    assert [float(alone[name][0, 0]) for name in WHEN] == [2025.0, 1.0, 4.0, 6.0, 4.0, 18.25]
    for name in WHEN:
        assert alone[name].dtype == np.float32 and alone[name][0, 0] == among[name][0, 0]
        assert math.isnan(float(among[name][1, 0]))  # a missing date: missing parts, imputed by the model


@pytest.mark.parametrize("value", ["04/01/2025", "tomorrow", 20250104, True])
def test_a_value_that_is_no_date_is_named_with_its_row_and_field(value):
    row = {"amount": 1, "when": value, "shop": "b"}
    assert scoring._one_good_row(row, SIGNATURE) is None
    with pytest.raises(BadRequest) as caught:
        scoring.columns_for([{**row, "when": "2025-01-04"}, row], SIGNATURE)
    assert caught.value.details == [{"row": 1, "field": "when",
                                     "error": f"expected an ISO 8601 date or date and time, got {value!r}"}]


def test_batch_rows_read_dates_as_requests_do_and_a_bad_one_as_missing():
    frame = pd.DataFrame({"amount": [1.0, 2.0], "when": ["2025-01-04T18:15:00", "someday"], "shop": ["a", "b"]})
    columns = columns_from_frame(frame, SIGNATURE)
    requested, _ = scoring.columns_for([{"amount": 1.0, "when": "2025-01-04T18:15:00", "shop": "a"}], SIGNATURE)
    for name in WHEN:
        assert columns[name][0, 0] == requested[name][0, 0] and math.isnan(float(columns[name][1, 0]))


def test_training_inputs_are_the_parts_as_numbers():
    dataset = validate(upload(["2024-05-31T14:30:00", None]), "y", max_bytes=10**7, min_rows=50)
    schema = dataset.schema
    frame = automl.feature_frame(dataset.frame, schema)
    assert list(frame.columns) == [*WHEN, "amount"]
    assert frame.iloc[0].tolist()[:6] == [2024.0, 5.0, 31.0, 5.0, 152.0, 14.5]
    assert frame.iloc[1][list(WHEN)].isna().all()
    assert schema.model_inputs == (*((name, True) for name in WHEN), ("amount", True))
    assert schema.input_columns[part_name("when", "hour")] == "when"


def test_the_openapi_row_schema_asks_for_an_iso_date():
    described = _row_schema(SIGNATURE)["properties"]["when"]
    assert described["type"] == ["string", "null"] and "ISO 8601" in described["description"]


def test_guardrails_name_date_columns_and_do_not_take_timestamps_for_identifiers():
    moments = pd.date_range("2024-01-01", periods=300, freq="37min").strftime("%Y-%m-%dT%H:%M:%S")
    frame = pd.DataFrame({"when": moments, "order_id": [f"K{i:05d}" for i in range(300)],
                          "y": ["yes", "no", "no"] * 100})
    found = {f["check"]: f for f in evaluate(frame, "y")}
    assert found["date_columns"]["details"]["columns"] == ["when"]
    assert found["id_like_columns"]["details"]["columns"] == ["order_id"]


def test_drift_leaves_dates_out():
    frame = pd.DataFrame({"amount": [1.0, 2.0, 3.0], "when": ["2024-01-01", "2024-01-02", "2024-01-03"],
                          "shop": ["a", "b", "a"]})
    reference = drift.baseline(frame, SIGNATURE.features)
    assert set(reference["features"]) == {"amount", "shop"}


def test_the_azure_smoke_test_row_sends_a_date_the_schema_accepts():
    from shared.azure.deployment import example_request
    from shared.schema import Schema

    schema = Schema((*SIGNATURE.features, Column("y", "string", categories=("no", "yes"))), "y")
    body = example_request(schema)["input_data"]
    row = dict(zip(body["columns"], body["data"][0], strict=True))
    assert row == {"amount": 0, "when": row["when"], "shop": "a"} and date_parts(str(row["when"])) is not None
    scoring.columns_for([row], ModelSignature.from_schema(schema))  # what the app checks before the call
