import logging

import azure.functions as func

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.blob_trigger(arg_name="blob", path="datasets/{name}", connection="AzureWebJobsStorage",
                 source=func.BlobSource.EVENT_GRID)
def ingest(blob: func.InputStream) -> None:
    log.info("Upload seen: %s (%s bytes, metadata %s)", blob.name, blob.length, getattr(blob, "metadata", None))
