"""Small JSON records kept as blobs, written exactly once or compare-and-swap.

Blob storage gives what the records need: If-None-Match `*` creates a record
exactly once (a claim), and If-Match on the ETag makes read-modify-write safe
under concurrent updates. Both backends keep their deployment state this way
(Azurite locally).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import ContainerClient


class JsonBlobs:
    def __init__(self, container: ContainerClient | None,
                 factory: Callable[[], ContainerClient] | None = None) -> None:
        """``factory`` makes the container client on first use (and the container, when it is missing)."""
        self._container: Any = container
        self._factory = factory

    @property
    def container(self) -> Any:
        if self._container is None and self._factory is not None:
            self._container = self._factory()
            with contextlib.suppress(ResourceExistsError):
                self._container.create_container()
        return self._container

    def get(self, path: str) -> tuple[dict[str, Any], str] | None:
        try:
            download = self.container.get_blob_client(path).download_blob()
        except ResourceNotFoundError:
            return None
        return json.loads(download.readall()), str(download.properties.etag)

    def create(self, path: str, body: dict[str, Any]) -> bool:
        """True for the one writer that created ``path``."""
        try:
            self.container.upload_blob(path, json.dumps(body), overwrite=False)
        except ResourceExistsError:
            return False
        return True

    def replace(self, path: str, body: dict[str, Any], etag: str) -> str | None:
        """The new ETag, or None when someone else wrote ``path`` since ``etag`` was read."""
        try:
            written = self.container.get_blob_client(path).upload_blob(
                json.dumps(body), overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceExistsError):
            return None
        return str(written["etag"])

    def update(self, path: str, change: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        """Apply ``change`` to the current record and write it back, retrying on concurrent writes."""
        for _ in range(20):
            current = self.get(path)
            body = change(current[0] if current else None)
            if current is None and self.create(path, body):
                return body
            if current is not None and self.replace(path, body, current[1]) is not None:
                return body
            time.sleep(0.05)
        raise RuntimeError(f"could not update {path}: too many concurrent writers")

    def delete(self, path: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self.container.delete_blob(path)

    def names(self, prefix: str) -> list[str]:
        """The records under ``prefix``, by name."""
        return sorted(str(b.name) for b in self.container.list_blobs(name_starts_with=prefix))

    def list(self, prefix: str, limit: int) -> list[dict[str, Any]]:
        blobs = sorted(self.container.list_blobs(name_starts_with=prefix), key=lambda b: b.last_modified,
                       reverse=True)[:limit]
        found = [self.get(b.name) for b in blobs]
        return [f[0] for f in found if f is not None]
