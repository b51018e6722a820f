import importlib.util
from html import escape
from pathlib import Path
from urllib.parse import quote

import azure.functions as func

from functions.http_util import json_response
from shared import openapi
from shared.backend import get_backend
from shared.page_headers import page_headers
from shared.settings import get_settings

bp = func.Blueprint()
# Swagger UI from a pinned package (no CDN at run time); the initialiser is ours, so the page runs no inline script.
PACKAGE_ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript",
                  "favicon-32x32.png": "image/png"}
INITIALISER = "docs.js"
DOCS_PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
# Reads the key from the page's own address (never written into the page), fetches the document with it and
# authorises "Try it out" with it, against the document's functionKey scheme.
INITIALISER_SCRIPT = """"use strict";
(function () {
  var code = new URLSearchParams(window.location.search).get("code") || "";
  var suffix = code ? "?code=" + encodeURIComponent(code) : "";
  var ui = SwaggerUIBundle({
    url: "swagger.json" + suffix,
    dom_id: "#swagger-ui",
    deepLinking: true,
    onComplete: function () {
      if (code) { ui.preauthorizeApiKey("functionKey", code); }
    }
  });
  window.ui = ui;
})();
"""


def _package_static() -> Path:
    """swagger-ui-py's static folder, found without importing the package (its __init__ pulls in jinja2)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (requirements.txt pins it)")
    return Path(spec.submodule_search_locations[0]) / "static"


@bp.route(route="swagger.json", methods=["GET"])
def swagger(req: func.HttpRequest) -> func.HttpResponse:
    settings = get_settings()
    deployed = get_backend().server.deployed()
    default = settings.default_model or next(iter(deployed), None)
    # The Azure endpoint returns labels alone: there, the document offers no probabilities or explanations.
    return json_response(openapi.document(deployed, default, max_rows=settings.max_score_rows,
                                          extras=settings.backend == "local"))


@bp.route(route="docs", methods=["GET"])
def docs(req: func.HttpRequest) -> func.HttpResponse:
    # The assets need the key as much as the page: it rides along on their addresses, quoted.
    code = req.params.get("code", "")
    suffix = escape(f"?code={quote(code, safe='')}") if code else ""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Scoring API</title>
<link rel="stylesheet" href="docs/assets/swagger-ui.css{suffix}">
<link rel="icon" type="image/png" href="docs/assets/favicon-32x32.png{suffix}"></head>
<body><div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js{suffix}"></script>
<script src="docs/assets/{INITIALISER}{suffix}"></script>
</body></html>"""
    return func.HttpResponse(page, mimetype="text/html", headers=page_headers(DOCS_PAGE_POLICY))


@bp.route(route="docs/assets/{file}", methods=["GET"])
def docs_asset(req: func.HttpRequest) -> func.HttpResponse:
    name = req.route_params["file"]
    headers = {"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"}
    if name == INITIALISER:
        return func.HttpResponse(INITIALISER_SCRIPT, mimetype="text/javascript", headers=headers)
    if name not in PACKAGE_ASSETS:
        return json_response({"error": "no such asset"}, 404)
    return func.HttpResponse((_package_static() / name).read_bytes(), mimetype=PACKAGE_ASSETS[name], headers=headers)
