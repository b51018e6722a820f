"""Run-completed events of the exact Azure Event Grid schema, posted to the local host's webhook."""

from __future__ import annotations

import logging
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import requests

from shared.ports import RunInfo
from shared.run_events import APP_TAG, APP_TAG_KEY, RUN_COMPLETED

log = logging.getLogger(__name__)
LOCAL_WORKSPACE = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local"
                   "/providers/Microsoft.MachineLearningServices/workspaces/local")


def run_completed_event(run: RunInfo, trace_parent: str = "") -> dict[str, Any]:
    experiment_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"experiment:{run.model_name}"))
    return {
        "id": str(uuid.uuid4()),
        "topic": LOCAL_WORKSPACE,
        "subject": f"experiments/{experiment_id}/runs/{run.run_id}",
        "eventType": RUN_COMPLETED,
        "eventTime": datetime.now(UTC).isoformat(),
        "dataVersion": "2",
        "metadataVersion": "1",
        "data": {
            "experimentId": experiment_id,
            "experimentName": run.model_name,
            "runId": run.run_id,
            "runType": None,  # as Azure ML reports many run kinds: routing never relies on it
            "runTags": {APP_TAG_KEY: APP_TAG, "model_name": run.model_name,
                        "dataset": f"{run.dataset_name}:{run.dataset_version}",
                        "upload_id": run.upload_id or "", "traceparent": trace_parent},
            "runProperties": {"runStatus": "Completed" if run.state == "completed" else "Failed",
                              "primary_metric": run.metric},
        },
    }


def post_run_completed(run: RunInfo, host_url: str, function_name: str, trace_parent: str = "",
                       timeout_s: float = 30) -> None:
    """POST the event as Event Grid would; raises when the host did not accept it."""
    key = os.environ.get("DEVHOST_EVENTGRID_KEY", "")
    response = requests.post(
        f"{host_url}/runtime/webhooks/eventgrid",
        params={"functionName": function_name, "code": key},
        json=[run_completed_event(run, trace_parent)],
        headers={"aeg-event-type": "Notification"},
        timeout=timeout_s,
    )
    if response.status_code not in (200, 202):
        raise RuntimeError(f"the host answered {response.status_code} to RunCompleted for {run.run_id}")
    log.info("RunCompleted for %s delivered", run.run_id)
