import azure.functions as func

from functions.http_util import error_response, json_response
from shared import scoring
from shared.backend import get_backend
from shared.errors import BadRequest

bp = func.Blueprint()
MAX_ROWS = 10_000


def _score(req: func.HttpRequest, model_name: str | None) -> func.HttpResponse:
    serving = get_backend().serving
    if model_name is None:
        deployed = serving.deployed_names()
        if not deployed:
            return json_response({"error": "no model is deployed yet: upload a CSV to datasets/ and wait for "
                                           "training to finish (GET /api/status)"}, 503)
        model_name = deployed[0]
    served = serving.get(model_name)
    if served is None:
        return json_response({"error": f"no model named {model_name!r} is deployed"}, 503)
    try:
        request = scoring.parse_request(req.get_body(), max_rows=MAX_ROWS,
                                        probabilities_param=req.params.get("probabilities"))
        return json_response(scoring.score(request, served))
    except BadRequest as error:
        return error_response(error)


@bp.route(route="score", methods=["POST"])
def score(req: func.HttpRequest) -> func.HttpResponse:
    return _score(req, None)


@bp.route(route="models/{name}/score", methods=["POST"])
def score_model(req: func.HttpRequest) -> func.HttpResponse:
    return _score(req, req.route_params["name"])
