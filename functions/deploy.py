"""The deployment queue: each message advances one model's deployment as far as it can go without waiting."""

import json
import logging
import os
from functools import cache
from pathlib import Path

import azure.functions as func

from shared import deployment_flow
from shared.backend import get_backend
from shared.deployment_flow import DEPLOYMENTS_QUEUE, DeployMessage

bp = func.Blueprint()
log = logging.getLogger(__name__)
HOST_JSON = Path(__file__).resolve().parents[1] / "host.json"


@cache
def max_tries() -> int:
    """How many times the host delivers a queue message before poisoning it: host.json's ``maxDequeueCount``,
    or the app setting that overrides it, as the host reads them (5 when unset, the host's own default)."""
    override = os.environ.get("AzureFunctionsJobHost__extensions__queues__maxDequeueCount")
    if override:
        return int(override)
    settings = json.loads(HOST_JSON.read_text()) if HOST_JSON.exists() else {}
    return int(settings.get("extensions", {}).get("queues", {}).get("maxDequeueCount", 5))


def _decoded(message: func.QueueMessage) -> DeployMessage | None:
    try:
        return DeployMessage.decode(message.get_body().decode())
    except ValueError:
        log.error("Dropping an unreadable deployment message %s", message.id)
        return None


@bp.queue_trigger(arg_name="message", queue_name=DEPLOYMENTS_QUEUE, connection="AzureWebJobsStorage")
def deploy(message: func.QueueMessage) -> None:
    request = _decoded(message)
    if request is None:
        return
    # An error propagates: the host makes the message visible again, and after the last try poisons it.
    outcome = deployment_flow.advance(get_backend(), request)
    log.info("Deployment of run %s (try %s): %s", request.run_id, message.dequeue_count, outcome)


@bp.queue_trigger(arg_name="message", queue_name=f"{DEPLOYMENTS_QUEUE}-poison", connection="AzureWebJobsStorage")
def deploy_poisoned(message: func.QueueMessage) -> None:
    """The host gave up on a deployment message: record the failure so the upload's status says so."""
    request = _decoded(message)
    if request is None:
        return
    deployment_flow.fail_poisoned(get_backend(), request, tries=max_tries())
    log.error("Deployment of run %s failed for good: its message was poisoned", request.run_id)
