from pathlib import PurePosixPath

import azure.functions as func

from shared.backend import get_backend
from shared.batch import OUTPUT_CONTAINER, score_drop
from shared.settings import get_settings
from shared.storage import BlobBatchOutputs, blob_service

bp = func.Blueprint()


@bp.blob_trigger(arg_name="blob", path="scoring-input/{name}", connection="AzureWebJobsStorage",
                 source=func.BlobSource.EVENT_GRID)
def batch_score(blob: func.InputStream) -> None:
    """Score a dropped CSV with the production model of the folder's name (or the default model)."""
    path = str(PurePosixPath((blob.name or "").split("/", 1)[-1]))
    outputs = BlobBatchOutputs(blob_service().get_container_client(OUTPUT_CONTAINER))
    score_drop(get_backend().server, path, blob.read(), get_settings().batch_chunk_rows, outputs)
