"""The HTTP face of the host: HTTP triggers under the route prefix and the Event Grid webhook."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import azure.functions as func
from azure.functions.meta import Datum
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from devhost.discovery import FunctionSpec, route_variants
from devhost.invoker import decode_trigger, encode_http_response, invoke_async
from devhost.keys import HostKeys
from devhost.request_limits import BodyRejected, RequestLimits, read_body
from devhost.tracing import traceparent_of
from shared.settings import Settings

log = logging.getLogger("devhost.http")

ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
Endpoint = Callable[[Request], Awaitable[Response]]
EVENT_GRID_MAX_BYTES = 1024 * 1024  # Event Grid delivers at most 1 MB in one request


def body_limit(settings: Settings) -> int:
    """The largest body the host reads: the largest any function takes (a scoring request, an Event Grid
    delivery). Larger ones are answered 413 before they are read."""
    return max(settings.max_score_bytes, EVENT_GRID_MAX_BYTES)


def key_in(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    # The real host gives the header precedence over the query string.
    return headers.get("x-functions-key") or query.get("code")


def presented_key(request: Request) -> str | None:
    return key_in(request.headers, request.query_params)


def _unauthorized() -> Response:
    return JSONResponse({"error": "Unauthorized: a function key is required (x-functions-key header or code query)"},
                        status_code=401)


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (ASGI gives them so), repeated ones joined with ", "."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _query(scope: Scope) -> dict[str, str]:
    query: bytes = scope.get("query_string", b"")
    return dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)) if query else {}


def _url(scope: Scope, headers: dict[str, str]) -> str:
    """The URL the caller asked for, as Starlette's ``request.url`` spells it, without building a URL object."""
    host = headers.get("host")
    if host is None:
        server_host, port = scope.get("server") or ("localhost", 80)
        host = server_host if port in (80, 443) else f"{server_host}:{port}"
    url = f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}{scope['path']}"
    query: bytes = scope.get("query_string", b"")
    return f"{url}?{query.decode('latin-1')}" if query else url


def _response_from(result: Any) -> Response:
    """The function's return value as the worker would send it (``azure.functions``' own rules, applied directly:
    a str is text, an HttpResponse keeps its status, every header, each Set-Cookie, and gets a content type)."""
    if result is None:
        return Response(status_code=204)
    if isinstance(result, func.HttpResponse):
        body = result.get_body() or b""
        raw: list[tuple[bytes, bytes]] = [(b"content-length", str(len(body)).encode())]
        typed = False
        for name, value in result.headers.items():
            key = name.lower()
            typed = typed or key == "content-type"
            if key != "content-length":
                raw.append((key.encode("latin-1"), str(value).encode("latin-1")))
        if not typed:
            kind = result.mimetype
            raw.append((b"content-type", (f"{kind}; charset={result.charset}" if kind.startswith("text/")
                                          else kind).encode("latin-1")))
        response = Response(status_code=result.status_code)
        response.body, response.raw_headers = body, raw
        return response
    encoded = encode_http_response(result)  # a str, or a type the library refuses with its own error
    return Response(encoded.value, media_type="text/plain; charset=utf-8")


def _http_endpoint(spec: FunctionSpec, keys: HostKeys, limits: RequestLimits) -> Endpoint:
    auth = str(spec.trigger.get("authLevel", "FUNCTION")).lower()
    route = str(spec.trigger.get("route") or spec.name)

    async def endpoint(request: Request) -> Response:
        scope = request.scope
        headers, query = _headers(scope), _query(scope)
        presented = key_in(headers, query) if auth != "anonymous" else None
        if auth == "function" and not keys.allows_function(presented):
            return _unauthorized()
        if auth == "admin" and not keys.allows_admin(presented):
            return _unauthorized()
        try:
            body = await read_body(request, limits.body_bytes, limits.timeout_s, headers)
        except BodyRejected as rejected:
            return rejected.response()
        # The request object the worker would build (azure.functions' own class), straight from the ASGI scope.
        http_request = func.HttpRequest(scope["method"], _url(scope, headers), headers=headers, params=query,
                                        route_params={k: str(v) for k, v in scope.get("path_params", {}).items()},
                                        body=body)
        try:
            result = await invoke_async(spec, http_request, trigger="http",
                                        trace_parent=headers.get("traceparent", ""),
                                        attributes=lambda: {
                                            "http.request.method": scope["method"],
                                            "url.full": str(request.url.remove_query_params("code")),
                                            "http.route": route})
        except Exception:
            return JSONResponse({"error": "Internal Server Error"}, status_code=500)
        return _response_from(result)

    return endpoint


