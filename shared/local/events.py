"""Run-completed events of the exact Azure Event Grid schema, posted to the local host's webhook."""

from __future__ import annotations

import logging
import os
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from shared.ports import RunInfo
from shared.run_events import APP_TAG, APP_TAG_KEY, RUN_COMPLETED

log = logging.getLogger(__name__)
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>()]+")
_URL_PATH = re.compile(r"(?i)(\burl: ?)[^\s'\"<>()]+")  # urllib3: "Max retries exceeded with url: /path?query"
_QUERY = re.compile(r"\?[\w.~%-]+=[^\s'\"<>()]*")
_SECRET_PARAMETER = re.compile(r"(?i)\b(code|sig|key|token)=[^\s&'\"<>()]+")
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


def without_urls(text: str) -> str:
    """``text`` with every URL cut to its scheme, host and port, and no query string or path after "url:": an
    HTTP library's error names the URL it called, and a URL may carry a key."""
    text = _URL.sub(lambda found: _origin(found.group()), text)
    text = _URL_PATH.sub(r"\1…", text)
    return _SECRET_PARAMETER.sub(r"\1=…", _QUERY.sub("?…", text))


def _origin(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    except ValueError:
        return "…"
    return f"{parts.scheme}://{host}/…"


def post_run_completed(run: RunInfo, host_url: str, function_name: str, trace_parent: str = "",
                       timeout_s: float = 30) -> None:
    """POST the event as Event Grid would; raises when the host did not accept it.

    The system key travels in the ``x-functions-key`` header (the Functions host takes it there as well as in
    ``code``): a URL ends up in error messages, logs and request telemetry; a header does not.
    """
    key = os.environ.get("DEVHOST_EVENTGRID_KEY", "")
    try:
        response = requests.post(
            f"{host_url}/runtime/webhooks/eventgrid",
            params={"functionName": function_name},
            json=[run_completed_event(run, trace_parent)],
            headers={"aeg-event-type": "Notification", "x-functions-key": key},
            timeout=timeout_s,
        )
    except requests.RequestException as error:
        raise ConnectionError(f"{type(error).__name__}: {without_urls(str(error))}") from None
    if response.status_code not in (200, 202):
        raise RuntimeError(f"the host answered {response.status_code} to RunCompleted for {run.run_id}")
    log.info("RunCompleted for %s delivered", run.run_id)
