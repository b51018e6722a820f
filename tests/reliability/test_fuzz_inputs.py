"""Fuzzed uploads and blob names: a clear rejection or a valid dataset, never a crash, never a path outside."""

from __future__ import annotations

import io
import os
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli import sample_data
from shared import csv_stream, naming
from shared.dataset_validation import validate
from shared.errors import DatasetRejected
from shared.local.datasets import LocalDatasetRegistry

pytestmark = pytest.mark.reliability
GOOD_ROWS = sample_data.rows(60)
HEADER = list(GOOD_ROWS[0])
# Fixed seeds in `make test` (a CI run is reproducible); FUZZ_RANDOM=1 explores new cases each run.
RANDOM = os.environ.get("FUZZ_RANDOM") == "1"
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=not RANDOM, database=None)


def outcome(content: bytes) -> str:
    """``ok`` or ``rejected``, the same for the whole-file reader and ingest's reader in chunks; anything else (an
    unexpected exception) fails the test."""
    try:
        streamed = csv_stream.read(io.BytesIO(content), "y", max_bytes=2_000_000, min_rows=50, chunk_rows=16)
    except DatasetRejected as rejected:
        assert rejected.reason.strip() and rejected.code, "a rejection must say why"
        streamed = None
    try:
        dataset = validate(content, "y", max_bytes=2_000_000, min_rows=50)
    except DatasetRejected as rejected:
        assert rejected.reason.strip() and rejected.code, "a rejection must say why"
        assert streamed is None, f"read in chunks, it was accepted; whole, rejected: {rejected.reason}"
        return "rejected"
    assert streamed is not None, "read whole, it was accepted; in chunks, rejected"
    assert dataset.rows >= 50 and "y" in {c.name for c in dataset.schema.columns}
    assert (streamed.rows, streamed.schema.task) == (dataset.rows, dataset.schema.task)
    return "ok"


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(content: bytes):
    outcome(content)


cell = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["=HYPERLINK(\"http://x\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\u202e", "\x00",
                     "\"unclosed", "a,b", "1e309", "NaN", "-0", ""]),
    st.integers(min_value=-10**20, max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@FUZZ
@given(st.lists(st.lists(cell, min_size=0, max_size=len(HEADER) + 3), min_size=0, max_size=80),
       st.sampled_from(["utf-8", "utf-16", "latin-1", "cp1252"]), st.sampled_from([",", ";", "\t", "|"]))
def test_ragged_rows_odd_cells_and_encodings(rows: list[list[str]], encoding: str, delimiter: str):
    lines = [delimiter.join(HEADER)] + [delimiter.join(r) for r in rows]
    outcome("\n".join(lines).encode(encoding, errors="replace"))


@FUZZ
@given(st.integers(min_value=0, max_value=len(GOOD_ROWS) - 1), st.integers(min_value=0, max_value=len(HEADER) - 1),
       st.sampled_from(["=1+1", "x" * 100_000, "", "\"", "😀" * 50, "1;2;3", "\r\n"]))
def test_one_bad_cell_in_a_good_file(row: int, column: int, value: str):
    rows = [dict(r) for r in GOOD_ROWS]
    rows[row][HEADER[column]] = value
    outcome(sample_data.to_csv(rows))


def test_a_million_column_header_and_huge_fields_are_refused_quickly():
    wide = (",".join(f"c{i}" for i in range(1_000_000)) + ",y\n").encode()
    assert outcome(wide + b"1," * 10 + b"\n") == "rejected"
    huge = b"a,y\n" + (b"x" * 3_000_000) + b",yes\n"
    assert outcome(huge) == "rejected"


names = st.one_of(
    st.text(alphabet=string.printable + "é漢😀/\\.%", max_size=300),
    st.builds(lambda a, b: f"{a}/{b}", st.sampled_from(["..", ".", "", "%2e%2e", "a%2Fb", "..\\..", "~", "bank"]),
              st.text(max_size=40)),
    st.sampled_from(["../../etc/passwd.csv", "bank/../../x.csv", "/abs/path.csv", "bank%2F..%2F..%2Fx.csv",
                     "a" * 1024 + ".csv", "ba\x00nk/x.csv", "bänk/x.csv", "..csv", ".hidden/x.csv"]),
)


@FUZZ
@given(names)
def test_blob_names_give_a_safe_model_name_or_a_clear_rejection(blob_path: str):
    try:
        name = naming.model_name_for(blob_path)
    except DatasetRejected as rejected:
        assert rejected.code == "bad_name"
        return
    assert name not in (".", "..") and "/" not in name and "\\" not in name and "\x00" not in name
    assert 1 <= len(name) <= 64 and name[0].isalnum() and name.isascii()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          derandomize=not RANDOM, database=None)
@given(names)
def test_no_write_lands_outside_the_registry_folder(tmp_path: Path, blob_path: str):
    try:
        name = naming.model_name_for(blob_path)
    except DatasetRejected:
        return
    content = sample_data.to_csv(GOOD_ROWS)
    dataset = validate(content, "y", max_bytes=10_000_000, min_rows=50)
    version, _ = LocalDatasetRegistry(tmp_path).register(name, io.BytesIO(content), dataset.content_hash,
                                                         dataset.schema, dataset.rows, blob_path)
    written = Path(version.uri.removeprefix("file://")).resolve()
    assert written.is_relative_to((tmp_path / "datasets").resolve())
