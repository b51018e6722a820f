"""Start the local stack: storage (Azurite if needed), blob triggers and the HTTP server."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from devhost import azurite, telemetry_page
from devhost.blob_listener import BlobTriggerListener, RejectedBlob
from devhost.config import HostConfig, load_local_settings
from devhost.discovery import FunctionSpec, discover, load_app
from devhost.http_server import body_limit, build_app, presented_key
from devhost.keys import HostKeys, load_or_create
from devhost.queue_listener import QueueTriggerListener
from devhost.request_limits import KEEP_ALIVE_S, BodyRejected, RequestLimits, protocol, read_body
from devhost.telemetry_server import TOKEN_ENV as TELEMETRY_TOKEN_ENV
from devhost.tracing import instrumentation
from shared.page_headers import page_headers
from shared.settings import Settings
from shared.telemetry import configure as configure_telemetry
from shared.telemetry import enabled as telemetry_enabled
from shared.telemetry import shutdown as shutdown_telemetry

log = logging.getLogger("devhost")
STORAGE_SETTING = "AzureWebJobsStorage"
STORAGE_FILE = "storage.json"  # the emulator this host started, for tools
LOCAL_IKEY = "00000000-0000-0000-0000-000000000000"  # the local endpoint checks its path, not this key
FIRST_PROCESS_URL = "DEVHOST_FIRST_PROCESS_URL"  # where the extra HTTP processes forward admin requests
EXPORT_CEILING = 10_000.0  # traces/s the exporter's own sampler lets through: far above what the host samples
SWITCH_INTERVAL_SETTING = "DEVHOST_SWITCH_INTERVAL_MS"
REQUEST_TIMEOUT_SETTING = "DEVHOST_REQUEST_TIMEOUT_S"


@dataclass
class Options:
    app: str
    host: str
    port: int
    state_dir: Path
    project_root: Path
    scan_interval: float
    background_triggers: bool
    queue_visibility_s: int
    http_processes: int = 1  # processes serving HTTP on the one port (SO_REUSEPORT); triggers run in the first
    http_only: bool = False  # one of the extra HTTP processes: no triggers, no storage or telemetry set-up
    switch_interval_ms: float = 0.5  # how long a thread may keep the GIL while another waits for it
    request_timeout_s: float = 10.0  # for a request's headers, and again for its body


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEVHOST_PORT", "7071")))
    parser.add_argument("--state-dir", type=Path, default=Path(os.environ.get("DEVHOST_STATE_DIR", ".devhost")),
                        help="keys, Azurite data and other local state (git-ignored)")
    parser.add_argument("--scan-interval", type=float, default=0.25, help="seconds between blob container scans")
    parser.add_argument("--no-background-triggers", action="store_true",
                        help="scan blobs only when POST /admin/host/blobs/scan asks (deterministic tests)")
    parser.add_argument("--queue-visibility", type=int,
                        default=int(os.environ.get("DEVHOST_QUEUE_VISIBILITY_S", "30")),
                        help="seconds a received queue or blob-trigger message stays hidden; a crashed "
                             "invocation's message comes back after this")
    parser.add_argument("--http-processes", type=int, default=int(os.environ.get("DEVHOST_HTTP_PROCESSES", "1")),
                        help="processes serving HTTP on the same port (the kernel spreads connections); blob, "
                             "queue and Event Grid triggers still run in this one")
    parser.add_argument("--http-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--switch-interval-ms", type=float,
                        default=float(os.environ.get(SWITCH_INTERVAL_SETTING, "0.5")),
                        help="how long a thread may hold the GIL while the event loop waits for it (Python's "
                             "default is 5 ms)")
    parser.add_argument("--request-timeout", type=float,
                        default=float(os.environ.get(REQUEST_TIMEOUT_SETTING, "10")),
                        help="seconds a client has to send a request's headers, and again its body")
    args = parser.parse_args(argv)
    if not args.switch_interval_ms > 0:
        parser.error("--switch-interval-ms must be a positive number of milliseconds")
    if not args.request_timeout > 0:
        parser.error("--request-timeout must be a positive number of seconds")
    return Options(args.app, args.host, args.port, args.state_dir.resolve(), Path.cwd(), args.scan_interval,
                   not args.no_background_triggers, args.queue_visibility, max(1, args.http_processes),
                   args.http_only, args.switch_interval_ms, args.request_timeout)


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP listener other processes can bind too (SO_REUSEPORT: the kernel spreads new connections).

    Made with an explicit IPPROTO_TCP, so the event loop sets TCP_NODELAY on every accepted connection: a
    socket that only says SOCK_STREAM (as one rebuilt from a file descriptor does) is left with Nagle's
    algorithm on, which delays small responses by tens of milliseconds.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    listener.listen(2048)
    return listener


def serve(app: Any, options: Options, private: socket.socket | None = None) -> None:
    """Serve ``app`` on the port; with several HTTP processes, on a shared socket, and the first process also on
    ``private``, where the others forward the admin routes (only it runs the triggers)."""
    # The trigger pollers and telemetry exporters are threads: while one runs Python, a request waits for the GIL
    # until that thread blocks or its switch interval runs out (5 ms by default). A short interval bounds the
    # wait, for a few percent of the median at most (README, Measured).
    sys.setswitchinterval(options.switch_interval_ms / 1000)
    # No proxy in front of the local host: its forwarded-headers middleware would only cost time per request.
    # Anyone on the machine can connect: a request's headers, and a body answered before it was read, must
    # arrive in time (request_limits.DeadlineProtocol); idle connections close after a few seconds.
    server = uvicorn.Server(uvicorn.Config(app, host=options.host, port=options.port,
                                           http=protocol(options.request_timeout_s),
                                           timeout_keep_alive=KEEP_ALIVE_S, loop="uvloop", log_level="warning",
                                           access_log=False, lifespan="off", proxy_headers=False))
    if options.http_processes > 1:
        server.run(sockets=[listening_socket(options.host, options.port), *([private] if private else [])])
    else:
        server.run()


def request_limits(options: Options) -> RequestLimits:
    return RequestLimits(body_limit(Settings.from_env()), options.request_timeout_s)


def private_socket(host: str) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.bind((host, 0))
    listener.listen(64)
    return listener


def forwarded_admin_routes(first: str, limits: RequestLimits) -> list[Route]:
    """The admin routes of an extra HTTP process: the first process runs the triggers, so it answers them."""
    import requests

    async def forward(request: Request) -> Response:
        try:
            body = await read_body(request, limits.body_bytes, limits.timeout_s)
        except BodyRejected as rejected:
            return rejected.response()
        answer = await asyncio.to_thread(requests.request, request.method, f"{first}{request.url.path}",
                                         headers={k: v for k, v in request.headers.items() if k != "host"},
                                         data=body, timeout=120)
        return Response(answer.content, status_code=answer.status_code,
                        media_type=answer.headers.get("content-type"))

    return [Route("/admin/host/blobs/scan", forward, methods=["POST"]),
            Route("/admin/host/status", forward, methods=["GET"])]


def start_http_processes(options: Options, argv: list[str] | None) -> list[subprocess.Popen[bytes]]:
    """The extra HTTP processes: the same app, keys and settings (inherited environment), no triggers."""
    args = [sys.executable, "-m", "devhost", *(sys.argv[1:] if argv is None else argv), "--http-only"]
    return [subprocess.Popen(args, cwd=options.project_root) for _ in range(options.http_processes - 1)]


def serve_http_only(options: Options) -> int:
    """An extra HTTP process: serves the function app's routes beside the first process, on the same port."""
    configure_telemetry(os.environ.get("OTEL_SERVICE_NAME", "function-app"), traces_per_second=EXPORT_CEILING)
    config = HostConfig.read(options.project_root / "host.json")
    keys = load_or_create(options.state_dir / "keys.json")
    specs = discover(load_app(options.app))
    limits = request_limits(options)
    app = build_app(specs, keys, config.route_prefix, limits)
    for route in [*forwarded_admin_routes(os.environ[FIRST_PROCESS_URL], limits),
                  telemetry_page_route(options.state_dir / "telemetry.db", keys)]:
        app.router.routes.append(route)
    try:
        serve(app, options)
    finally:
        shutdown_telemetry()
    return 0


