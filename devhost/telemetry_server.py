"""``python -m devhost.telemetry_server``: the local Application Insights ingestion endpoint, in its own process.

It answers the track API as the service does and writes envelopes to SQLite,
so the host's request path never pays for ingesting its own telemetry.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devhost.telemetry_store import TelemetryStore


def build(store: TelemetryStore) -> Starlette:
    async def track(request: Request) -> Response:
        try:
            envelopes = TelemetryStore.parse(await request.body(), request.headers.get("content-encoding"))
        except (ValueError, OSError) as error:
            return JSONResponse({"itemsReceived": 0, "itemsAccepted": 0,
                                 "errors": [{"index": 0, "statusCode": 400, "message": str(error)}]}, status_code=400)
        accepted = await asyncio.to_thread(store.add, envelopes)
        return JSONResponse({"itemsReceived": len(envelopes), "itemsAccepted": accepted, "errors": []})

    routes = [Route("/v2.1/track", track, methods=["POST"]), Route("/v2/track", track, methods=["POST"])]
    return Starlette(routes=routes)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost.telemetry_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True)
    args = parser.parse_args()
    uvicorn.run(build(TelemetryStore(args.db)), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False, http="httptools")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
