"""Upload records and the promotion ledger, kept as JSON blobs in the state container."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from shared.blob_records import JsonBlobs
from shared.ports import PromotionLedger, UploadLog
from shared.printable import printable
from shared.upload_states import UploadChange, may_move

log = logging.getLogger(__name__)

# A claim older than this was left by a crashed handler and may be taken over. Handling a RunCompleted
# takes seconds (the deployment runs from a queue), so a short lease frees a dead claim quickly.
CLAIM_TTL_S = 120

__all__ = ["BlobPromotionLedger", "BlobUploadLog", "JsonBlobs"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _key(identifier: str) -> str:
    """Blob names from ids that may hold '/' or '@' (upload ids are blob paths)."""
    return identifier.replace("%", "%25").replace("/", "%2F")


class BlobUploadLog(UploadLog):
    def __init__(self, blobs: JsonBlobs) -> None:
        self.blobs = blobs

    def update(self, upload_id: str, change: UploadChange) -> bool:
        fields = change.columns()
        extra = dict(change.details or {})
        refused: list[str] = []

        def apply(current: dict[str, Any] | None) -> dict[str, Any]:
            refused.clear()
            if current is not None and change.state and not may_move(current.get("state"), change.state):
                refused.append(str(current.get("state")))
                return current  # written back unchanged
            record = current or {"upload_id": upload_id, "state": "received", "created_at": _now(), "details": {}}
            record.update(fields, details={**record.get("details", {}), **extra}, updated_at=_now())
            return record

        self.blobs.update(f"uploads/{_key(upload_id)}.json", apply)
        if refused:
            log.warning("Upload %s stays %s: %s would move it back", printable(upload_id), refused[0], change.state)
        return not refused

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
            return self.blobs.replace(path, {**record, "claimed_at": time.time()}, etag) is not None
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