def ensure_storage(options: Options) -> azurite.Azurite | None:
    """Use the configured storage when it answers; otherwise start Azurite and point the app at it.

    A loopback emulator connection string that does not answer is started on its
    own ports; with no setting at all, Azurite takes its usual ports (or free ones).
    """
    configured = azurite.expand(os.environ.get(STORAGE_SETTING) or "UseDevelopmentStorage=true")
    endpoint = azurite.blob_endpoint(configured)
    if endpoint and azurite.port_open(*endpoint):
        os.environ[STORAGE_SETTING] = configured
        log.info("Using the storage at %s:%s", *endpoint)
        return None
    ports = azurite.emulator_ports(configured)
    if ports is None:
        raise SystemExit(f"The storage in {STORAGE_SETTING} does not answer at {endpoint}; fix the setting or unset it")
    if ports == azurite.DEFAULT_PORTS:
        ports = azurite.pick_ports()
    emulator = azurite.Azurite(azurite.find_binary(options.project_root), options.state_dir / "azurite", ports)
    emulator.start()
    os.environ[STORAGE_SETTING] = emulator.connection_string
    # Where tools (``cli upload``) find this emulator when it could not take the usual ports. Its account key is
    # the emulator's published one: no secret is written.
    (options.state_dir / STORAGE_FILE).write_text(json.dumps({"connection": emulator.connection_string}))
    return emulator


