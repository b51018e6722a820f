"""RunCompleted events of finished runs, delivered to the host until it acknowledges them.

A run's outcome and its pending event are written in one statement
(``RunQueue.completed``/``failed``), so an event is never lost: a worker that
stops before delivery leaves it for the next one, and the handler's ledger makes
a second delivery harmless.
"""

from __future__ import annotations

import logging

from shared.local.events import post_run_completed, without_urls
from shared.local.run_queue import RunQueue
from shared.settings import Settings

log = logging.getLogger("training-worker")


def deliver_pending(queue: RunQueue, settings: Settings) -> bool:
    """Post every pending event in order; False at the first one the host refused or could not take."""
    for run, trace_parent in queue.pending_events():
        try:
            post_run_completed(run, settings.host_url, settings.eventgrid_function, trace_parent)
        except Exception as error:
            # Whatever failed, its text may name a URL, and a URL may carry a key.
            log.warning("RunCompleted for %s not delivered yet (%s); will retry", run.run_id,
                        without_urls(str(error)))
            return False
        queue.acknowledged(run.run_id)
    return True
