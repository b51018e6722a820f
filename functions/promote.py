import contextlib
import logging
from typing import Any

import azure.functions as func

from shared import telemetry
from shared.backend import get_backend
from shared.promotion import handle_run_completed

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.event_grid_trigger(arg_name="event")
def promote(event: func.EventGridEvent) -> None:
    body = event.get_json()
    data: dict[str, Any] = body if isinstance(body, dict) else {}
    # The local host continues the upload's trace itself; in Azure the run's tags carry it here.
    tags = data.get("runTags") or {}
    parent = str(tags.get("traceparent") or "") if telemetry.worker_exports() else ""
    scope = telemetry.span("promote run", traceparent=parent) if parent else contextlib.nullcontext()
    with scope:
        outcome = handle_run_completed(event.event_type, data, get_backend())
    log.info("RunCompleted %s: %s %s", event.id, outcome.decision, outcome.detail)
