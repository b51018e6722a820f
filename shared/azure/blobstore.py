"""The little the Azure backend keeps in storage itself: immutable dataset copies, run tables and hold-out rows."""

from __future__ import annotations

import abc

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient


class BlobStore(abc.ABC):
    @abc.abstractmethod
    def put_once(self, path: str, data: bytes) -> bool:
        """Write ``path`` unless it exists (content-addressed paths never change); True if written."""

    @abc.abstractmethod
    def read(self, path: str) -> bytes | None:
        """The blob's bytes, or None when there is none."""


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

    def read(self, path: str) -> bytes | None:
        try:
            return bytes(self.container.download_blob(path).readall())
        except ResourceNotFoundError:
            return None
