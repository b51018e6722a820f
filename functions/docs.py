import json
from html import escape
from pathlib import Path

import azure.functions as func

from functions.http_util import json_response
from shared import openapi
from shared.backend import get_backend
from shared.settings import get_settings

bp = func.Blueprint()
ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "application/javascript",
          "swagger-ui-standalone-preset.js": "application/javascript", "favicon-32x32.png": "image/png"}


def _assets_dir() -> Path:
    from swagger_ui_bundle import swagger_ui_path  # a pinned package: no CDN at run time

    return Path(str(swagger_ui_path))


@bp.route(route="swagger.json", methods=["GET"])
def swagger(req: func.HttpRequest) -> func.HttpResponse:
    deployed = get_backend().server.deployed()
    default = get_settings().default_model or next(iter(deployed), None)
    return json_response(openapi.document(deployed, default))


@bp.route(route="docs", methods=["GET"])
def docs(req: func.HttpRequest) -> func.HttpResponse:
    code = req.params.get("code", "")
    suffix = f"?code={escape(code)}" if code else ""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Scoring API</title>
<link rel="stylesheet" href="docs/assets/swagger-ui.css{suffix}">
<link rel="icon" type="image/png" href="docs/assets/favicon-32x32.png{suffix}"></head>
<body><div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js{suffix}"></script>
<script>
window.ui = SwaggerUIBundle({{url: {json.dumps("swagger.json" + suffix)}, dom_id: "#swagger-ui",
  deepLinking: true, persistAuthorization: true}});
</script></body></html>"""
    return func.HttpResponse(page, mimetype="text/html")


@bp.route(route="docs/assets/{file}", methods=["GET"])
def docs_asset(req: func.HttpRequest) -> func.HttpResponse:
    name = req.route_params["file"]
    if name not in ASSETS:
        return json_response({"error": f"no asset {name!r}"}, 404)
    return func.HttpResponse((_assets_dir() / name).read_bytes(), mimetype=ASSETS[name],
                             headers={"Cache-Control": "public, max-age=86400"})