def admin_routes(listener: BlobTriggerListener | None, queues: QueueTriggerListener | None, specs: list[FunctionSpec],
                 keys: HostKeys) -> list[Route]:
    async def scan(request: Request) -> Response:
        if not keys.allows_admin(presented_key(request)):
            return JSONResponse({"error": "Unauthorized: the master key is required"}, status_code=401)
        queued = await asyncio.to_thread(listener.scan_once) if listener else 0
        handled = await asyncio.to_thread(listener.drain_once) if listener else 0
        messages = 0
        for spec in queues.specs if queues else []:
            messages += await asyncio.to_thread(queues.drain_once, spec) if queues else 0
        return JSONResponse({"queued": queued, "handled": handled, "messages": messages})

    async def status(request: Request) -> Response:
        if not keys.allows_admin(presented_key(request)):
            return JSONResponse({"error": "Unauthorized: the master key is required"}, status_code=401)
        return JSONResponse({"state": "Running",
                             "functions": [{"name": s.name, "trigger": s.trigger_type} for s in specs]})

    return [Route("/admin/host/blobs/scan", scan, methods=["POST"]),
            Route("/admin/host/status", status, methods=["GET"])]


def telemetry_page_route(store_path: Path, keys: HostKeys) -> Route:
    async def page(request: Request) -> Response:
        if not keys.allows_function(presented_key(request)):
            return JSONResponse({"error": "Unauthorized: a function key is required"}, status_code=401)
        # The page prints what the store holds: the browser is told to run no script on it, whatever slips in.
        return HTMLResponse(await asyncio.to_thread(telemetry_page.render, store_path), headers=page_headers())

    return Route("/telemetry", page, methods=["GET"])


