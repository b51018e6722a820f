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

from enum import StrEnum


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
