"""RunCompleted deliveries that fail say why without the Event Grid system key: a URL in an HTTP library's error
text once carried it (``code=<key>``) into the training worker's log."""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.local.event_outbox import deliver_pending
from shared.local.events import without_urls
from shared.ports import RunInfo
from shared.settings import Settings

KEY = "system-key-that-must-stay-secret"
RUN = RunInfo("run-1", "bank", "bank", 1, "accuracy", "completed")


class _Pending:
    """The outbox's view of the run queue: one finished run whose event waits."""

    def __init__(self) -> None:
        self.acknowledged_runs: list[str] = []

    def pending_events(self) -> list[tuple[RunInfo, str]]:
        return [(RUN, "")]

    def acknowledged(self, run_id: str) -> None:
        self.acknowledged_runs.append(run_id)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _deliver(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[bool, _Pending]:
    monkeypatch.setenv("DEVHOST_EVENTGRID_KEY", KEY)
    queue = _Pending()
    delivered = deliver_pending(queue, replace(Settings.from_env(), host_url=url))  # type: ignore[arg-type]
    return delivered, queue


def test_a_delivery_that_cannot_connect_logs_no_key(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.INFO):
        delivered, queue = _deliver(f"http://127.0.0.1:{_closed_port()}", monkeypatch)
    assert not delivered and queue.acknowledged_runs == []
    assert "not delivered yet" in caplog.text and "Connection" in caplog.text
    assert KEY not in caplog.text and "code=" not in caplog.text


def test_the_key_travels_in_a_header_not_the_url(monkeypatch: pytest.MonkeyPatch):
    seen: list[tuple[str, str | None]] = []

    class Webhook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, self.headers.get("x-functions-key")))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        delivered, queue = _deliver(f"http://127.0.0.1:{server.server_address[1]}", monkeypatch)
    finally:
        server.shutdown()
    assert delivered and queue.acknowledged_runs == ["run-1"]
    assert seen == [("/runtime/webhooks/eventgrid?functionName=promote", KEY)]


def test_urls_in_error_text_keep_only_where_they_pointed():
    text = ("HTTPConnectionPool(host='127.0.0.1', port=7071): Max retries exceeded with url: "
            f"/runtime/webhooks/eventgrid?functionName=promote&code={KEY} (Caused by NewConnectionError(...))")
    assert KEY not in without_urls(text) and "port=7071" in without_urls(text)
    cut = without_urls(f"posting to https://user:pw@host.example:8443/hook?code={KEY}&x=1 failed")
    assert cut == "posting to https://host.example:8443/… failed"
    assert without_urls(f"sig={KEY} and token={KEY}") == "sig=… and token=…"
    plain = "the host answered 401 to RunCompleted for r1"
    assert without_urls(plain) == plain