def _eventgrid_endpoint(specs: dict[str, FunctionSpec], keys: HostKeys, limits: RequestLimits) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        # The key first: a caller without it learns nothing, not even which functions exist.
        if not keys.allows_eventgrid(presented_key(request)):
            return _unauthorized()
        name = request.query_params.get("functionName", "")
        spec = specs.get(name)
        if spec is None:
            return JSONResponse({"error": f"no Event Grid function named {name!r}"}, status_code=404)
        if request.method == "OPTIONS":
            # CloudEvents webhook validation (abuse protection) handshake.
            origin = request.headers.get("webhook-request-origin", "*")
            return Response(status_code=200, headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"})
        kind = request.headers.get("aeg-event-type")
        if kind is None and "cloudevents" in request.headers.get("content-type", ""):
            kind = "Notification"
        try:
            events = _events(await read_body(request, limits.body_bytes, limits.timeout_s))
        except BodyRejected as rejected:
            return rejected.response()
        if kind == "SubscriptionValidation":
            data = events[0].get("data") if events else None
            code = data.get("validationCode") if isinstance(data, dict) else None
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


def _events(body: bytes) -> list[dict[str, Any]]:
    """The delivered events: one JSON object or an array of them."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise BodyRejected(400, "the body is not JSON, or nests too deep") from None
    events = payload if isinstance(payload, list) else [payload]
    if not all(isinstance(event, dict) for event in events):
        raise BodyRejected(400, "each event must be a JSON object")
    return events


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"no function serves {request.method} {request.url.path}"}, status_code=404)


class HostApp:
    """The host's ASGI app: Starlette's router and middleware for every route, and a direct way to HTTP functions
    on fixed paths (no parameters), the hot ones such as ``/api/score``: a dictionary lookup instead of a
    regular expression per route and three middleware layers. As in Azure, a fixed path wins over a template."""

    def __init__(self, app: Starlette, fixed: dict[str, tuple[frozenset[str], Endpoint]]) -> None:
        self.app = app
        self.fixed = fixed

    @property
    def router(self) -> Router:
        return self.app.router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            direct = self.fixed.get(scope["path"])
            if direct is not None and scope["method"] in direct[0]:
                response = await direct[1](Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(specs: list[FunctionSpec], keys: HostKeys, route_prefix: str = "api",
              limits: RequestLimits | None = None) -> HostApp:
    limits = limits or RequestLimits(body_limit(Settings.from_env()))
    routes: list[Route] = []
    fixed: dict[str, tuple[frozenset[str], Endpoint]] = {}
    prefix = f"/{route_prefix.strip('/')}" if route_prefix.strip("/") else ""
    for spec in specs:
        if spec.trigger_type != "httpTrigger":
            continue
        template = str(spec.trigger.get("route") or spec.name)
        methods = [m.upper() for m in spec.trigger.get("methods") or ALL_METHODS]
        endpoint = _http_endpoint(spec, keys, limits)
        for path in route_variants(template):
            full = f"{prefix}/{path.lstrip('/')}"
            routes.append(Route(full, endpoint, methods=methods, name=None))
            if "{" not in full:
                fixed[full] = (frozenset(methods), endpoint)
    grid_specs = {s.name: s for s in specs if s.trigger_type == "eventGridTrigger"}
    webhook = _eventgrid_endpoint(grid_specs, keys, limits)
    routes.append(Route("/runtime/webhooks/eventgrid", webhook, methods=["POST", "OPTIONS"]))
    return HostApp(Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_found}), fixed)
