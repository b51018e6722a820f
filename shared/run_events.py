"""Which run events the app acts on, and a tolerant reading of their ``data``.

One definition (``run_events.json``) serves the handler here and the Event Grid
filter in ``infra/events.bicep``, which loads the same file. Routing rests only
on what this app sets itself: the ``app`` tag on every job it submits. The
service leaves ``runType`` null for many run kinds, so it is never relied on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ROUTING: dict[str, Any] = json.loads(Path(__file__).with_name("run_events.json").read_text())

RUN_COMPLETED: str = _ROUTING["eventTypes"]["completed"]
RUN_STATUS_CHANGED: str = _ROUTING["eventTypes"]["statusChanged"]
APP_TAG_KEY: str = _ROUTING["tagKey"]
APP_TAG: str = _ROUTING["tagValue"]  # every job, asset and endpoint this app creates carries app=<this>
FILTER_KEY: str = _ROUTING["filterKey"]
TERMINAL_STATUSES: tuple[str, ...] = tuple(_ROUTING["terminalStatuses"])

# The published schema names these in camelCase; some published examples show them in PascalCase.
_FIELDS = ("experimentId", "experimentName", "runId", "runType", "runTags", "runProperties", "runStatus")


@dataclass(frozen=True)
class RunEvent:
    """The fields of a RunCompleted / RunStatusChanged ``data`` the app reads, whatever their case."""

    event_type: str
    run_id: str
    run_type: str | None
    run_status: str
    tags: dict[str, str]
    properties: dict[str, str]
    experiment_name: str

    @classmethod
    def of(cls, event_type: str, data: dict[str, Any]) -> RunEvent:
        by_lower = {str(k).lower(): v for k, v in data.items()}
        fields = {name: by_lower.get(name.lower()) for name in _FIELDS}
        run_type = fields["runType"]
        return cls(event_type, str(fields["runId"] or ""), None if run_type is None else str(run_type),
                   str(fields["runStatus"] or ""), _strings(fields["runTags"]), _strings(fields["runProperties"]),
                   str(fields["experimentName"] or ""))

    @property
    def is_ours(self) -> bool:
        return self.tags.get(APP_TAG_KEY) == APP_TAG

    def not_for_us(self) -> str | None:
        """Why the app ignores this event before looking anything up; None when it should be looked at."""
        terminal = self.run_status.lower() in {s.lower() for s in TERMINAL_STATUSES}
        if self.event_type == RUN_STATUS_CHANGED and not terminal:
            return f"status change to {self.run_status or 'an unknown status'}"
        if self.event_type not in (RUN_COMPLETED, RUN_STATUS_CHANGED):
            return f"event type {self.event_type}"
        if not self.run_id:
            return "no runId"
        if not self.is_ours:
            return f"run {self.run_id!r} does not carry the tag {APP_TAG_KEY}={APP_TAG}"
        return None

    def describe(self) -> dict[str, str]:
        """What telemetry records of an ignored event, so a real deployment shows what arrived."""
        return {"run_id": self.run_id, "event_type": self.event_type, "run_type": str(self.run_type),
                "run_status": self.run_status, "run_tags": json.dumps(self.tags, sort_keys=True)[:2000],
                "experiment": self.experiment_name}


def _strings(value: Any) -> dict[str, str]:
    return {str(k): "" if v is None else str(v) for k, v in value.items()} if isinstance(value, dict) else {}
