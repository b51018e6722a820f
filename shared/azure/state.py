"""Small records kept as JSON blobs: run records, upload records and the promotion ledger.

Blob storage gives what the records need: If-None-Match `*` creates a record
exactly once (the ledger's claim), and If-Match on the ETag makes
read-modify-write safe under concurrent updates.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from shared.ports import PromotionLedger, UploadLog

CLAIM_TTL_S = 15 * 60  # a claim older than this was left by a crashed handler and may be taken over


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _key(identifier: str) -> str:
    """Blob names from ids that may hold '/' or '@' (upload ids are blob paths)."""
    return identifier.replace("%", "%25").replace("/", "%2F")


class JsonBlobs:
    def __init__(self, container: ContainerClient | None) -> None:
        self.container: Any = container

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

    def replace(self, path: str, body: dict[str, Any], etag: str) -> bool:
        try:
            self.container.upload_blob(path, json.dumps(body), overwrite=True, etag=etag,
                                       match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceExistsError):
            return False
        return True

    def update(self, path: str, change: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        """Apply ``change`` to the current record and write it back, retrying on concurrent writes."""
        for _ in range(20):
            current = self.get(path)
            body = change(current[0] if current else None)
            if current is None and self.create(path, body):
                return body
            if current is not None and self.replace(path, body, current[1]):
                return body
            time.sleep(0.05)
        raise RuntimeError(f"could not update {path}: too many concurrent writers")

    def delete(self, path: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self.container.delete_blob(path)

    def list(self, prefix: str, limit: int) -> list[dict[str, Any]]:
        blobs = sorted(self.container.list_blobs(name_starts_with=prefix), key=lambda b: b.last_modified,
                       reverse=True)[:limit]
        found = [self.get(b.name) for b in blobs]
        return [f[0] for f in found if f is not None]


class BlobUploadLog(UploadLog):
    def __init__(self, blobs: JsonBlobs) -> None:
        self.blobs = blobs

    def update(self, upload_id: str, **fields: Any) -> None:
        extra = fields.pop("details", {})

        def change(current: dict[str, Any] | None) -> dict[str, Any]:
            record = current or {"upload_id": upload_id, "state": "received", "created_at": _now(), "details": {}}
            record.update(fields, details={**record.get("details", {}), **extra}, updated_at=_now())
            return record

        self.blobs.update(f"uploads/{_key(upload_id)}.json", change)

    def get(self, upload_id: str) -> dict[str, Any] | None:
        found = self.blobs.get(f"uploads/{_key(upload_id)}.json")
        return found[0] if found else None

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.blobs.list("uploads/", limit)


class BlobPromotionLedger(PromotionLedger):
    def __init__(self, blobs: JsonBlobs) -> None:
        self.blobs = blobs

    def _path(self, run_id: str) -> str:
        return f"promotions/{_key(run_id)}.json"

    def claim(self, run_id: str) -> bool:
        path = self._path(run_id)
        if self.blobs.create(path, {"run_id": run_id, "state": "claimed", "claimed_at": time.time()}):
            return True
        current = self.blobs.get(path)
        if current is None:
            return self.claim(run_id)  # released in between
        record, etag = current
        if record.get("state") == "claimed" and time.time() - float(record.get("claimed_at", 0)) > CLAIM_TTL_S:
            return self.blobs.replace(path, {**record, "claimed_at": time.time()}, etag)
        return False

    def finish(self, run_id: str, decision: dict[str, Any]) -> None:
        self.blobs.update(self._path(run_id), lambda current: {"run_id": run_id, "state": "done",
                                                               "decision": decision, "finished_at": _now()})

    def decision(self, run_id: str) -> dict[str, Any] | None:
        found = self.blobs.get(self._path(run_id))
        if found is None or found[0].get("state") != "done":
            return None
        decision: dict[str, Any] = found[0]["decision"]
        return decision

    def release(self, run_id: str) -> None:
        self.blobs.delete(self._path(run_id))
