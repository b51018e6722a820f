"""A blob read as a seekable binary stream, a range at a time: an upload of any size passes through a function
without ever being held whole. Every range is read at the blob's ETag, so a blob overwritten mid-read fails the
read (the trigger retries with the new version) instead of mixing two files."""

from __future__ import annotations

import io
import os
from typing import Any

from azure.core import MatchConditions

RANGE_BYTES = 4 << 20  # one download request


class BlobRangeReader(io.RawIOBase):
    def __init__(self, blob: Any, size: int, etag: str, range_bytes: int = RANGE_BYTES) -> None:
        super().__init__()
        self.blob = blob  # an azure.storage.blob.BlobClient
        self.size = size
        self.etag = etag
        self.range_bytes = range_bytes
        self.position = 0
        self.requests = 0  # download requests made
        self.largest = 0  # the most bytes one request asked for

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.position, os.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self.range_bytes, self.size - self.position)
        if wanted <= 0:
            return 0
        data = self.blob.download_blob(offset=self.position, length=wanted, etag=self.etag,
                                       match_condition=MatchConditions.IfNotModified).readall()
        self.requests += 1
        self.largest = max(self.largest, wanted)
        buffer[:len(data)] = data
        self.position += len(data)
        return len(data)


def blob_stream(blob: Any, size: int, etag: str, range_bytes: int = RANGE_BYTES) -> io.BufferedReader:
    """The blob as a buffered, seekable stream of ``range_bytes`` requests."""
    return io.BufferedReader(BlobRangeReader(blob, size, etag, range_bytes), buffer_size=range_bytes)
