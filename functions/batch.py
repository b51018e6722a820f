import base64
import json
import logging
from pathlib import PurePosixPath

import azure.functions as func
from azure.storage.blob import BlobBlock, ContainerClient

from shared import telemetry
from shared.backend import get_backend
from shared.batch import score_csv
from shared.errors import DatasetRejected
from shared.settings import get_settings
from shared.storage import blob_service

bp = func.Blueprint()
log = logging.getLogger(__name__)
OUTPUT_CONTAINER = "scoring-output"


@bp.blob_trigger(arg_name="blob", path="scoring-input/{name}", connection="AzureWebJobsStorage",
                 source=func.BlobSource.EVENT_GRID)
def batch_score(blob: func.InputStream) -> None:
    """Score a dropped CSV with the production model of the folder's name (or the default model)."""
    path = PurePosixPath((blob.name or "").split("/", 1)[-1])
    settings = get_settings()
    backend = get_backend()
    model = path.parts[0] if len(path.parts) > 1 else backend.server.default_model() or ""
    output = blob_service().get_container_client(OUTPUT_CONTAINER)
    if not output.exists():
        output.create_container()
    base = str(path.with_suffix(""))
    if backend.serving is None:
        # In Azure, bulk scoring belongs on a batch endpoint, not in a function invocation.
        _write_json(output, f"{base}.error.json", {"error": "batch scoring by drop runs with the local backend; "
                                                            "in Azure, invoke a batch endpoint for the model"})
        return
    served = backend.serving.get(model) if model else None
    if served is None:
        # Not retried: nothing will change until a model is deployed; the file stays where it is.
        _write_json(output, f"{base}.error.json", {"error": f"no model is deployed for {model or 'any model'}"})
        return
    target = output.get_blob_client(f"{base}.scored.csv")
    blocks: list[BlobBlock] = []

    def write(piece: bytes) -> None:
        block_id = base64.b64encode(f"{len(blocks):08d}".encode()).decode()
        target.stage_block(block_id, piece)
        blocks.append(BlobBlock(block_id))

    try:
        summary = score_csv(blob.read(), served, settings.batch_chunk_rows, write)
    except DatasetRejected as rejected:
        _write_json(output, f"{base}.error.json", {"error": rejected.reason})
        telemetry.event("BatchRejected", blob=str(path), reason=rejected.reason)
        return
    target.commit_block_list(blocks)
    summary["input"] = str(path)
    summary["output"] = f"{OUTPUT_CONTAINER}/{base}.scored.csv"
    _write_json(output, f"{base}.summary.json", summary)
    telemetry.event("BatchScored", blob=str(path), rows=summary["rows"], model=model,
                    rows_per_second=summary["rows_per_second"])


def _write_json(container: ContainerClient, name: str, body: dict[str, object]) -> None:
    container.get_blob_client(name).upload_blob(json.dumps(body, indent=1), overwrite=True)
