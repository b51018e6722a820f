from dataclasses import asdict

import azure.functions as func

from functions.http_util import json_response
from shared.backend import get_backend

bp = func.Blueprint()


@bp.route(route="runs/{run_id}", methods=["GET"])
def get_run(req: func.HttpRequest) -> func.HttpResponse:
    run = get_backend().pipeline.get_run(req.route_params["run_id"])
    if run is None:
        return json_response({"error": f"no run {req.route_params['run_id']!r}"}, 404)
    return json_response(asdict(run))


@bp.route(route="runs", methods=["GET"])
def list_runs(req: func.HttpRequest) -> func.HttpResponse:
    runs = get_backend().pipeline.list_runs(req.params.get("model"))
    return json_response({"runs": [asdict(r) for r in runs]})
