import asyncio
import logging

import azure.functions as func

from functions.http_util import error_response, json_response
from shared import scoring, telemetry
from shared.backend import get_backend
from shared.errors import BadRequest, CoreError
from shared.model_contract import ServedModel
from shared.ports import ModelVersion
from shared.settings import get_settings

bp = func.Blueprint()
log = logging.getLogger(__name__)
AT_ONCE_MAX_BYTES = 2048  # a few rows: scored on the event loop when their model is loaded


def _respond(req: func.HttpRequest, name: str | None, version: ModelVersion | None = None,
             served: ServedModel | None = None) -> func.HttpResponse:
    """Score with ``served`` when given (a model already loaded), else whatever serves ``name`` (and
    ``version``)."""
    settings = get_settings()
    try:
        request = scoring.parse_request(req.get_body(), max_rows=settings.max_score_rows,
                                        max_bytes=settings.max_score_bytes,
                                        content_type=req.headers.get("content-type"),
                                        probabilities_param=req.params.get("probabilities"))
        if served is not None:
            result: scoring.ScoreResult | None = scoring.score(request, served)
        else:
            result = get_backend().server.score(name, request, version) if name else None
    except BadRequest as error:
        telemetry.event("ScoringRejected", status=error.status_code, reason=str(error))
        return error_response(error)
    except CoreError as error:  # the model endpoint behind this one failed (Azure backend)
        telemetry.event("ScoringFailed", status=error.status_code, reason=str(error))
        return error_response(error)
    if result is None:
        if name and get_backend().datasets.get(name) is None:  # the slow path only: nothing serves this name
            return json_response({"error": f"no model named {name!r}: nothing was ever uploaded to "
                                           f"datasets/{name}/"}, 404)
        return _not_deployed(name)
    if result.get("unseen_categories"):
        telemetry.event("UnseenCategories", model=result["model"]["name"], count=result["unseen_categories"])
    return json_response(result)


def _not_deployed(name: str | None) -> func.HttpResponse:
    what = f"model {name!r}" if name else "any model"
    return json_response({"error": f"no model is deployed for {what} yet: upload a CSV to datasets/ and wait for "
                                   "training to finish (GET /api/status)"}, 503)


async def _answer(req: func.HttpRequest, name: str | None) -> func.HttpResponse:
    """Score for ``name`` (None: the default model).

    A small request to a model loaded in this process is scored right here, on the event loop: a fraction of
    a millisecond of CPU, less than the hop to a worker thread and back costs. Whatever may wait (a model to
    load, a remote endpoint, finding the default model there) or take long (many rows, explanations of many
    rows) goes to a worker thread, so that the loop never stalls on it.
    """
    server = get_backend().server
    # The model itself, not a promise that it is loaded: a deployment landing after this line must not make
    # this request load the new model here, on the loop.
    loaded = server.loaded(name) if len(req.get_body()) <= AT_ONCE_MAX_BYTES else None
    if loaded is not None:
        return _respond(req, loaded.name, served=loaded)
    return await asyncio.to_thread(lambda: _respond(req, name or server.default_model()))


@bp.route(route="score", methods=["POST"])
async def score(req: func.HttpRequest) -> func.HttpResponse:
    return await _answer(req, None)


@bp.route(route="models/{name}/score", methods=["POST"])
async def score_model(req: func.HttpRequest) -> func.HttpResponse:
    return await _answer(req, req.route_params["name"])


@bp.route(route="models/{name}/versions/{version}/score", methods=["POST"])
def score_version(req: func.HttpRequest) -> func.HttpResponse:
    backend = get_backend()
    name, version = req.route_params["name"], req.route_params["version"]
    registered = backend.registry.get(name, version)
    if registered is None:
        return json_response({"error": f"model {name!r} has no version {version!r}"}, 404)
    return _respond(req, name, registered)