def local_telemetry(options: Options) -> subprocess.Popen[bytes] | None:
    """Start the local ingestion endpoint and point the exporter at it, unless a real connection string is set
    (or telemetry is off).

    The endpoint takes writes only under a random path, which this host's processes learn from the connection
    string in their environment and the endpoint from its own: never from a command line, which ``ps`` shows.
    """
    if os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING") or not telemetry_enabled():
        return None
    port = azurite.free_port()
    token = secrets.token_urlsafe(32)
    server = subprocess.Popen([sys.executable, "-m", "devhost.telemetry_server", "--port", str(port),
                               "--db", str(options.state_dir / "telemetry.db"),
                               "--request-timeout", str(options.request_timeout_s)],
                              env={**os.environ, TELEMETRY_TOKEN_ENV: token}, start_new_session=True)
    deadline = time.monotonic() + 30
    while not azurite.port_open("127.0.0.1", port):
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the local telemetry endpoint did not start")
        time.sleep(0.05)
    os.environ["APPLICATIONINSIGHTS_CONNECTION_STRING"] = (
        f"InstrumentationKey={LOCAL_IKEY};IngestionEndpoint=http://127.0.0.1:{port}/{token}")
    # Short export intervals: local users want to see their telemetry within a second or two.
    for name, value in (("OTEL_BSP_SCHEDULE_DELAY", "500"), ("OTEL_BLRP_SCHEDULE_DELAY", "500"),
                        ("OTEL_METRIC_EXPORT_INTERVAL", "5000")):
        os.environ.setdefault(name, value)
    return server


def _banner(options: Options, specs: list[FunctionSpec], config: HostConfig, keys: HostKeys) -> str:
    base = f"http://{options.host}:{options.port}"
    lines = ["", "Functions:"]
    for spec in specs:
        if spec.trigger_type == "httpTrigger":
            methods = ",".join(spec.trigger.get("methods") or ["ANY"])
            route = spec.trigger.get("route") or spec.name
            lines.append(f"  {spec.name}: [{methods}] {base}/{config.route_prefix}/{route}")
        elif spec.trigger_type == "eventGridTrigger":
            lines.append(f"  {spec.name}: eventGridTrigger "
                         f"{base}/runtime/webhooks/eventgrid?functionName={spec.name}")
        else:
            lines.append(f"  {spec.name}: {spec.trigger_type} {spec.trigger.get('path', '')}")
    # The key goes to a terminal only: logs (files, CI output) never hold it.
    shown = keys.function if sys.stdout.isatty() else "(in the keys file; printed only to a terminal)"
    lines += ["", f"Function key (x-functions-key): {shown}", f"Keys file: {options.state_dir / 'keys.json'}", ""]
    return "\n".join(lines)


def record_rejected_blob(rejected: RejectedBlob) -> None:
    """A blob the host cannot read is never invoked: an upload among them is recorded rejected with the reason, as
    ingest records a bad file, so that /api/status and telemetry show it (the listener has logged it already)."""
    from shared import telemetry
    from shared.backend import get_backend
    from shared.ingest import UPLOADS_CONTAINER, reject_unreadable

    if rejected.container != UPLOADS_CONTAINER:
        return
    with instrumentation(enabled=True), telemetry.span(f"{rejected.function}: unreadable blob"):
        reject_unreadable(rejected.name, rejected.etag, rejected.reason, get_backend())


