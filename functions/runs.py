import azure.functions as func

from functions.http_util import error_response, json_response
from shared import pipelines
from shared.backend import get_backend
from shared.errors import CoreError, NotSupported
from shared.page_headers import page_headers
from shared.settings import get_settings

bp = func.Blueprint()


def _no_run(req: func.HttpRequest) -> func.HttpResponse:
    return json_response({"error": f"no run {req.route_params['run_id']!r}"}, 404)


@bp.route(route="pipelines", methods=["GET"])
def list_pipelines(req: func.HttpRequest) -> func.HttpResponse:
    published = [{"name": p.name, "version": p.version, "steps": list(p.steps), "description": p.description,
                  "aliases": list(p.aliases), "runs": f"/api/pipelines/{p.name}/runs"}
                 for p in pipelines.PUBLISHED.values()]
    return json_response({"pipelines": published})


@bp.route(route="pipelines/{name}/runs", methods=["POST"])
def start_run(req: func.HttpRequest) -> func.HttpResponse:
    backend = get_backend()
    try:
        params = pipelines.parse_body(req.get_body(), req.headers.get("content-type"))
        run, created = pipelines.start(req.route_params["name"], params, backend, get_settings(),
                                       idempotency_key=req.headers.get("idempotency-key") or None)
    except CoreError as error:
        return error_response(error)
    body = pipelines.describe_run(run, backend)
    body["status"] = run.state
    response = json_response(body, 202)
    response.headers["Location"] = f"/api/runs/{run.run_id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.route(route="runs/{run_id}", methods=["GET"])
def get_run(req: func.HttpRequest) -> func.HttpResponse:
    backend = get_backend()
    run = backend.pipeline.get_run(req.route_params["run_id"])
    if run is None:
        return _no_run(req)
    return json_response(pipelines.describe_run(run, backend))


@bp.route(route="runs/{run_id}/report", methods=["GET"])
def run_report(req: func.HttpRequest) -> func.HttpResponse:
    run_id = req.route_params["run_id"]
    try:
        page = get_backend().reports.html(run_id)
    except NotSupported as error:
        return error_response(error)
    if page is None:
        return json_response({"error": f"no report for run {run_id!r}: reports are written once the run's "
                                       "model is decided"}, 404)
    return func.HttpResponse(page, status_code=200, mimetype="text/html", headers=page_headers())


@bp.route(route="runs/{run_id}", methods=["DELETE"])
def cancel_run(req: func.HttpRequest) -> func.HttpResponse:
    backend = get_backend()
    run = pipelines.cancel(backend, req.route_params["run_id"])
    if run is None:
        return _no_run(req)
    if run.finished and run.state != "cancelled":
        return json_response({"error": f"run {run.run_id} already ended {run.state}", "state": run.state}, 409)
    return json_response(pipelines.describe_run(run, backend), 202)


@bp.route(route="runs", methods=["GET"])
def list_runs(req: func.HttpRequest) -> func.HttpResponse:
    backend = get_backend()
    runs = backend.pipeline.list_runs(req.params.get("model"))
    return json_response({"runs": [pipelines.describe_run(r, backend) for r in runs]})
