"""An upload's state only moves forward; both backends' upload logs apply this one rule.

received -> rejected | duplicate | training | superseded | cancelled | failed
training -> deploying | promoted | not_promoted | superseded | cancelled | failed
deploying -> promoted | not_promoted | failed

(A run can be superseded or cancelled before ingest has recorded it as training: that
outcome then stands, and ingest's late "training" changes nothing.)

A replayed event (the same blob version delivered again, Event Grid delivers
at least once) can therefore never send a finished upload back to an earlier
state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, Protocol

from shared import telemetry


class UploadState(StrEnum):
    RECEIVED = "received"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    TRAINING = "training"
    DEPLOYING = "deploying"
    PROMOTED = "promoted"
    NOT_PROMOTED = "not_promoted"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"
    FAILED = "failed"


_NEXT: dict[UploadState, frozenset[UploadState]] = {
    UploadState.RECEIVED: frozenset({UploadState.REJECTED, UploadState.DUPLICATE, UploadState.TRAINING,
                                     UploadState.SUPERSEDED, UploadState.CANCELLED, UploadState.FAILED}),
    UploadState.TRAINING: frozenset({UploadState.DEPLOYING, UploadState.PROMOTED, UploadState.NOT_PROMOTED,
                                     UploadState.SUPERSEDED, UploadState.CANCELLED, UploadState.FAILED}),
    UploadState.DEPLOYING: frozenset({UploadState.PROMOTED, UploadState.NOT_PROMOTED, UploadState.FAILED}),
}


def may_move(current: str | None, new: str) -> bool:
    """Whether a record in state ``current`` (None: no record yet) may take state ``new``."""
    target = UploadState(new)
    if current is None or current == target:
        return True
    return target in _NEXT.get(UploadState(current), frozenset())


def is_final(state: str) -> bool:
    return UploadState(state) not in _NEXT


@dataclass(frozen=True)
class UploadChange:
    """What one write changes in an upload record; None leaves a field as it is, ``details`` merge."""

    state: UploadState | None = None
    reason: str | None = None
    blob: str | None = None
    model_name: str | None = None
    dataset_version: int | None = None
    run_id: str | None = None
    details: Mapping[str, object] | None = None

    def columns(self) -> dict[str, object]:
        """The record's fields this change sets (``details`` apart)."""
        out: dict[str, object] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            if value is not None and spec.name != "details":
                out[spec.name] = str(value) if isinstance(value, UploadState) else value
        return out


class _Writes(Protocol):
    """What ``record`` needs of an upload log (``shared.ports.UploadLog``, named here without importing it)."""

    def update(self, upload_id: str, change: UploadChange) -> bool: ...

    def get(self, upload_id: str) -> dict[str, Any] | None: ...


def record(uploads: _Writes, upload_id: str, *, state: UploadState | None = None, reason: str | None = None,
           blob: str | None = None, model_name: str | None = None, dataset_version: int | None = None,
           run_id: str | None = None, details: Mapping[str, object] | None = None) -> bool:
    """The one way the core writes an upload record; False when ``state`` would move it back (nothing changes)."""
    return uploads.update(upload_id, UploadChange(state, reason, blob, model_name, dataset_version, run_id, details))


def cancelled(uploads: _Writes, run_id: str, model: str, upload_id: str | None, reason: str) -> None:
    """One rule for a cancelled run, whichever backend ran it and whenever it stopped (queued, running, or
    as its platform reports it later): its upload ends ``cancelled``, and one RunCancelled event says so."""
    if upload_id:
        before = uploads.get(upload_id)
        if before is not None and before.get("state") == UploadState.CANCELLED:
            return  # already told
        record(uploads, upload_id, state=UploadState.CANCELLED, reason=reason)
    telemetry.event("RunCancelled", run_id=run_id, model=model, upload_id=upload_id, reason=reason)