def _stop_training_worker() -> None:
    """The local training worker (and its forkserver) stops with the host; an interrupted run resumes at the
    next start."""
    from shared.backend import stop_background_work

    pid = stop_background_work(Settings.from_env())
    if pid is not None:
        log.info("Training worker %s stopped", pid)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # uvicorn re-raises the signal it caught once it has shut down; turning it into
    # SystemExit lets the finally block below stop the blob listener and Azurite.
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    logging.basicConfig(level=os.environ.get("DEVHOST_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The storage SDK logs every request at INFO: far too much for a console.
    logging.getLogger("azure").setLevel(logging.WARNING)
    # Its one warning is for an error without a body, as Azurite's 500 for a name it cannot list: the blob listing
    # asks for hundreds of those while it looks for the name, and reports the name itself.
    logging.getLogger("azure.storage.blob._shared.response_handlers").setLevel(logging.ERROR)
    # Invocation lines go to the console only: each invocation is already exported as a Request.
    invocations = logging.getLogger("devhost.invocations")
    invocations.propagate = False
    console = logging.StreamHandler()
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    invocations.addHandler(console)
    sys.path.insert(0, str(options.project_root))
    load_local_settings(options.project_root / "local.settings.json")
    try:  # a bad setting stops the host here, with its name, rather than failing every invocation later
        Settings.from_env()
    except ValueError as error:
        raise SystemExit(f"Cannot start: {error}") from None
    if options.http_only:
        return serve_http_only(options)
    config = HostConfig.read(options.project_root / "host.json")
    keys = load_or_create(options.state_dir / "keys.json")
    emulator = ensure_storage(options)
    # Where local services (the training worker) deliver Event Grid events.
    os.environ["DEVHOST_URL"] = f"http://{options.host}:{options.port}"
    os.environ["DEVHOST_EVENTGRID_KEY"] = keys.eventgrid
    listener: BlobTriggerListener | None = None
    queues: QueueTriggerListener | None = None
    extra: list[subprocess.Popen[bytes]] = []
    telemetry_server = local_telemetry(options)
    # The host samples invocations itself, per function (devhost.request_sampling): what it traces goes out whole.
    configure_telemetry(os.environ.get("OTEL_SERVICE_NAME", "function-app"), traces_per_second=EXPORT_CEILING)
    try:
        specs = discover(load_app(options.app))
        conn = os.environ[STORAGE_SETTING]
        # Few, quick retries: the listeners poll anyway, and an outage should show in the log at once.
        retries: dict[str, Any] = {"retry_total": 1, "retry_backoff_factor": 0.2, "connection_timeout": 5}
        if any(s.trigger_type == "queueTrigger" for s in specs):
            queues = QueueTriggerListener(
                QueueServiceClient.from_connection_string(conn, **retries), specs,
                max_dequeue_count=config.max_dequeue_count, retry_delay_s=config.retry_delay_s,
                visibility_timeout_s=options.queue_visibility_s, max_polling_interval_s=config.max_polling_interval_s,
                batch_size=config.queue_batch_size)
            queues.prepare()
            if options.background_triggers:
                queues.start()
        if any(s.trigger_type == "blobTrigger" for s in specs):
            listener = BlobTriggerListener(
                # Downloads go to disk in ranges of this size: the host never holds more of an upload at once.
                BlobServiceClient.from_connection_string(conn, max_single_get_size=4 << 20,
                                                         max_chunk_get_size=4 << 20, **retries),
                QueueServiceClient.from_connection_string(conn, **retries),
                specs, os.environ.get("AzureFunctionsWebHost__hostid", "localdevhost"),
                max_dequeue_count=config.max_dequeue_count, retry_delay_s=config.retry_delay_s,
                visibility_timeout_s=options.queue_visibility_s,
                max_parallel=config.max_parallel_blobs, poll_interval_s=options.scan_interval,
                on_rejected=record_rejected_blob, spool_dir=options.state_dir / "blobs",
            )
            listener.prepare()
            if options.background_triggers:
                listener.start()
        app = build_app(specs, keys, config.route_prefix, request_limits(options))
        telemetry_route = telemetry_page_route(options.state_dir / "telemetry.db", keys)
        for route in [*admin_routes(listener, queues, specs, keys), telemetry_route]:
            app.router.routes.append(route)
        print(_banner(options, specs, config, keys), flush=True)
        private = None
        if options.http_processes > 1:
            private = private_socket(options.host)
            os.environ[FIRST_PROCESS_URL] = f"http://{options.host}:{private.getsockname()[1]}"
            extra = start_http_processes(options, argv)
        log.info("Host started: http://%s:%s, %d HTTP process(es) (Ctrl-C to stop)", options.host, options.port,
                 options.http_processes)
        serve(app, options, private)
    finally:
        for process in extra:
            process.terminate()
        for process in extra:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if listener is not None:
            listener.stop()
        if queues is not None:
            queues.stop()
        _stop_training_worker()
        if emulator is not None:
            emulator.stop()
        log.info("Host stopped")
        if telemetry_server is not None:
            shutdown_telemetry()  # while the endpoint still listens: nothing is left to send at exit
            telemetry_server.terminate()
            telemetry_server.wait(timeout=10)
    return 0
