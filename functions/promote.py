import logging

import azure.functions as func

from shared.backend import get_backend
from shared.promotion import handle_run_completed

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.event_grid_trigger(arg_name="event")
def promote(event: func.EventGridEvent) -> None:
    data = event.get_json()
    outcome = handle_run_completed(event.event_type, data if isinstance(data, dict) else {}, get_backend())
    log.info("RunCompleted %s: %s %s", event.id, outcome.decision, outcome.detail)
