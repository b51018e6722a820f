"""The little the Azure backend keeps in storage itself: immutable dataset copies, run tables and hold-out rows.

Large files are written a block at a time and committed once, only if the blob
is not there yet, so no path holds a whole upload and a repeated write changes
nothing.
"""

from __future__ import annotations

import abc
import base64
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Protocol

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobBlock, ContainerClient

BLOCK_BYTES = 4 << 20  # one staged block


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...


class BlobStore(abc.ABC):
    @abc.abstractmethod
    def put_once(self, path: str, data: bytes) -> bool:
        """Write ``path`` unless it exists (content-addressed paths never change); True if written."""

    @abc.abstractmethod
    def replace(self, path: str, data: bytes) -> None:
        """Write ``path``, over what was there (a report, rewritten when its run's decision changes)."""

    @abc.abstractmethod
    def read(self, path: str, limit: int | None = None) -> bytes | None:
        """The blob's bytes (its first ``limit`` bytes), or None when there is none."""

    @abc.abstractmethod
    @contextmanager
    def writer(self, path: str) -> Iterator[Sink]:
        """Write ``path`` in pieces, committed at the end unless it exists by then (as ``put_once``)."""


class ContainerStore(BlobStore):
    def __init__(self, container: ContainerClient) -> None:
        self.container = container

    def put_once(self, path: str, data: bytes) -> bool:
        try:
            # If-None-Match: * makes the write conditional, so concurrent uploads of one file write it once.
            self.container.upload_blob(path, data, overwrite=False)
        except ResourceExistsError:
            return False
        return True

    def replace(self, path: str, data: bytes) -> None:
        self.container.upload_blob(path, data, overwrite=True)

    def read(self, path: str, limit: int | None = None) -> bytes | None:
        try:
            return bytes(self.container.download_blob(path, offset=0 if limit else None, length=limit).readall())
        except ResourceNotFoundError:
            return None
        except HttpResponseError as error:  # a range of an empty blob: there is nothing to read
            if getattr(error, "error_code", None) != "InvalidRange":
                raise
            return b""

    @contextmanager
    def writer(self, path: str) -> Iterator[Sink]:
        blob = self.container.get_blob_client(path)
        blocks: list[BlobBlock] = []
        pending = bytearray()

        def stage() -> None:
            block_id = base64.b64encode(f"{len(blocks):08d}".encode()).decode()
            blob.stage_block(block_id, bytes(pending))
            blocks.append(BlobBlock(block_id=block_id))
            pending.clear()

        class _Blocks:
            def write(self, data: bytes) -> None:
                pending.extend(data)
                if len(pending) >= BLOCK_BYTES:
                    stage()

        yield _Blocks()
        if pending or not blocks:
            stage()
        # Written before (an earlier try of the same upload) means the same content: nothing to do.
        with suppress(ResourceExistsError, ResourceModifiedError):
            blob.commit_block_list(blocks, match_condition=MatchConditions.IfMissing)
