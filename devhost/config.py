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


OVERRIDE_PREFIX = "AzureFunctionsJobHost"  # as in Azure, an app setting AzureFunctionsJobHost__a__b overrides a.b


def _setting(data: dict[str, Any], *path: str) -> Any:
    """``data[path...]`` from host.json, unless the environment overrides it the way Azure's host lets app
    settings do (``AzureFunctionsJobHost__extensions__queues__visibilityTimeout``)."""
    override = os.environ.get("__".join((OVERRIDE_PREFIX, *path)))
    if override is not None:
        return override
    value: Any = data
    for key in path:
        value = value.get(key, {}) if isinstance(value, dict) else {}
    return None if value == {} else value


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


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

        def queues(key: str) -> Any:
            return _setting(data, "extensions", "queues", key)

        return cls(
            route_prefix=str(_or(_setting(data, "extensions", "http", "routePrefix"), "api")),
            max_dequeue_count=int(queues("maxDequeueCount") or 5),
            retry_delay_s=_seconds(queues("visibilityTimeout"), 0),
            max_parallel_blobs=int(_setting(data, "extensions", "blobs", "maxDegreeOfParallelism") or 4),
            max_polling_interval_s=_seconds(queues("maxPollingInterval"), 60),
            queue_batch_size=int(queues("batchSize") or 16),
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
