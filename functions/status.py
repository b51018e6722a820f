import azure.functions as func

from functions.http_util import error_response, json_response
from shared import status as status_view
from shared.backend import get_backend
from shared.errors import NotSupported

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
    name = req.route_params["name"]
    try:
        summary = get_backend().server.drift_summary(name)
    except NotSupported as error:
        return error_response(error)
    if summary is None:
        return json_response({"error": f"no drift window for {name!r} yet: no model in production, or it has "
                                       "not scored enough rows"}, 404)
    return json_response(summary)
