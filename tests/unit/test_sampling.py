"""A big dataset version read back for training a chunk at a time: typed as the whole-file reader types it, a
sample that keeps every class, and every row as the model's inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli import sample_data
from shared.dataset_validation import validate
from shared.local import automl, sampling
from tests.unit.test_csv_stream import FILES


def _stored(tmp_path: Path, content: bytes, target: str, task=None) -> tuple[sampling.StoredRows, pd.DataFrame]:
    whole = validate(content, target, max_bytes=10**8, min_rows=50, task=task)
    path = tmp_path / "version.csv"
    path.write_bytes(content)
    return sampling.StoredRows(path, whole.schema), whole.frame


@pytest.mark.parametrize("name", list(FILES))
@pytest.mark.parametrize("chunk_rows", [7, 100_000])
def test_rows_read_in_chunks_are_typed_as_the_whole_file_reader_types_them(name: str, chunk_rows: int,
                                                                           tmp_path: Path, monkeypatch):
    monkeypatch.setattr(sampling, "CHUNK_ROWS", chunk_rows)
    content, target, task = FILES[name]
    stored, frame = _stored(tmp_path, content, target, task)
    everything = stored.sample(size=10**6)  # a sample bigger than the file: every labelled row
    assert stored.rows == len(frame)
    pd.testing.assert_frame_equal(everything, frame, check_dtype=False)


@pytest.mark.parametrize("name", ["bank", "bank semicolons with a BOM", "homes (regression)", "class codes with gaps",
                                  "row names", "decimal comma features"])
def test_every_row_becomes_the_model_inputs_the_whole_frame_gives(name: str, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(sampling, "CHUNK_ROWS", 13)
    content, target, task = FILES[name]
    stored, frame = _stored(tmp_path, content, target, task)
    stored.sample(size=10)  # counts the rows, as a run does before its refit
    schema = stored.schema
    prep = automl.preprocessor(schema).fit(automl.feature_frame(frame, schema))
    x, y = stored.features(lambda part: prep.transform(automl.feature_frame(part, schema)).astype(np.float32),
                           lambda part: part[target].to_numpy())
    np.testing.assert_array_equal(x, prep.transform(automl.feature_frame(frame, schema)).astype(np.float32))
    np.testing.assert_array_equal(y, frame[target].to_numpy())


def test_the_sample_is_uniform_keeps_every_class_and_is_the_same_each_time(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(sampling, "CHUNK_ROWS", 700)
    rows = sample_data.rows(6000, seed=4)
    for i, row in enumerate(rows):
        row["y"] = "rare" if i % 500 == 0 else row["y"]  # 12 rows in 6,000
        row["campaign"] = i  # a row number, to see the order
    stored, frame = _stored(tmp_path, sample_data.to_csv(rows), "y")
    sample = stored.sample(size=600, floor=10)
    assert stored.rows == 6000
    counts = sample["y"].value_counts()
    assert counts["rare"] >= 10  # a uniform sample would keep about one
    assert 600 <= len(sample) <= 610
    assert sample["campaign"].is_monotonic_increasing  # in file order
    share = (frame["y"] == "yes").mean()
    assert abs((sample["y"] == "yes").mean() - share) < 0.06
    pd.testing.assert_frame_equal(stored.sample(size=600, floor=10), sample)  # the same file, the same sample


def test_a_label_that_is_not_one_of_the_classes_is_an_error(tmp_path: Path):
    stored, _ = _stored(tmp_path, FILES["bank"][0], "y")
    stored.path.write_bytes(FILES["bank"][0].replace(b",no\n", b",maybe\n", 1))
    with pytest.raises(ValueError, match="'maybe' is not one of the dataset's classes"):
        stored.sample(size=10)
