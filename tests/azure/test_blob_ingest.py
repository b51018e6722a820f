"""The Azure ingest over a real blob service (Azurite): the upload is read a range at a time through the BlobClient
the trigger hands over, and its dataset version is written a block at a time; nothing holds the whole file."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from azure.storage.blob import BlobServiceClient

from cli import sample_data
from shared import csv_stream
from shared.azure import blobstore, holdout
from shared.azure.blobstore import ContainerStore
from shared.azure.config import AzureSettings
from shared.azure.dry_run import InMemoryQueue, InMemoryRecords, InMemoryRunMetrics, InMemoryWorkspace
from shared.azure.wiring import assemble
from shared.blob_stream import BlobRangeReader, blob_stream
from shared.dataset_validation import portable_csv, validate
from shared.ingest import Upload, ingest
from shared.settings import Settings


class CountingBlob:
    """The real BlobClient, with every download it is asked for kept (offset and length)."""

    def __init__(self, blob: Any) -> None:
        self.blob = blob
        self.downloads: list[tuple[int | None, int | None]] = []

    def download_blob(self, offset: int | None = None, length: int | None = None, **kwargs: Any) -> Any:
        self.downloads.append((offset, length))
        return self.blob.download_blob(offset=offset, length=length, **kwargs)


def big_csv(rows: int) -> bytes:
    one = sample_data.to_csv(sample_data.rows(2000, seed=3))
    header, body = one.split(b"\n", 1)
    return header + b"\n" + body * (rows // 2000)


def azure_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blob_service: BlobServiceClient,
                  max_mb: int = 200) -> tuple[Any, Settings, Any]:
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path / "unused"))
    monkeypatch.setenv("MAX_UPLOAD_MB", str(max_mb))
    settings = Settings.from_env()
    versions = blob_service.create_container("dataset-versions")
    workspace = InMemoryWorkspace()
    backend = assemble(settings, AzureSettings.example(), workspace, ContainerStore(versions), InMemoryRecords(),
                       credential=None, queue=InMemoryQueue(), run_metrics=InMemoryRunMetrics(workspace))
    return backend, settings, versions


def test_the_upload_is_read_in_ranges_and_copied_in_blocks_never_whole(tmp_path: Path, monkeypatch, blob_service):
    backend, settings, versions = azure_backend(tmp_path, monkeypatch, blob_service)
    content = big_csv(120_000)  # about 13 MB: more than three ranges
    uploads = blob_service.create_container("datasets")
    uploads.upload_blob("bank/big.csv", content)
    client = uploads.get_blob_client("bank/big.csv")
    properties = client.get_blob_properties()
    counting = CountingBlob(client)
    monkeypatch.setattr(blobstore, "BLOCK_BYTES", 1 << 20)  # several blocks per copy
    stream = blob_stream(counting, properties.size, properties.etag, range_bytes=1 << 20)
    outcome = ingest(Upload("bank/big.csv", client.url, stream, {}, properties.etag.strip('"')), backend, settings)
    assert outcome.state == "training", outcome
    assert counting.downloads and all(length is not None and length <= 1 << 20 for _, length in counting.downloads)
    assert sum(length or 0 for _, length in counting.downloads) == 2 * len(content)  # checked, then copied
    copied = {b.name.rsplit("/", 1)[-1]: b.name for b in versions.list_blobs(name_starts_with="bank/")}
    assert set(copied) == {"data.csv", "train.csv", "holdout.csv", "drift_baseline.json"}
    blocks = versions.get_blob_client(copied["data.csv"]).get_block_list("committed")[0]
    assert len(blocks) > 1
    whole = versions.download_blob(copied["data.csv"]).readall()
    assert whole == portable_csv(content, "y")  # a clean comma file: the same bytes as the whole-file copy
    train = versions.download_blob(copied["train.csv"]).readall().split(b"\n")
    held = versions.download_blob(copied["holdout.csv"]).readall().split(b"\n")
    assert len(train) + len(held) - 4 == len(whole.split(b"\n")) - 2  # every row once, two headers
    assert 0.07 < (len(held) - 2) / (len(whole.split(b"\n")) - 2) < 0.13


def test_an_upload_over_the_limit_is_rejected_by_its_size_before_a_byte_is_read(tmp_path: Path, monkeypatch,
                                                                                blob_service):
    backend, settings, _ = azure_backend(tmp_path, monkeypatch, blob_service, max_mb=1)
    uploads = blob_service.create_container("datasets")
    uploads.upload_blob("bank/large.csv", big_csv(20_000))  # about 2 MB
    client = uploads.get_blob_client("bank/large.csv")
    properties = client.get_blob_properties()
    counting = CountingBlob(client)
    outcome = ingest(Upload("bank/large.csv", client.url, blob_stream(counting, properties.size, properties.etag),
                            {}, "e1"), backend, settings)
    assert outcome.state == "rejected" and "too large" in str(outcome.reason)
    assert counting.downloads == []
    assert backend.uploads.get("bank/large.csv@e1")["state"] == "rejected"


def test_a_blob_overwritten_while_it_is_read_fails_the_read_rather_than_mixing_two_files(blob_service):
    from azure.core.exceptions import ResourceModifiedError

    uploads = blob_service.create_container("datasets")
    uploads.upload_blob("bank/jan.csv", b"a,b\n" * 1000)
    client = uploads.get_blob_client("bank/jan.csv")
    properties = client.get_blob_properties()
    reader = BlobRangeReader(client, properties.size, properties.etag, range_bytes=1000)
    assert reader.read(1000) == (b"a,b\n" * 250)
    uploads.upload_blob("bank/jan.csv", b"c,d\n" * 1000, overwrite=True)
    with pytest.raises(ResourceModifiedError):
        reader.read(1000)


def rows_of(header: str, row: str, count: int = 24) -> str:
    """A small file: ``row`` with ``{i}`` (a number) and ``{y}`` (a class, or once missing) filled per line."""
    lines = [row.format(i=i, d=i % 7, y="" if i == 5 else ("no", "yes")[i % 2]) for i in range(count)]
    return header + "\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize("text", [
    rows_of("age;balance;y", "{i};1,{d}5;{y}"),  # ';' with decimal commas
    rows_of("\ufeffid,age,job,y", '{i},3{d},"tech, {d}",{y}'),  # a BOM, quoted delimiters
    rows_of(",age,y", "{i},{d},{y}"),  # row numbers without a header name
    rows_of("age,job,y", "{i},?,{y}").replace("?", "admin.", 12),  # '?' as missing in half the rows
])
def test_the_copy_in_chunks_reads_as_the_whole_file_copy(text: str):
    content = text.encode("utf-8")
    schema = validate(content, "y", min_rows=1, max_bytes=1 << 20).schema
    chunks = list(csv_stream.portable_frames(io.BytesIO(content), schema, max_bytes=1 << 20, chunk_rows=1))
    streamed = pd.concat(chunks)
    whole = pd.read_csv(io.BytesIO(portable_csv(content, "y")), dtype=str, keep_default_na=False)
    assert list(streamed.columns) == list(whole.columns)
    assert len(streamed) == len(whole)
    for name in whole.columns:  # the same values, numbers compared as numbers (1,5 is written 1.5 or 1.50)
        left = pd.to_numeric(streamed[name].fillna(""), errors="coerce")
        right = pd.to_numeric(whole[name], errors="coerce")
        if right.notna().all() and len(right):
            assert left.tolist() == right.tolist()
        else:
            assert streamed[name].fillna("").tolist() == whole[name].tolist()


def test_the_same_row_is_held_out_in_every_version_and_the_share_is_a_tenth():
    frame = pd.DataFrame({"a": [str(i) for i in range(20_000)], "y": ["no", "yes"] * 10_000})
    first = holdout.held_out_rows(frame)
    again = holdout.held_out_rows(frame.iloc[::-1]).tolist()[::-1]  # the same rows in another order
    assert first.tolist() == again
    assert 0.09 < first.mean() < 0.11


def test_an_earlier_write_of_the_same_copy_is_kept(blob_service):
    store = ContainerStore(blob_service.create_container("dataset-versions"))
    with store.writer("bank/abc/data.csv") as sink:
        sink.write(b"first")
    with store.writer("bank/abc/data.csv") as sink:
        sink.write(b"second")
    assert store.read("bank/abc/data.csv") == b"first"
    assert store.read("bank/abc/data.csv", 3) == b"fir"
    assert store.read("bank/none.csv") is None



def test_rows_with_a_line_end_in_a_cell_are_split_whole(stack):
    """One line is not one row when a quoted cell holds a line end: the split still keeps each row whole."""
    text = rows_of("note,age,y", '"line one\nline {d}",{i},{y}', count=400)
    stack.upload(text.encode("utf-8"), path="notes/jan.csv")
    files = {path.rsplit("/", 1)[-1]: pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)
             for path, body in stack.store.blobs.items() if path.startswith("notes/")}
    whole, train, held = files["data.csv"], files["train.csv"], files["holdout.csv"]
    assert len(held) > 0 and len(train) + len(held) == len(whole) == 399  # one row has no target
    assert sorted(map(tuple, pd.concat([train, held]).to_numpy())) == sorted(map(tuple, whole.to_numpy()))
    assert all("\n" in note for note in whole["note"])
