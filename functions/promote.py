import logging

import azure.functions as func

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.event_grid_trigger(arg_name="event")
def promote(event: func.EventGridEvent) -> None:
    log.info("Event %s (%s) on %s", event.id, event.event_type, event.subject)
