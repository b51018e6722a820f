import logging

import azure.functions as func

from shared.backend import get_backend
from shared.ingest import UPLOADS_CONTAINER, Upload
from shared.ingest import ingest as ingest_upload
from shared.printable import printable
from shared.settings import get_settings

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.blob_trigger(arg_name="blob", path=f"{UPLOADS_CONTAINER}/{{name}}", connection="AzureWebJobsStorage",
                 source=func.BlobSource.EVENT_GRID)
def ingest(blob: func.InputStream) -> None:
    name = blob.name or ""
    blob_path = name.split("/", 1)[1] if "/" in name else name
    properties = getattr(blob, "blob_properties", None) or {}
    content = blob.read()
    upload = Upload(blob_path=blob_path, uri=blob.uri or "", content=content,
                    metadata=dict(getattr(blob, "metadata", None) or {}),
                    etag=str(properties.get("ETag") or properties.get("Etag") or ""),
                    modified_at=str(properties.get("LastModified") or ""))
    outcome = ingest_upload(upload, get_backend(), get_settings())
    log.info("Upload %s: %s %s", printable(blob_path), outcome.state, printable(outcome.reason or outcome.run_id or ""))
