"""Small helpers shared by the HTTP blueprints: JSON responses and typed errors mapped to statuses."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func

from shared.errors import BadRequest, CoreError


def json_response(body: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json")


def error_response(error: CoreError) -> func.HttpResponse:
    body: dict[str, Any] = {"error": str(error)}
    if isinstance(error, BadRequest) and error.details:
        body["details"] = error.details
    return json_response(body, error.status_code)
