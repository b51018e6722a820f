"""What one client may cost the development host: anyone on the machine can connect to its port, so bodies are
bounded before they are read, slow clients are cut off, and the webhook says nothing to a caller without its key."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devhost.process import HostProcess, wait_for

pytestmark = pytest.mark.integration
SAMPLE = "tests.fixtures.sample_app:app"
LIMIT = 1024 * 1024  # MAX_SCORE_BYTES below; Event Grid's 1 MB is the floor of the host's limit
TIMEOUT_S = 1  # DEVHOST_REQUEST_TIMEOUT_S: short, so that the slow clients below are cut off soon


@pytest.fixture()
def host(state_dir: Path, azurite_conn: str) -> Iterator[HostProcess]:
    process = HostProcess(state_dir, azurite_conn, app=SAMPLE, env={
        "MAX_SCORE_BYTES": str(LIMIT), "DEVHOST_REQUEST_TIMEOUT_S": str(TIMEOUT_S), "TELEMETRY_ENABLED": "false"})
    yield process
    process.stop()


def connect(host: HostProcess) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", host.port), timeout=30)  # the timeout only catches a hang
    return raw


def answer_of(raw: socket.socket) -> tuple[int, bytes]:
    """The status and body of the one answer on ``raw``, read until the host closes or the body is complete."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = raw.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(
        b"content-length:")), 0)
    while len(body) < length:
        chunk = raw.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split(b" ")[1]), body


def closed_by_host(raw: socket.socket) -> bool:
    """True once the host has closed ``raw`` (whatever it sent before)."""
    try:
        while raw.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


def post_head(host: HostProcess, path: str, length: int | None, key: bool = True) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{host.port}", "Content-Type: application/json"]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    if key:
        lines.append(f"x-functions-key: {host.function_key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_body_declared_too_large_is_refused_before_it_is_read(host: HostProcess):
    with connect(host) as raw:
        raw.sendall(post_head(host, "/api/echo/big", 512 * 1024 * 1024))
        raw.sendall(b"x" * 65536)  # the rest never comes: the answer must not wait for it
        status, body = answer_of(raw)
    assert status == 413 and "larger than" in json.loads(body)["error"]


def test_a_streamed_body_is_read_no_further_than_the_limit(host: HostProcess):
    chunk = b"x" * 65536
    with connect(host) as raw:
        raw.sendall(post_head(host, "/api/echo/big", None))
        for _ in range(LIMIT // len(chunk) + 2):  # past the limit, and no final chunk
            raw.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        status, body = answer_of(raw)
    assert status == 413 and "larger than" in json.loads(body)["error"]
    small = requests.post(f"{host.url}/api/echo/ok", data=b"y" * 1000, headers={"x-functions-key": host.function_key},
                          timeout=30)
    assert small.status_code == 200 and small.json()["body"] == "y" * 1000


def test_slow_and_silent_clients_are_cut_off(host: HostProcess):
    silent = [connect(host) for _ in range(3)]
    half_headers = [connect(host) for _ in range(3)]
    for raw in half_headers:
        raw.sendall(f"POST /api/echo/slow HTTP/1.1\r\nHost: 127.0.0.1:{host.port}\r\nContent-".encode())
    half_body = connect(host)
    half_body.sendall(post_head(host, "/api/echo/slow", 1000) + b"[1,")
    keyless = connect(host)
    keyless.sendall(post_head(host, "/api/echo/slow", 1000, key=False) + b"[1,")
    for raw in silent + half_headers:
        assert closed_by_host(raw)
    status, body = answer_of(half_body)
    assert status == 408 and "did not arrive" in json.loads(body)["error"]
    assert closed_by_host(half_body)
    assert answer_of(keyless)[0] == 401 and closed_by_host(keyless)  # answered, and then not kept waiting for
    for raw in [*silent, *half_headers, half_body, keyless]:
        raw.close()
    assert requests.get(f"{host.url}/api/ping", timeout=30).text == "pong"


def test_a_client_that_hangs_up_mid_body_costs_one_line_of_log(host: HostProcess):
    for path in ("/api/echo/gone", "/api/echo/gone", "/api/echo/x%0aFORGED%20line"):
        with connect(host) as raw:
            raw.sendall(post_head(host, path, 100_000) + b"x" * 1000)
    wait_for(lambda: host.log_text().count("went away") >= 3, timeout=60, what="the host to notice")
    log = host.log_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log
    assert all(len(line) < 300 for line in log.splitlines() if "went away" in line)
    assert not [line for line in log.splitlines() if line.startswith("FORGED")]  # a path cannot forge a line


def _grid(host: HostProcess, body: bytes, function: str = "on_event", key: str | None = None,
          kind: str = "Notification") -> requests.Response:
    headers = {"aeg-event-type": kind, "content-type": "application/json"}
    if key:
        headers["x-functions-key"] = key
    return requests.post(f"{host.url}/runtime/webhooks/eventgrid", params={"functionName": function}, data=body,
                         headers=headers, timeout=30)


def test_the_webhook_names_no_function_to_a_caller_without_its_key(host: HostProcess):
    for function in ("on_event", "nope", ""):
        answer = _grid(host, b"[]", function)
        assert answer.status_code == 401 and "on_event" not in answer.text and "nope" not in answer.text
    assert _grid(host, b"[]", "nope", key=host.eventgrid_key).status_code == 404


def test_hostile_json_on_the_webhook_is_a_bad_request(host: HostProcess):
    deep = b"[" * 5000 + b"]" * 5000
    for kind in ("Notification", "SubscriptionValidation"):
        assert _grid(host, deep, key=host.eventgrid_key, kind=kind).status_code == 400
    assert _grid(host, b"[1, 2]", key=host.eventgrid_key).status_code == 400
    assert _grid(host, b'[{"data": "text"}]', key=host.eventgrid_key, kind="SubscriptionValidation").status_code == 400
    assert _grid(host, b'[]', key=host.eventgrid_key, kind="SubscriptionValidation").status_code == 400
    assert "Traceback" not in host.log_text()
