"""Uploads of any size: read a chunk at a time from a stream or a path, bad ones refused as soon as a chunk shows
it, and nothing lost (the upload keeps its record, production keeps serving)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from cli import sample_data
from shared import csv_stream
from shared.errors import DatasetRejected
from shared.ingest import Upload, ingest
from shared.local.datasets import LocalDatasetRegistry
from shared.promotion import RUN_COMPLETED, handle_run_completed
from shared.settings import Settings
from tests.unit.fakes import MemoryStack, memory_stack

MiB = 1 << 20


class Generated(io.RawIOBase):
    """A file of ``size`` bytes made on demand from ``head`` and a repeated ``body``, which counts the bytes read:
    a big upload without a big buffer, and a witness of how much of it was read."""

    def __init__(self, size: int, body: bytes, head: bytes = b"") -> None:
        super().__init__()
        self.size, self.head, self.body = size, head, body
        self.position = self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self.position = {os.SEEK_SET: offset, os.SEEK_CUR: self.position + offset, os.SEEK_END: self.size + offset}[
            whence]
        return self.position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self.size - self.position)
        out = bytearray()
        while len(out) < count:
            at = self.position + len(out)
            if at < len(self.head):
                out += self.head[at:at + count - len(out)]
            else:
                offset = (at - len(self.head)) % len(self.body)
                out += self.body[offset:offset + count - len(out)]
        buffer[:count] = out[:count]
        self.position += count
        self.bytes_read += count
        return count


@pytest.fixture()
def stack() -> MemoryStack:
    return memory_stack()


@pytest.fixture()
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MIN_ROWS", "50")
    monkeypatch.setenv("MAX_UPLOAD_MB", "100")
    return Settings.from_env()


def _serving(stack: MemoryStack, settings: Settings) -> None:
    """A model in production for ``bank``, as a first good upload leaves it."""
    run_id = ingest(Upload("bank/jan.csv", "memory://bank/jan.csv", sample_data.to_csv(sample_data.rows(120)), {},
                           '"1"'), stack.backend, settings).run_id or ""
    run = stack.pipeline.complete(run_id, 0.9)
    handle_run_completed(RUN_COMPLETED, {"runId": run.run_id, "experimentName": run.model_name,
                                         "runTags": {"app": "csv-to-endpoint"}}, stack.backend)
    stack.queue.drain(stack.backend)
    assert stack.deployer.production("bank").version == "1"  # type: ignore[union-attr]


def _refused(stack: MemoryStack, settings: Settings, content: io.RawIOBase | bytes, etag: str) -> dict[str, object]:
    """Drop ``content``: it is rejected, keeps its record with the reason, and production still serves v1."""
    upload = Upload("bank/big.csv", "memory://bank/big.csv", content, {}, etag)  # type: ignore[arg-type]
    outcome = ingest(upload, stack.backend, settings)
    assert outcome.state == "rejected" and outcome.reason
    record = stack.backend.uploads.get(upload.upload_id)
    assert record is not None and record["state"] == "rejected" and record["reason"] == outcome.reason
    assert stack.deployer.production("bank").version == "1"  # type: ignore[union-attr]
    assert [v.version for v in stack.datasets.list("bank")] == [1]
    return record


def test_garbage_is_rejected_from_its_first_chunk(stack: MemoryStack, settings: Settings):
    _serving(stack, settings)
    binary = Generated(90 * MiB, bytes(range(256)))
    assert "binary data" in str(_refused(stack, settings, binary, '"bin"')["reason"])
    not_utf8 = Generated(90 * MiB, bytes(range(128, 256)))
    assert "not UTF-8" in str(_refused(stack, settings, not_utf8, '"latin"')["reason"])
    prose = Generated(90 * MiB, b"lorem ipsum dolor sit amet\n")
    assert "single column" in str(_refused(stack, settings, prose, '"prose"')["reason"])
    for stream in (binary, not_utf8):
        assert stream.bytes_read <= csv_stream.READ_BYTES
    assert prose.bytes_read <= 2 * csv_stream.READ_BYTES


def test_a_file_over_the_limit_is_rejected_by_its_size_before_a_byte_is_read(stack: MemoryStack,
                                                                             settings: Settings):
    _serving(stack, settings)
    huge = Generated(2 * 1024 * MiB, b"1,no\n", head=b"a,y\n")
    record = _refused(stack, settings, huge, '"huge"')
    assert "too large" in str(record["reason"]) and huge.bytes_read == 0
    assert "(MAX_UPLOAD_MB)" in str(record["reason"])  # the reason says where the limit comes from


def test_a_stream_that_outgrows_the_limit_is_stopped_there():
    stream = Generated(8 * MiB, b"1,no\n2,yes\n", head=b"a,y\n")
    with pytest.raises(DatasetRejected) as error:
        csv_stream.read(stream, "y", max_bytes=3 * MiB, min_rows=50)  # type: ignore[arg-type]
    assert error.value.code == "too_large" and stream.bytes_read <= 3 * MiB + csv_stream.READ_BYTES


def test_a_file_cut_off_mid_line_is_rejected_and_says_so(stack: MemoryStack, settings: Settings):
    _serving(stack, settings)
    whole = sample_data.to_csv(sample_data.rows(3000, seed=2))
    cut = whole[:len(whole) - 40]  # the last row loses its end, and its line end
    record = _refused(stack, settings, cut, '"cut"')
    assert record["details"]["code"] == "truncated"  # type: ignore[index]
    assert "cut off" in str(record["reason"]) and "of 21 fields" in str(record["reason"])
    inside_quotes = whole + b'45,"admin'
    assert "well-formed" in str(_refused(stack, settings, inside_quotes, '"quote"')["reason"])


def test_a_short_last_row_with_its_line_end_is_read_as_missing_values():
    content = sample_data.to_csv(sample_data.rows(100)) + b"33,admin.\n"
    dataset = csv_stream.read(io.BytesIO(content), "y", max_bytes=10 * MiB, min_rows=50)
    assert dataset.rows == 100 and dataset.dropped_rows == 1


def test_a_column_count_that_changes_far_into_the_file_is_rejected_naming_the_line(stack: MemoryStack,
                                                                                   settings: Settings):
    _serving(stack, settings)
    rows = sample_data.rows(1000, seed=3)
    good = sample_data.to_csv(rows)
    header, _, body = good.partition(b"\n")
    repeats = 30  # 30,000 rows: many chunks before the bad line
    extra = body.splitlines()[0] + b",surplus\n"
    content = header + b"\n" + body * repeats + extra + body
    stream = Generated(len(content), b"\n", head=content)
    record = _refused(stack, settings, stream, '"shift"')
    assert f"line {repeats * 1000 + 2}" in str(record["reason"]) and "saw 22" in str(record["reason"])
    assert stream.bytes_read >= len(header + body * repeats)  # found where it is, after the chunks before it


def test_an_upload_given_as_a_path_or_a_stream_is_read_in_chunks_and_copied_whole(tmp_path: Path,
                                                                               stack: MemoryStack,
                                                                               settings: Settings):
    content = sample_data.to_csv(sample_data.rows(300, seed=8))
    path = tmp_path / "jan.csv"
    path.write_bytes(content)
    from_path = Upload("bank/jan.csv", "file://jan.csv", path, {}, '"p"')
    from_stream = Upload("bank/copy.csv", "memory://copy.csv", io.BytesIO(content), {}, '"s"')
    assert from_path.size == from_stream.size == len(content)
    assert ingest(from_path, stack.backend, settings).state == "training"
    assert ingest(from_stream, stack.backend, settings).state == "duplicate"  # the same bytes, read alike
    registry = LocalDatasetRegistry(tmp_path / "state")
    with from_stream.open() as source:
        version, created = registry.register("bank", source, "h" * 64, stack.datasets.list("bank")[0].schema,
                                             300, "memory://copy.csv")
    assert created and Path(version.uri.removeprefix("file://")).read_bytes() == content
