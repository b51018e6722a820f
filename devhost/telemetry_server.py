"""``python -m devhost.telemetry_server``: the local Application Insights ingestion endpoint, in its own process.

It answers the track API as the service does and writes envelopes to SQLite,
so the host's request path never pays for ingesting its own telemetry.

Its port shows in ``ps`` and anyone on the machine can connect to it, so it takes writes only under a path made of
a random token the host hands its own processes in the connection string (``IngestionEndpoint=http://127.0.0.1:
PORT/TOKEN``: the exporter posts to ``/TOKEN/v2.1/track``), and the token reaches this process through its
environment, never its command line. Bodies are bounded before and after decompression, and per request.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import os
import zlib
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devhost.request_limits import DEFAULT_TIMEOUT_S, KEEP_ALIVE_S, BodyRejected, protocol, read_body
from devhost.telemetry_store import TelemetryStore

TOKEN_ENV = "DEVHOST_TELEMETRY_TOKEN"  # noqa: S105 - the variable's name; its value comes from the host
MAX_BODY_BYTES = 4 * 1024 * 1024  # as sent, and again once inflated: a batch of the exporter's is well under 1 MB
MAX_ITEMS = 5_000  # envelopes in one request (the exporter sends at most 512 spans or records at a time)
JSON_TYPES = ("application/json", "application/x-json-stream")


def inflate(body: bytes, limit: int) -> bytes:
    """A gzip body inflated a piece at a time, stopping at ``limit`` bytes: a small bomb never grows in memory."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise BodyRejected(400, "the body is not gzip") from None
    if len(out) > limit:
        raise BodyRejected(413, f"the body inflates to more than {limit:,} bytes")
    if not inflater.eof or inflater.unused_data:
        raise BodyRejected(400, "the gzip stream is cut short or followed by other data")
    return out


def envelopes_in(body: bytes) -> list[Any]:
    """A JSON array of envelopes, or one envelope a line; at most ``MAX_ITEMS`` of them."""
    try:
        text = body.decode("utf-8").strip()
        lines = [] if text.startswith("[") else [line for line in text.splitlines() if line.strip()]
        if len(lines) > MAX_ITEMS:
            raise BodyRejected(413, f"more than {MAX_ITEMS:,} envelopes in one request")
        items = json.loads(text) if text.startswith("[") else [json.loads(line) for line in lines]
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise BodyRejected(400, "the body is not JSON, or nests too deep") from None
    if len(items) > MAX_ITEMS:
        raise BodyRejected(413, f"more than {MAX_ITEMS:,} envelopes in one request")
    return list(items)


def _answer(received: int, accepted: int, errors: list[tuple[int, int, str]], status: int) -> Response:
    """The service's answer: what was received and accepted, and an error for each item refused."""
    return JSONResponse({"itemsReceived": received, "itemsAccepted": accepted,
                         "errors": [{"index": i, "statusCode": code, "message": why} for i, code, why in errors]},
                        status_code=status)


def build(store: TelemetryStore, token: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Starlette:
    expected = token.encode()

    async def track(request: Request) -> Response:
        if not hmac.compare_digest(str(request.path_params["token"]).encode(), expected):
            return JSONResponse({"error": "Not Found"}, status_code=404)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if media not in JSON_TYPES or encoding not in ("identity", "gzip"):
            return _answer(0, 0, [(0, 415, "the body must be JSON, plain or gzip")], 415)
        try:
            body = await read_body(request, MAX_BODY_BYTES, timeout_s)
            envelopes = envelopes_in(inflate(body, MAX_BODY_BYTES) if encoding == "gzip" else body)
        except BodyRejected as rejected:
            return _answer(0, 0, [(0, rejected.status, str(rejected))], rejected.status)
        stored = await asyncio.to_thread(store.add, envelopes)
        errors = [(index, 400, why) for index, why in stored.refused]
        status = 200 if not errors else 206 if stored.accepted else 400
        return _answer(len(envelopes), stored.accepted, errors, status)

    routes = [Route(f"/{{token}}/{version}/track", track, methods=["POST"]) for version in ("v2.1", "v2")]
    return Starlette(routes=routes)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost.telemetry_server",
                                     epilog=f"The write token comes from the environment, in {TOKEN_ENV}.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--request-timeout", type=float, default=DEFAULT_TIMEOUT_S)
    args = parser.parse_args()
    token = os.environ.pop(TOKEN_ENV, "")
    if len(token) < 32:
        parser.error(f"{TOKEN_ENV} must hold the write token the host made (32 characters or more)")
    app = build(TelemetryStore(args.db), token, args.request_timeout)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                http=protocol(args.request_timeout), timeout_keep_alive=KEEP_ALIVE_S)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
