"""Where a 1-row request's time goes: in the app, in the model, or outside the app (kernel, HTTP server, client).

Trains a model on the real stack (as ``scoring_latency``), then, on that model:
- calls the host's ASGI app and the floor's (``benchmarks/floor_server.py``)
  directly in this process, no sockets, request after request, and ONNX
  Runtime alone on the same inputs: medians per request, alternating rounds;
- measures both servers over loopback with wrk at concurrency 1.
The wire's median minus the in-process median is what no change to the app
can reach. Both hosts run without telemetry (its cost is measured by
``scoring_latency``'s on/off rounds). Needs ``wrk``. Run: ``make bench-request-cost``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import pandas as pd
import requests

from benchmarks.common import dataset_bytes
from benchmarks.scoring_latency import serving_host, start_floor, train_model, wrk

ROUNDS = 5
REQUESTS_PER_ROUND = 3000
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def scope_for(path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [*headers, (b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}


async def per_request_us(app: App, scope: dict[str, Any], body: bytes, count: int) -> list[float]:
    """Each request's time through ``app``, as uvicorn would call it, answers checked."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    times = []
    for _ in range(count):
        sent.clear()
        started = time.perf_counter_ns()
        await app(dict(scope), receive, send)
        times.append((time.perf_counter_ns() - started) / 1000)
        if sent[0]["status"] != 200:
            raise RuntimeError(f"the app answered {sent[0]['status']}: {sent[-1].get('body', b'')[:200]!r}")
    return times


def model_us(artifact_dir: str, row: dict[str, Any], count: int) -> list[float]:
    from shared import scoring
    from shared.local import artifacts

    model = artifacts.load(artifact_dir)
    columns, _ = scoring.columns_for([row], model.signature)
    times = []
    for _ in range(count):
        started = time.perf_counter_ns()
        model.predict(columns)
        times.append((time.perf_counter_ns() - started) / 1000)
    return times


def in_process(work: Path, artifact_dir: str, row: dict[str, Any]) -> dict[str, float]:
    """Median microseconds per request: host app, floor app, the model alone (alternating rounds, medians)."""
    os.environ["LOCAL_STATE_DIR"] = str(work / "localstack")
    os.environ["TELEMETRY_ENABLED"] = "false"
    from benchmarks.floor_server import app_for
    from devhost.discovery import discover, load_app
    from devhost.http_server import build_app
    from devhost.keys import load_or_create

    keys = load_or_create(work / "keys-in-process.json")
    host_app = build_app(discover(load_app("function_app:app")), keys, "api")
    floor_app = app_for(Path(artifact_dir))
    body = json.dumps({"data": [row]}).encode()
    typed = [(b"content-type", b"application/json")]
    host_scope = scope_for("/api/score", body, [*typed, (b"x-functions-key", keys.function.encode())])
    floor_scope = scope_for("/score", body, typed)
    rounds: dict[str, list[float]] = {"host app": [], "floor app": [], "model alone": []}

    async def measure() -> None:
        for app, scope in ((host_app, host_scope), (floor_app, floor_scope)):
            await per_request_us(app, scope, body, 300)  # load the model, warm up
        for _ in range(ROUNDS):
            rounds["host app"].append(statistics.median(
                await per_request_us(host_app, host_scope, body, REQUESTS_PER_ROUND)))
            rounds["floor app"].append(statistics.median(
                await per_request_us(floor_app, floor_scope, body, REQUESTS_PER_ROUND)))
            rounds["model alone"].append(statistics.median(model_us(artifact_dir, row, REQUESTS_PER_ROUND)))

    asyncio.run(measure())
    return {name: statistics.median(values) for name, values in rounds.items()}


def main() -> int:
    content, source = dataset_bytes()
    frame = pd.read_csv(BytesIO(content)).drop(columns=["y"])
    row = json.loads(frame.head(1).to_json(orient="records"))[0]
    body = json.dumps({"data": [row]})
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        trainer, emulator, artifact_dir = train_model(work, content)
        trainer.stop()
        # Telemetry off on both sides of the comparison: the in-process app runs without it.
        host = serving_host(work, emulator.connection_string, "telemetry-off", {"TELEMETRY_ENABLED": "false"})
        floor, floor_port = start_floor(artifact_dir)
        try:
            key = {"x-functions-key": host.function_key, "Content-Type": "application/json"}
            for _ in range(300):  # load the model, warm up
                requests.post(f"{host.url}/api/score", data=body, headers=key, timeout=30).raise_for_status()
            wire: dict[str, list[float]] = {"host": [], "floor": []}
            for _ in range(3):
                wire["host"].append(wrk(f"{host.url}/api/score", body, key, 1, work)["p50_ms"] * 1000)
                wire["floor"].append(wrk(f"http://127.0.0.1:{floor_port}/score", body,
                                         {"Content-Type": "application/json"}, 1, work)["p50_ms"] * 1000)
            host.stop()  # its pollers would share this process's cores
            inside = in_process(work, artifact_dir, row)
        finally:
            floor.terminate()
            host.stop()
            emulator.stop()
    model = inside["model alone"]
    print(f"Data: {source}; 1-row requests, medians in microseconds ({os.cpu_count()} cores)")
    print(f"{'server':<8} {'over loopback (wrk, c1)':>24} {'in the app':>11} {'of it, the model':>17} "
          f"{'the rest of the app':>20} {'outside the app':>16}")
    for name in ("host", "floor"):
        total, app = statistics.median(wire[name]), inside[f"{name} app"]
        print(f"{name:<8} {total:>24.0f} {app:>11.0f} {model:>17.0f} {app - model:>20.0f} {total - app:>16.0f}")
    print(f"the host's own work beyond the floor's, in process: {inside['host app'] - inside['floor app']:.0f} us "
          f"(key, validation, invocation, drift, the function's request and response objects)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
