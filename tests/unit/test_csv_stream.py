"""The upload read in chunks finds what the whole-file reader finds: the same schema, task, rows and guardrails,
or the same rejection; and its memory does not grow with the file."""

from __future__ import annotations

import io
import random
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cli import sample_data
from shared import csv_stream, guardrails
from shared.dataset_validation import validate
from shared.errors import DatasetRejected
from shared.tasks import Task


def _bank(count: int, seed: int = 7, delimiter: str = ",") -> bytes:
    return sample_data.to_csv(sample_data.rows(count, seed=seed), delimiter=delimiter)


def _with_gaps() -> bytes:
    """Missing values of every spelling, an unlabelled row, '?' as in the UCI files."""
    rows = sample_data.rows(300, seed=5)
    for i, row in enumerate(rows):
        if i % 7 == 0:
            row["job"] = "?"
        if i % 11 == 0:
            row["euribor3m"] = "NA"
        if i % 13 == 0:
            row["age"] = ""
        if i % 50 == 0:
            row["y"] = ""
    return sample_data.to_csv(rows)


def _coded(missing: bool) -> bytes:
    """A target of class codes, with gaps (pandas reads them as 1.0) or without (as 1)."""
    rng = random.Random(3)
    lines = ["a,flag,when,y"]
    for i in range(200):
        label = "" if missing and i % 17 == 0 else str(rng.randint(0, 2))
        flag = rng.choice(["TRUE", "false", "True"])
        lines.append(f"{rng.random():.3f},{flag},2024-05-{1 + i % 28:02d},{label}")
    return ("\n".join(lines) + "\n").encode()


def _row_names(numbers: bool) -> bytes:
    frame = pd.DataFrame(sample_data.rows(150, seed=2))
    if not numbers:
        frame.index = [f"r{i}" for i in range(len(frame))]
    return str(frame.to_csv()).encode()


def _decimal_commas() -> bytes:
    rng = random.Random(1)
    lines = ["size;price;district;y"]
    for i in range(160):
        lines.append(f"{rng.uniform(20, 200):.1f}".replace(".", ",") + f";{rng.randint(50, 900)},{i % 10};"
                     f"{rng.choice(['a', 'b'])};{rng.choice(['yes', 'no'])}")
    return ("\n".join(lines) + "\n").encode()


def _trailing_delimiters() -> bytes:
    return b"".join(line + b",\n" for line in _bank(120).splitlines())


def _with_ids_and_leak() -> bytes:
    rows = sample_data.rows(400, seed=9)
    order = list(range(len(rows)))
    random.Random(4).shuffle(order)
    for i, row in enumerate(rows):
        row["customer_id"] = f"C{i:05d}"
        row["row"] = order[i]
        row["outcome_code"] = 1 if row["y"] == "yes" else 0
        row["same"] = "x"
    return sample_data.to_csv(rows)


FILES: dict[str, tuple[bytes, str, Task | None]] = {
    "bank": (_bank(300), "y", None),
    "bank semicolons with a BOM": (b"\xef\xbb\xbf" + _bank(200, delimiter=";"), "y", None),
    "homes (regression)": (sample_data.to_csv(sample_data.home_rows(300)), "price", None),
    "homes as classes": (sample_data.to_csv(sample_data.home_rows(300)), "district", None),
    "gaps and unlabelled rows": (_with_gaps(), "y", None),
    "class codes": (_coded(missing=False), "y", None),
    "class codes with gaps": (_coded(missing=True), "y", None),
    "class codes as regression": (_coded(missing=False), "y", Task.REGRESSION),
    "row numbers": (_row_names(numbers=True), "y", None),
    "row names": (_row_names(numbers=False), "y", None),
    "decimal commas": (_decimal_commas(), "price", None),
    "decimal comma features": (_decimal_commas(), "y", None),
    "empty trailing columns": (_trailing_delimiters(), "y", None),
    "identifiers, a leak, a constant": (_with_ids_and_leak(), "y", None),
}


def _whole(content: bytes, target: str, task: Task | None) -> tuple[object, list[dict[str, object]]]:
    dataset = validate(content, target, max_bytes=10**8, min_rows=50, task=task)
    findings = [*dataset.findings, *guardrails.evaluate(dataset.frame, target, (), dataset.schema.task)]
    return dataset, findings


def _streamed(content: bytes, target: str, task: Task | None, **sizes: int
              ) -> tuple[csv_stream.StreamedDataset, list[dict[str, object]]]:
    dataset = csv_stream.read(io.BytesIO(content), target, max_bytes=10**8, min_rows=50, task=task, **sizes)
    findings = [*dataset.findings,
                *guardrails.evaluate(dataset.sample, target, (), dataset.schema.task, dataset.counts)]
    return dataset, findings


