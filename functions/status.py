import azure.functions as func

from functions.http_util import error_response, json_response
from shared import status as status_view
from shared.backend import get_backend
from shared.errors import BadRequest, NotSupported
from shared.printable import printable

bp = func.Blueprint()


@bp.route(route="status", methods=["GET"])
def status(req: func.HttpRequest) -> func.HttpResponse:
    given = req.params.get("limit", str(status_view.DEFAULT_LIMIT)).strip()
    most = status_view.MAX_LIMIT
    if not given.isdigit() or not 1 <= int(given) <= most:
        return error_response(BadRequest(f"limit must be a whole number from 1 to {most}", [
            {"field": "limit", "error": f"{printable(given)[:40]!r} is not a whole number from 1 to {most}"}]))
    return json_response(status_view.overview(get_backend(), limit=int(given)))


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
