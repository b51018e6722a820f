"""What the host reads from host.json and local.settings.json."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _seconds(value: str | None, default: int) -> int:
    """Parse a host.json ``hh:mm:ss`` time span."""
    if not value:
        return default
    match = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.\d+)?", value)
    if not match:
        raise ValueError(f"host.json: {value!r} is not a hh:mm:ss time span")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = "api"
    max_dequeue_count: int = 5
    retry_delay_s: int = 0
    max_parallel_blobs: int = 4
    max_polling_interval_s: int = 2
    queue_batch_size: int = 4

    @classmethod
    def read(cls, path: Path) -> HostConfig:
        if not path.exists():
            return cls()
        data: dict[str, Any] = json.loads(path.read_text())
        extensions = data.get("extensions", {})
        queues = extensions.get("queues", {})
        return cls(
            route_prefix=str(extensions.get("http", {}).get("routePrefix", "api")),
            max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
            retry_delay_s=_seconds(queues.get("visibilityTimeout"), 0),
            max_parallel_blobs=int(extensions.get("blobs", {}).get("maxDegreeOfParallelism", 4)),
            max_polling_interval_s=_seconds(queues.get("maxPollingInterval"), 60),
            queue_batch_size=int(queues.get("batchSize", 16)),
        )


def load_local_settings(path: Path) -> None:
    """Copy ``Values`` of local.settings.json into the environment, as Core Tools does.

    Variables already set win, so scripts and tests can override any value.
    """
    if not path.exists():
        return
    values = json.loads(path.read_text()).get("Values", {})
    for name, value in values.items():
        os.environ.setdefault(name, str(value))
