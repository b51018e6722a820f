from __future__ import annotations

import pytest

from cli import sample_data
from shared.dataset_validation import validate
from shared.errors import DatasetRejected

GOOD = sample_data.to_csv(sample_data.rows(200))


def check(content: bytes, target: str = "y", max_bytes: int = 10_000_000, min_rows: int = 50):
    return validate(content, target, max_bytes=max_bytes, min_rows=min_rows)


def rejected(content: bytes, **kwargs) -> DatasetRejected:
    with pytest.raises(DatasetRejected) as caught:
        check(content, **kwargs)
    return caught.value


def test_a_good_file_gives_schema_counts_and_hash():
    dataset = check(GOOD)
    assert dataset.rows == 200
    assert dataset.delimiter == ","
    assert dataset.schema.column("age").kind == "integer"
    assert dataset.schema.column("euribor3m").kind == "number"
    job = dataset.schema.column("job")
    assert job.kind == "string" and set(job.categories) <= set(sample_data.CATEGORIES["job"])
    assert len(dataset.content_hash) == 64


def test_semicolons_bom_quotes_and_decimal_points():
    rows = sample_data.rows(120)
    rows[0]["job"] = "admin; with a semicolon"
    content = b"\xef\xbb\xbf" + sample_data.to_csv(rows, delimiter=";")
    dataset = check(content)
    assert dataset.delimiter == ";"
    assert dataset.schema.columns[0].name == next(iter(rows[0]))  # the BOM is not part of the first name
    assert not any("\ufeff" in c.name for c in dataset.schema.columns)
    assert dataset.frame.loc[0, "job"] == "admin; with a semicolon"
    assert dataset.schema.column("cons.price.idx").kind == "number"


@pytest.mark.parametrize(
    ("content", "code", "words"),
    [
        (b"", "empty", "empty"),
        (b"   \n\n", "empty", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "not_csv", "binary"),
        ("age,y\n1,é\n".encode("latin-1"), "encoding", "UTF-8"),
        (b"just one column\nvalue\n", "not_csv", "single column"),
        (b"age,job,y\n", "header_only", "no data rows"),
        (b"age,age,y\n1,2,no\n", "duplicate_columns", "age"),
        (b"age,,y\n1,2,no\n", "unnamed_column", "column 2"),
    ],
)
def test_each_bad_shape_has_its_reason(content, code, words):
    error = rejected(content)
    assert error.code == code
    assert words in error.reason


def test_target_missing_names_the_columns():
    error = rejected(GOOD, target="outcome")
    assert error.code == "target_missing"
    assert "'outcome'" in error.reason and "age" in error.reason


def test_one_class_only():
    rows = sample_data.rows(100)
    for row in rows:
        row["y"] = "no"
    error = rejected(sample_data.to_csv(rows))
    assert error.code == "one_class" and "'no'" in error.reason


def test_too_few_rows():
    error = rejected(sample_data.to_csv(sample_data.rows(49)))
    assert error.code == "too_few_rows" and "49" in error.reason


def test_a_column_entirely_empty():
    rows = sample_data.rows(100)
    for row in rows:
        row["campaign"] = ""
    error = rejected(sample_data.to_csv(rows))
    assert error.code == "empty_column" and "campaign" in error.reason


def test_over_the_size_limit():
    error = rejected(GOOD, max_bytes=1000)
    assert error.code == "too_large" and "1,000" in error.reason


def test_ragged_rows_are_malformed():
    content = GOOD + b"1,2,3\n" + b"x," * 40 + b"\n"
    error = rejected(content)
    assert error.code == "malformed"


def test_rows_without_a_target_are_dropped_and_counted():
    rows = sample_data.rows(120)
    rows[5]["y"] = ""
    dataset = check(sample_data.to_csv(rows))
    assert (dataset.rows, dataset.dropped_rows) == (119, 1)


def test_a_rare_class_is_rejected_with_counts():
    rows = sample_data.rows(120)
    rows[0]["y"] = "maybe"
    error = rejected(sample_data.to_csv(rows))
    assert error.code == "rare_class" and "'maybe' (1)" in error.reason
