import azure.functions as func

from functions.http_util import json_response
from shared import status as status_view
from shared.backend import get_backend

bp = func.Blueprint()


@bp.route(route="status", methods=["GET"])
def status(req: func.HttpRequest) -> func.HttpResponse:
    limit = int(req.params.get("limit", "20")) if req.params.get("limit", "20").isdigit() else 20
    return json_response(status_view.overview(get_backend(), limit=limit))


@bp.route(route="models", methods=["GET"])
def models(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(status_view.models(get_backend()))


@bp.route(route="models/{name}/drift", methods=["GET"])
def drift(req: func.HttpRequest) -> func.HttpResponse:
    serving = get_backend().serving
    name = req.route_params["name"]
    summary = serving.drift_summary(name) if serving is not None else None
    if summary is None:
        return json_response({"error": f"no drift monitoring for {name!r}: no model in production here, or it has "
                                       "not scored yet (in Azure, use Azure ML model monitoring)"}, 404)
    return json_response(summary)
