"""The HTTP face of the host: HTTP triggers under the route prefix and the Event Grid webhook."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from azure.functions.meta import Datum
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devhost.discovery import FunctionSpec, route_variants
from devhost.invoker import decode_trigger, encode_http_response, invoke_async
from devhost.keys import HostKeys
from devhost.tracing import traceparent_of

log = logging.getLogger("devhost.http")

ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
Endpoint = Callable[[Request], Awaitable[Response]]


def presented_key(request: Request) -> str | None:
    # The real host gives the header precedence over the query string.
    return request.headers.get("x-functions-key") or request.query_params.get("code")


def _unauthorized() -> Response:
    return JSONResponse({"error": "Unauthorized: a function key is required (x-functions-key header or code query)"},
                        status_code=401)


def _datum_for_request(request: Request, body: bytes) -> Datum:
    headers: dict[str, Datum] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = Datum(f"{headers[key].value}, {value}" if key in headers else value, "string")
    return Datum(
        {
            "method": Datum(request.method, "string"),
            "url": Datum(str(request.url), "string"),
            "headers": headers,
            "query": {k: Datum(v, "string") for k, v in request.query_params.items()},
            "params": {k: Datum(str(v), "string") for k, v in request.path_params.items()},
            "body": Datum(body, "bytes"),
        },
        "http",
    )


def _response_from(result: Any) -> Response:
    if result is None:
        return Response(status_code=204)
    encoded = encode_http_response(result)
    if encoded.type == "string":
        return Response(encoded.value, media_type="text/plain; charset=utf-8")
    value = encoded.value
    headers = {name: datum.value for name, datum in value["headers"].items()}
    return Response(content=value["body"].value, status_code=int(value["status_code"].value), headers=headers)


def _http_endpoint(spec: FunctionSpec, keys: HostKeys) -> Endpoint:
    auth = str(spec.trigger.get("authLevel", "FUNCTION")).lower()

    async def endpoint(request: Request) -> Response:
        presented = presented_key(request) if auth != "anonymous" else None
        if auth == "function" and not keys.allows_function(presented):
            return _unauthorized()
        if auth == "admin" and not keys.allows_admin(presented):
            return _unauthorized()
        body = await request.body()
        http_request = decode_trigger(spec, _datum_for_request(request, body))
        try:
            result = await invoke_async(spec, http_request, trigger="http",
                                        trace_parent=request.headers.get("traceparent", ""),
                                        attributes=lambda: {
                                            "http.request.method": request.method,
                                            "url.full": str(request.url.remove_query_params("code")),
                                            "http.route": spec.trigger.get("route") or spec.name})
        except Exception:
            return JSONResponse({"error": "Internal Server Error"}, status_code=500)
        return _response_from(result)

    return endpoint


def _eventgrid_endpoint(specs: dict[str, FunctionSpec], keys: HostKeys) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        name = request.query_params.get("functionName", "")
        spec = specs.get(name)
        if spec is None:
            return JSONResponse({"error": f"no Event Grid function named {name!r}"}, status_code=404)
        if not keys.allows_eventgrid(presented_key(request)):
            return _unauthorized()
        if request.method == "OPTIONS":
            # CloudEvents webhook validation (abuse protection) handshake.
            origin = request.headers.get("webhook-request-origin", "*")
            return Response(status_code=200, headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"})
        kind = request.headers.get("aeg-event-type")
        if kind is None and "cloudevents" in request.headers.get("content-type", ""):
            kind = "Notification"
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        events = payload if isinstance(payload, list) else [payload]
        if kind == "SubscriptionValidation":
            code = events[0].get("data", {}).get("validationCode") if events and isinstance(events[0], dict) else None
            if not code:
                return JSONResponse({"error": "validation event without data.validationCode"}, status_code=400)
            return JSONResponse({"validationResponse": code})
        if kind == "Unsubscribe":
            return Response(status_code=202)
        if kind != "Notification":
            return JSONResponse({"error": f"unsupported aeg-event-type {kind!r}"}, status_code=400)
        failed = 0
        for event in events:
            try:
                value = decode_trigger(spec, Datum(json.dumps(event), "json"))
                await invoke_async(spec, value, trigger="eventGrid",
                                   trace_parent=traceparent_of(event) or request.headers.get("traceparent", ""))
            except Exception:
                failed += 1
        if failed:
            return JSONResponse({"error": f"{failed} of {len(events)} event(s) failed"}, status_code=500)
        return Response(status_code=202)

    return endpoint


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"no function serves {request.method} {request.url.path}"}, status_code=404)


def build_app(specs: list[FunctionSpec], keys: HostKeys, route_prefix: str = "api") -> Starlette:
    routes: list[Route] = []
    prefix = f"/{route_prefix.strip('/')}" if route_prefix.strip("/") else ""
    for spec in specs:
        if spec.trigger_type != "httpTrigger":
            continue
        template = str(spec.trigger.get("route") or spec.name)
        methods = [m.upper() for m in spec.trigger.get("methods") or ALL_METHODS]
        endpoint = _http_endpoint(spec, keys)
        for path in route_variants(template):
            routes.append(Route(f"{prefix}/{path.lstrip('/')}", endpoint, methods=methods, name=None))
    grid_specs = {s.name: s for s in specs if s.trigger_type == "eventGridTrigger"}
    webhook = _eventgrid_endpoint(grid_specs, keys)
    routes.append(Route("/runtime/webhooks/eventgrid", webhook, methods=["POST", "OPTIONS"]))
    return Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_found})
