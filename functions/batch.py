"""Batch scoring by drop: the blob function checks and queues (Azure) or scores (local); the queue runs the job."""

import logging

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

from functions.deploy import max_tries
from shared import batch_flow
from shared.backend import get_backend
from shared.batch import OUTPUT_CONTAINER
from shared.batch_flow import BATCH_QUEUE, BatchMessage, Drop
from shared.blob_stream import blob_stream
from shared.printable import printable
from shared.settings import get_settings
from shared.storage import BlobBatchOutputs, blob_service

bp = func.Blueprint()
log = logging.getLogger(__name__)


def _outputs() -> BlobBatchOutputs:
    return BlobBatchOutputs(blob_service().get_container_client(OUTPUT_CONTAINER))


# The SDK type, as ingest: the function gets a BlobClient and reads what it needs a range at a time, never the
# whole blob (in Azure, a batch job reads the file itself).
@bp.blob_trigger(arg_name="client", path="scoring-input/{name}", connection="AzureWebJobsStorage",
                 source=func.BlobSource.EVENT_GRID)
def batch_score(client: blob.BlobClient) -> None:
    """Score a dropped CSV with the production model of the folder's name (or the default model)."""
    properties = client.get_blob_properties()
    etag = str(properties.etag or "")  # quoted, as storage writes it: each range is read at this version
    drop = Drop(blob_path=str(client.blob_name), etag=etag.strip('"'),
                open=lambda: blob_stream(client, int(properties.size), etag))
    outcome = batch_flow.receive(get_backend(), drop, get_settings().batch_chunk_rows, _outputs())
    log.info("Drop %s: %s", printable(drop.blob_path), printable(str(outcome)[:300]))


def _decoded(message: func.QueueMessage) -> BatchMessage | None:
    try:
        return BatchMessage.decode(message.get_body().decode())
    except ValueError:
        log.error("Dropping an unreadable batch job message %s", message.id)
        return None


@bp.queue_trigger(arg_name="message", queue_name=BATCH_QUEUE, connection="AzureWebJobsStorage")
def batch_job(message: func.QueueMessage) -> None:
    request = _decoded(message)
    if request is None:
        return
    # An error propagates: the host makes the message visible again, and after the last try poisons it.
    outcome = batch_flow.advance(get_backend(), request, _outputs())
    log.info("Batch job of drop %s (try %s): %s", request.key, message.dequeue_count, outcome)


@bp.queue_trigger(arg_name="message", queue_name=f"{BATCH_QUEUE}-poison", connection="AzureWebJobsStorage")
def batch_job_poisoned(message: func.QueueMessage) -> None:
    """The host gave up on a batch job message: the drop gets its .error.json."""
    request = _decoded(message)
    if request is None:
        return
    batch_flow.fail_poisoned(get_backend(), request, max_tries(), _outputs())
    log.error("Batch job of drop %s failed for good: its message was poisoned", request.key)
