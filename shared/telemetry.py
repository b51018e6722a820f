"""Custom events, emitted as log records that Application Insights turns into customEvents.

The ``microsoft.custom_event.name`` attribute is what azure-monitor-opentelemetry
maps to an Event; without an exporter configured they are plain log lines.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("pipeline.events")


def event(name: str, **properties: Any) -> None:
    clean = {k: v if isinstance(v, (str, int, float, bool)) else str(v) for k, v in properties.items()
             if v is not None}
    log.info("%s %s", name, " ".join(f"{k}={v}" for k, v in clean.items()),
             extra={"microsoft.custom_event.name": name, **clean})
