from __future__ import annotations

import pytest

from cli import sample_data
from shared.dataset_validation import validate
from shared.errors import BadRequest, DatasetRejected

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


def frame_rows(count: int = 120) -> list[dict[str, object]]:
    return sample_data.rows(count, seed=5)


def test_a_leading_row_name_column_is_recognised_and_left_out():
    rows = frame_rows()
    pandas_style = sample_data.to_csv([{"": index, **row} for index, row in enumerate(rows)])
    r_style = sample_data.to_csv([{"": str(index + 1), **row} for index, row in enumerate(rows)])
    names = sample_data.to_csv([{"": f"row {index}", **row} for index, row in enumerate(rows)])
    for content in (pandas_style, r_style, names):
        dataset = check(content)
        assert list(dataset.frame.columns) == list(rows[0])  # the file's own columns, the row names left out
        assert [f["check"] for f in dataset.findings] == ["row_names"]
    repeated = sample_data.to_csv([{"": index % 7, **row} for index, row in enumerate(rows)])
    assert rejected(repeated).code == "unnamed_column"  # not row numbers: a real column without a name


def test_a_delimiter_at_the_end_of_every_line_adds_no_column():
    rows = frame_rows()
    plain = sample_data.to_csv(rows).decode().splitlines()
    trailing = "\n".join(line + "," for line in plain).encode()
    dataset = check(trailing)
    assert list(dataset.frame.columns) == list(rows[0]) and dataset.rows == len(rows)
    assert [f["check"] for f in dataset.findings] == ["empty_unnamed_columns"]
    indexed = sample_data.to_csv([{"": index, **row} for index, row in enumerate(rows)]).decode().splitlines()
    both = check("\n".join(line + "," for line in indexed).encode())  # row names in front, an empty column behind
    assert list(both.frame.columns) == list(rows[0])
    assert [f["check"] for f in both.findings] == ["empty_unnamed_columns", "row_names"]
    filled = "\n".join(line + ("," if i == 0 else ",x") for i, line in enumerate(plain)).encode()
    error = rejected(filled)
    assert error.code == "unnamed_column" and f"column {len(rows[0]) + 1} " in error.reason


def test_na_nan_empty_and_question_marks_are_missing_and_true_false_columns_are_booleans():
    rows = frame_rows()
    for index, row in enumerate(rows):
        row["age"] = ("NA", "NaN", "", "?", row["age"])[index % 5]
        row["owner"] = ("TRUE", "False", "true", "?")[index % 4]
    dataset = check(sample_data.to_csv(rows))
    assert dataset.schema.column("age").kind == "integer" or dataset.schema.column("age").kind == "number"
    assert dataset.frame["age"].isna().sum() == 96 and dataset.schema.column("age").missing == 96
    owner = dataset.schema.column("owner")
    assert owner.kind == "boolean" and owner.is_numeric and owner.missing == 30
    assert set(dataset.frame["owner"].dropna()) == {0.0, 1.0}
    assert dataset.frame["owner"].iloc[:3].tolist() == [1.0, 0.0, 1.0]


def test_boolean_columns_take_json_booleans_their_words_and_ones_and_zeros_when_scoring():
    from shared.model_contract import ModelSignature, columns_from_frame
    from shared.schema import Column
    from shared.scoring import columns_for

    signature = ModelSignature((Column("owner", "boolean"),), "y", ("no", "yes"))
    columns, _ = columns_for([{"owner": True}, {"owner": "FALSE"}, {"owner": 1}, {"owner": None}], signature)
    assert columns["owner"].reshape(-1).tolist()[:3] == [1.0, 0.0, 1.0]
    with pytest.raises(BadRequest) as refused:
        columns_for([{"owner": "yes"}, {"owner": 2}], signature)
    assert [d["row"] for d in refused.value.details] == [0, 1]
    import pandas as pd

    batch = columns_from_frame(pd.DataFrame({"owner": ["True", "false", None]}), signature)
    assert batch["owner"].reshape(-1)[:2].tolist() == [1.0, 0.0]
