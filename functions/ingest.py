import logging

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

from shared.backend import get_backend
from shared.blob_stream import blob_stream
from shared.ingest import UPLOADS_CONTAINER, Upload
from shared.ingest import ingest as ingest_upload
from shared.printable import printable
from shared.settings import get_settings

bp = func.Blueprint()
log = logging.getLogger(__name__)


# The SDK type: the function gets a BlobClient, not the blob's bytes, and reads the upload a range at a time.
@bp.blob_trigger(arg_name="client", path=f"{UPLOADS_CONTAINER}/{{name}}", connection="AzureWebJobsStorage",
                 source=func.BlobSource.EVENT_GRID)
def ingest(client: blob.BlobClient) -> None:
    properties = client.get_blob_properties()
    etag = str(properties.etag or "")  # as storage writes it, quoted: each range is read at this version
    upload = Upload(blob_path=str(client.blob_name), uri=str(client.url),
                    content=blob_stream(client, int(properties.size), etag),
                    metadata=dict(properties.metadata or {}), etag=etag.strip('"'),
                    modified_at=properties.last_modified.isoformat() if properties.last_modified else "")
    outcome = ingest_upload(upload, get_backend(), get_settings())
    log.info("Upload %s: %s %s", printable(upload.blob_path), outcome.state,
             printable(outcome.reason or outcome.run_id or ""))
