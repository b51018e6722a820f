"""The windows a forecasting dataset version holds out for the gate: the last ``horizon`` periods of each series,
the same rows however the copy is chunked (``shared.azure.holdout``)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest

from shared.azure import datasets, entities, holdout
from tests.azure.conftest import AzureStack
from tests.azure.test_forecasting import HORIZON, monthly_rows, registered, schema, table, to_csv


def expected_windows(rows: list[dict[str, str]]) -> set[tuple[str, str, str]]:
    """Each series' rows in its last HORIZON months (the month ends after its last one less HORIZON months), but
    none of a series with nothing before them."""
    frame = pd.DataFrame(rows)
    frame["time"] = pd.to_datetime(frame["date"])
    held: set[tuple[str, str, str]] = set()
    for (store, item), part in frame.groupby(["store", "item"]):
        cutoff = part["time"].max() - pd.offsets.MonthEnd(HORIZON)
        if part["time"].min() <= cutoff:
            held |= {(store, item, d) for d in part.loc[part["time"] > cutoff, "date"]}
    return held


def keys(rows: list[dict[str, str]]) -> set[tuple[str, str, str]]:
    return {(r["store"], r["item"], r["date"]) for r in rows}


@pytest.mark.parametrize("chunk_rows", [1, 7, 50, 100_000])
def test_each_series_holds_out_its_last_periods_whatever_the_chunking(stack: AzureStack,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      chunk_rows: int):
    monkeypatch.setattr(datasets, "COPY_CHUNK_ROWS", chunk_rows)
    rows = monthly_rows()
    version = registered(stack.backend, to_csv(rows), schema())
    folder = entities.dataset_folder("shop", version.content_hash)
    held = table(stack.store.blobs[f"{folder}/{holdout.HOLDOUT_FILE}"])
    train = table(stack.store.blobs[f"{folder}/{holdout.TRAIN_FILE}"])
    assert keys(held) == expected_windows(rows)
    # north/a: 3 month ends; north/b: 2, its window misses November; south/a: 3; south/b has only HORIZON months,
    # so it is trained on whole.
    assert len(held) == 3 + 2 + 3 and version.holdout_rows == len(held)
    assert not any(r["store"] == "south" and r["item"] == "b" for r in held)
    assert keys(train) == keys(rows) - keys(held) and len(train) + len(held) == len(rows)
    assert held[0].keys() == rows[0].keys()  # the copy's columns, as the gate reads them
    # Every chunking writes the same bytes: the split is the same rows in the same order.
    assert hashlib.sha256(stack.store.blobs[f"{folder}/{holdout.HOLDOUT_FILE}"]).hexdigest() == hashlib.sha256(
        b"date,store,item,price,sales\n" + b"".join(
            to_csv([r])[len("date,store,item,price,sales\n"):] for r in rows
            if (r["store"], r["item"], r["date"]) in expected_windows(rows))).hexdigest()


def test_a_window_follows_the_calendar_when_the_series_is_months_on_day_one(stack: AzureStack):
    rows = [{"date": d.strftime("%Y-%m-%d"), "store": "north", "item": "a", "price": "1", "sales": str(i)}
            for i, d in enumerate(pd.date_range("2023-01-01", periods=14, freq="MS"))]
    version = registered(stack.backend, to_csv(rows), schema(anchor="1"))
    held = table(stack.store.blobs[f"{entities.dataset_folder('shop', version.content_hash)}/{holdout.HOLDOUT_FILE}"])
    assert [r["date"] for r in held] == ["2023-12-01", "2024-01-01", "2024-02-01"]


def test_without_a_known_frequency_the_window_is_the_latest_distinct_times(stack: AzureStack):
    rows = [r for r in monthly_rows() if r["store"] == "north"]
    version = registered(stack.backend, to_csv(rows), schema(frequency="", anchor=""))
    held = table(stack.store.blobs[f"{entities.dataset_folder('shop', version.content_hash)}/{holdout.HOLDOUT_FILE}"])
    # north/b misses November: its last HORIZON times reach back to September
    assert sorted(keys(held)) == sorted(
        [("north", "a", d) for d in ("2023-10-31", "2023-11-30", "2023-12-31")]
        + [("north", "b", d) for d in ("2023-09-30", "2023-10-31", "2023-12-31")])


def test_times_are_read_as_written_whatever_their_offset():
    times = holdout.wall_clock(pd.Series(["2024-03-01T09:00:00+02:00", "2024-03-01 10:00Z", "2024-03-02", None,
                                          "soon"]))
    assert list(times[:3]) == [pd.Timestamp("2024-03-01 09:00"), pd.Timestamp("2024-03-01 10:00"),
                               pd.Timestamp("2024-03-02")]
    assert times[3:].isna().all()


def test_rows_without_series_are_still_held_out_by_hash(stack: AzureStack):
    assert isinstance(holdout.split_for(replace(schema(), time_series=None)), holdout.RowHash)
    splitter: Any = holdout.split_for(schema())
    assert splitter.first_pass