@pytest.mark.parametrize("name", list(FILES))
@pytest.mark.parametrize("chunk_rows", [7, 100_000])
def test_chunks_find_what_the_whole_file_reader_finds(name: str, chunk_rows: int):
    content, target, task = FILES[name]
    whole, expected = _whole(content, target, task)
    streamed, found = _streamed(content, target, task, chunk_rows=chunk_rows)
    assert streamed.schema == whole.schema  # type: ignore[attr-defined]
    assert streamed.task == whole.task  # type: ignore[attr-defined]
    assert (streamed.rows, streamed.dropped_rows, streamed.delimiter, streamed.content_hash) == (
        whole.rows, whole.dropped_rows, whole.delimiter, whole.content_hash)  # type: ignore[attr-defined]
    assert found == expected
    # Every row fits the sample: it is the whole-file reader's frame, typed alike.
    pd.testing.assert_frame_equal(streamed.sample, whole.frame, check_dtype=False)  # type: ignore[attr-defined]


BAD: dict[str, bytes] = {
    "empty": b"",
    "blank": b"   \n\n",
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00",
    "latin-1": "age,y\n1,é\n".encode("latin-1"),
    "latin-1 with a BOM": b"\xef\xbb\xbf" + "age,y\n1,é\n".encode("latin-1"),
    "one column": b"just one column\nvalue\n",
    "header only": b"age,job,y\n",
    "duplicate names": b"age,age,y\n1,2,no\n",
    "an unnamed column with values": b"age,,y\n1,2,no\n",
    "no target": b"age,job\n1,2\n",
    "too few rows": _bank(20),
    "one class": b"a,y\n" + b"1,no\n" * 60,
    "rare class": _bank(100)[:-1] + b"\n1,x,x,x,x,x,x,x,x,x,1,1,1,1,x,1,1,1,1,1,maybe\n",
    "an entirely empty column": b"a,b,y\n" + b"1,,no\n2,,yes\n" * 40,
    "row names out of order": b",a,y\n" + b"".join(f"{i * 2},{i},{'yes' if i % 2 else 'no'}\n".encode()
                                                    for i in range(80)),
    "malformed": _bank(100) + b'1,2,"unclosed\n',
    "regression on labels": _bank(100),
}


@pytest.mark.parametrize("name", list(BAD))
def test_chunks_reject_what_the_whole_file_reader_rejects_with_its_reason(name: str):
    content = BAD[name]
    task = Task.REGRESSION if name == "regression on labels" else None
    with pytest.raises(DatasetRejected) as whole:
        validate(content, "y", max_bytes=10**8, min_rows=50, task=task)
    with pytest.raises(DatasetRejected) as streamed:
        csv_stream.read(io.BytesIO(content), "y", max_bytes=10**8, min_rows=50, task=task, chunk_rows=16)
    assert (streamed.value.code, streamed.value.reason) == (whole.value.code, whole.value.reason)


def test_beyond_the_sample_single_columns_stay_exact_and_row_checks_say_they_were_estimated():
    rows = sample_data.rows(3000, seed=4)
    for i, row in enumerate(rows):
        row["ref"] = f"R{i}"  # unique text: ID-like, even in a sample
        if i % 9 == 0:
            row["campaign"] = ""
    content = sample_data.to_csv(rows + rows[:300])  # 300 rows twice
    whole, expected = _whole(content, "y", None)
    streamed, found = _streamed(content, "y", None, chunk_rows=500, sample_rows=1000)
    assert len(streamed.sample) == 1000 and streamed.rows == 3300
    assert streamed.schema == whole.schema  # type: ignore[attr-defined]
    by_check: dict[str, Any] = {str(f["check"]): f for f in found}
    for check in ("class_balance", "missing_values"):
        assert by_check[check] == next(f for f in expected if f["check"] == check)
    assert by_check["id_like_columns"]["details"]["columns"] == ["ref"]
    assert "Estimated on 1,000 sampled rows" in str(by_check["id_like_columns"]["message"])
    duplicates = by_check["duplicate_rows"]
    assert "sampled rows" in str(duplicates["message"]) and 150 <= duplicates["details"]["rows"] <= 600


def test_the_sample_is_uniform_and_in_file_order():
    content = b"n,y\n" + b"".join(f"{i},{'yes' if i % 3 else 'no'}\n".encode() for i in range(20_000))
    streamed = csv_stream.read(io.BytesIO(content), "y", max_bytes=10**8, min_rows=50, chunk_rows=1000,
                               sample_rows=2000)
    picked = streamed.sample["n"].to_numpy()
    assert len(picked) == 2000 and (np.diff(picked) > 0).all()
    # Each tenth of the file holds about a tenth of the sample.
    per_tenth = np.bincount(picked // 2000, minlength=10)
    assert per_tenth.min() > 140 and per_tenth.max() < 260
