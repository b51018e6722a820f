"""The hand-over between queue messages that both resumable flows share (``deployment_flow``, ``batch_flow``).

A flow's durable record carries the sequence number of the message for its current step, and whether that
message was queued. Handing over is two writes around one send: the record with the next number and
``sent`` false, the message, then ``sent`` true. A crash between them leaves ``sent`` false, and the previous
message, when it comes back, queues the successor instead of running anything (``catch_up``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, Self

from shared.blob_records import JsonBlobs
from shared.ports import DeploymentQueue


class QueuedRecord(Protocol):
    seq: int
    sent: bool
    traceparent: str
    updated_at: str

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class StepMessage:
    """"Advance the flow whose record is ``key``": its JSON names the key as ``KEY_FIELD``."""

    key: str
    seq: int
    traceparent: str = ""  # the upload's operation: queue messages carry no trace context of their own
    KEY_FIELD: ClassVar[str] = "key"

    def encode(self) -> str:
        return json.dumps({self.KEY_FIELD: self.key, "seq": self.seq, "traceparent": self.traceparent})

    @classmethod
    def decode(cls, text: str) -> Self:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get(cls.KEY_FIELD), str):
            raise ValueError(f"not a {cls.__name__}: {text[:200]!r}")
        return cls(data[cls.KEY_FIELD], int(data.get("seq", 0)), str(data.get("traceparent") or ""))


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def save(records: JsonBlobs, path: str, record: QueuedRecord, etag: str) -> str | None:
    """The record written if nobody wrote it since ``etag``: its new ETag, else None."""
    record.updated_at = now()
    return records.replace(path, record.to_json(), etag)


def send_next(records: JsonBlobs, queue: DeploymentQueue, path: str, record: QueuedRecord, etag: str,
              kind: type[StepMessage], key: str, delay_s: float) -> bool:
    """Record the step with a new sequence number, then queue its message, then mark it queued; False when
    another copy of the message advanced the record first (that one carries on)."""
    record.seq += 1
    record.sent = False
    new_etag = save(records, path, record, etag)
    if new_etag is None:
        return False
    queue.send(kind(key, record.seq, record.traceparent).encode(), delay_s)
    record.sent = True
    save(records, path, record, new_etag)  # if this write is lost, the successor is simply queued twice
    return True


def catch_up(records: JsonBlobs, queue: DeploymentQueue, path: str, record: QueuedRecord, etag: str,
             message: StepMessage) -> str | None:
    """For a ``message`` older than the record's step: "stale" (a copy of a message whose step is done; its
    successor carries on), or "resent" after queueing the successor a crash never queued. None when ``message``
    is the current one, to be run."""
    if message.seq >= record.seq:
        return None
    if record.sent or message.seq != record.seq - 1:
        return "stale"
    queue.send(type(message)(message.key, record.seq, record.traceparent).encode(), 0)
    record.sent = True
    save(records, path, record, etag)
    return "resent"
