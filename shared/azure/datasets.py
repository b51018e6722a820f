"""Dataset versions as Azure ML Data assets over immutable copies in the versions container.

The asset's version is the content hash, so registering the same bytes twice
is a no-op; the sequence number the API shows (v1, v2, ...) is kept in a tag.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
from azure.core.exceptions import ResourceNotFoundError
from numpy.typing import NDArray

from shared import csv_stream
from shared.azure import entities, holdout
from shared.azure.blobstore import BlobStore
from shared.azure.config import AzureSettings
from shared.ports import DatasetRegistry, DatasetVersion
from shared.schema import Schema

DRIFT_BASELINE_FILE = "drift_baseline.json"  # beside the version's data: what its models' traffic is held against
MAX_COPY_BYTES = 1 << 40  # the upload was checked against its limit already; this only bounds the reader
COPY_CHUNK_ROWS = csv_stream.CHUNK_ROWS  # rows of the upload read at a time while it is copied


def to_version(data: Any) -> DatasetVersion:
    tags = dict(data.tags or {})
    created = getattr(getattr(data, "creation_context", None), "created_at", None)
    return DatasetVersion(
        name=tags.get("model", data.name), version=int(tags.get("sequence", "0")),
        content_hash=tags.get("content_hash", ""), rows=int(tags.get("rows", "0")),
        columns=int(tags.get("columns", "0")), schema=Schema.from_dict(json.loads(data.properties["schema"])),
        uri=str(data.path), source_uri=tags.get("source_uri", ""), created_at=str(created or ""),
        guardrails=tuple(json.loads(data.properties.get("guardrails", "[]"))),
        training_uri=_beside(str(data.path), holdout.TRAIN_FILE) if "holdout_rows" in tags else "",
        holdout_rows=int(tags.get("holdout_rows", "0") or 0))


def _split_csv(chunk: pd.DataFrame, held_out: NDArray[np.bool_], header: bool) -> tuple[str, str, str]:
    """The chunk as CSV text: all its rows, the training ones, the held-out ones. Rendered once, then split by
    line, unless a cell holds a line end (then one line is not one row, and each part is rendered on its own)."""
    head = chunk.iloc[:0].to_csv(index=False, lineterminator="\n") if header else ""
    multiline = any(chunk[name].str.contains(r"[\r\n]", regex=True).any() for name in chunk.columns)
    if multiline:
        whole, train, held = (head + part.to_csv(index=False, header=False, lineterminator="\n")
                              for part in (chunk, chunk[~held_out], chunk[held_out]))
        return whole, train, held
    body = chunk.to_csv(index=False, header=False, lineterminator="\n")
    lines = np.array(body.split("\n")[:-1], dtype=object)

    def joined(selected: NDArray[Any]) -> str:
        return head + "".join(line + "\n" for line in selected)

    return head + body, joined(lines[~held_out]), joined(lines[held_out])


def _frames(content: BinaryIO, schema: Schema) -> Iterator[pd.DataFrame]:
    return csv_stream.portable_frames(content, schema, max_bytes=MAX_COPY_BYTES, chunk_rows=COPY_CHUNK_ROWS)


def _beside(uri: str, name: str) -> str:
    return f"{uri.rsplit('/', 1)[0]}/{name}"


def holdout_path(version: DatasetVersion) -> str | None:
    """Where a version's held-out rows are in the versions container; None for a version without them."""
    if not version.training_uri:
        return None
    return f"{entities.dataset_folder(version.name, version.content_hash)}/{holdout.HOLDOUT_FILE}"


def held_out_rows(store: BlobStore, dataset: DatasetVersion, limit: int = holdout.COMPARED_ROWS
                  ) -> list[dict[str, str | None]]:
    """A dataset version's first ``limit`` held-out rows (of the first ``holdout.COMPARED_BYTES`` of them)."""
    path = holdout_path(dataset)
    data = store.read(path, holdout.COMPARED_BYTES) if path else None
    return list(holdout.rows(data, limit=limit)) if data is not None else []


class AzureDatasetRegistry(DatasetRegistry):
    keeps_drift_baseline = True  # an AutoML model carries no drift baseline: the app's monitor reads this one

    def __init__(self, ml: Any, store: BlobStore, settings: AzureSettings) -> None:
        self.ml = ml
        self.store = store
        self.settings = settings

    def register(self, name: str, content: BinaryIO, content_hash: str, schema: Schema, rows: int,
                 source_uri: str, guardrails: list[dict[str, Any]] | None = None,
                 baseline: dict[str, Any] | None = None) -> tuple[DatasetVersion, bool]:
        asset = entities.asset_name(name)
        try:
            return to_version(self.ml.data.get(asset, version=content_hash[:16])), False
        except ResourceNotFoundError:
            pass
        # The copy first: a Data asset never points at bytes that are not there yet. It is the upload as the
        # run's MLTable reads it (',' and UTF-8), whatever delimiter, BOM or decimal mark the upload had, written a
        # chunk of rows at a time; training reads train.csv, and the gate compares champion and challenger on
        # holdout.csv (``shared.azure.holdout``). Series are split by time windows, known once every row was
        # read: then the upload is read twice, from its first byte again (every caller hands a seekable stream).
        folder = entities.dataset_folder(name, content_hash)
        split = holdout.split_for(schema)
        if split.first_pass:
            for chunk in _frames(content, schema):
                split.learn(chunk)
            content.seek(0)
        held_count = 0
        with self.store.writer(f"{folder}/{entities.DATA_FILE}") as whole, \
                self.store.writer(f"{folder}/{holdout.TRAIN_FILE}") as train, \
                self.store.writer(f"{folder}/{holdout.HOLDOUT_FILE}") as held:
            for number, chunk in enumerate(_frames(content, schema)):
                held_out = split.held_out(chunk)
                held_count += int(held_out.sum())
                for sink, text in zip((whole, train, held), _split_csv(chunk, held_out, number == 0), strict=True):
                    sink.write(text.encode("utf-8"))
        if baseline is not None:
            self.store.put_once(f"{folder}/{DRIFT_BASELINE_FILE}", json.dumps(baseline).encode("utf-8"))
        sequence = 1 + max((v.version for v in self.list(name)), default=0)
        data = entities.data_asset(self.settings, name, sequence, content_hash, rows, len(schema.columns),
                                   source_uri, json.dumps(schema.to_dict(), separators=(",", ":")))
        data.tags = {**(data.tags or {}), "holdout_rows": str(held_count)}
        data.properties["guardrails"] = json.dumps(guardrails or [], separators=(",", ":"))
        return to_version(self.ml.data.create_or_update(data)), True

    def drift_baseline(self, version: DatasetVersion) -> dict[str, Any] | None:
        found = self.store.read(f"{entities.dataset_folder(version.name, version.content_hash)}/{DRIFT_BASELINE_FILE}")
        return dict(json.loads(found)) if found else None

    def get(self, name: str, version: int | None = None) -> DatasetVersion | None:
        versions = self.list(name)
        if version is None:
            return versions[0] if versions else None
        return next((v for v in versions if v.version == version), None)

    def list(self, name: str | None = None) -> list[DatasetVersion]:
        found = [to_version(d) for d in entities.app_assets(self.ml.data, name)]
        return sorted(found, key=lambda v: (v.name, -v.version))
