"""The local telemetry intake and page against a hostile neighbour: anyone on the machine can connect to the
intake's port (it shows in ``ps``), so it takes writes from the host's own processes only, within limits, and the
page prints whatever the store holds as text."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from devhost.process import HostProcess, processes, wait_for
from devhost.telemetry_server import TOKEN_ENV
from tests.browser import chromium

pytestmark = pytest.mark.integration
HOSTILE = 'zz</p><img src=x onerror="document.title=new URLSearchParams(location.search).get(\'code\')">'


@pytest.fixture()
def host(state_dir: Path, azurite_conn: str) -> Iterator[HostProcess]:
    process = HostProcess(state_dir, azurite_conn, app="tests.fixtures.sample_app:app",
                          env={"TELEMETRY_SAMPLING_RATIO": "1.0"})
    yield process
    process.stop()


def intake(host: HostProcess) -> tuple[int, str, str]:
    """The host's telemetry intake: its process id, its URL, and the path the host's exporters post under (read
    from the intake process's environment, which only its own user can read)."""
    [pid] = processes(lambda command, parent: parent == host.process.pid and "devhost.telemetry_server" in command)
    command = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    port = command[command.index("--port") + 1]
    environ = dict(entry.split("=", 1) for entry in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
                   if "=" in entry)
    token = environ.get(TOKEN_ENV, "")
    return pid, f"http://127.0.0.1:{port}", f"/{token}" if token else ""


def envelope(kind: str, operation: str, **base: object) -> dict[str, object]:
    return {"name": f"Microsoft.ApplicationInsights.{kind}", "time": datetime.now(UTC).isoformat(),
            "iKey": "00000000-0000-0000-0000-000000000000", "tags": {"ai.operation.id": operation},
            "data": {"baseType": f"{kind}Data", "baseData": {"ver": 2, **base}}}


def stored(host: HostProcess, operation: str) -> int:
    db = sqlite3.connect(host.state_dir / "telemetry.db")
    try:
        return int(db.execute("SELECT COUNT(*) FROM envelopes WHERE operation_id=?", (operation,)).fetchone()[0])
    finally:
        db.close()


def test_a_hostile_operation_id_shows_as_text_and_reads_no_key(host: HostProcess):
    _, url, path = intake(host)
    hostile = [envelope("Request", HOSTILE, id="r1", name="ingest", duration="00:00:00.100000", success=True,
                        responseCode="0"),
               envelope("Exception", HOSTILE, exceptions=[{"typeName": "Boom", "message": HOSTILE}])]
    # As the host's exporter posts: JSON, to the endpoint of the connection string it was given.
    answer = requests.post(f"{url}{path}/v2.1/track", data=json.dumps(hostile),
                           headers={"Content-Type": "application/json"}, timeout=30)
    assert answer.status_code == 200 and answer.json()["itemsAccepted"] == 2
    page_url = f"{host.url}/telemetry?code={host.function_key}"
    with chromium() as browser:
        page = browser.new_page()
        page.goto(page_url)
        assert page.title() == "Local telemetry"  # no script ran to put the key there
        assert page.locator("img").count() == 0
        text = page.inner_text("body")
        assert f"operation {HOSTILE}" in text and f"Boom: {HOSTILE}" in text
    # And were some text ever to slip through, the browser is told to run no script on the page.
    headers = requests.get(page_url, timeout=30).headers
    assert "script-src" not in headers["Content-Security-Policy"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"


def test_only_the_hosts_own_processes_can_write(host: HostProcess):
    _, url, path = intake(host)
    assert path, "the intake takes writes under a path only the host's processes know"
    # The path is handed over in the environment: nothing on any command line shows it.
    assert not processes(lambda command, parent: any(path[1:] in part for part in command))
    assert path[1:] not in host.log_text()
    one = json.dumps([envelope("Event", "intruder", name="Intruder")])
    for attempt in (f"{url}/v2.1/track", f"{url}/v2/track", f"{url}/{'x' * (len(path) - 1)}/v2.1/track",
                    f"{url}{path[:-1]}/v2.1/track", f"{url}{path}x/v2.1/track"):
        answer = requests.post(attempt, data=one, headers={"Content-Type": "application/json"}, timeout=30)
        assert answer.status_code in (401, 404), attempt
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""):
        answer = requests.post(f"{url}{path}/v2.1/track", data=one, headers={"Content-Type": kind}, timeout=30)
        assert answer.status_code == 415, kind
    assert stored(host, "intruder") == 0
    accepted = requests.post(f"{url}{path}/v2.1/track", data=one, headers={"Content-Type": "application/json"},
                             timeout=30)
    assert accepted.status_code == 200 and stored(host, "intruder") == 1  # the same write, with the path, lands


def peak_memory_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])


def test_a_gzip_bomb_is_refused_without_inflating_it(host: HostProcess):
    pid, url, path = intake(host)
    before = peak_memory_kb(pid)
    bomb = gzip.compress(b"[" + b" " * 200_000_000 + b"]", 9)  # a fifth of a megabyte that inflates to 200 MB
    answer = requests.post(f"{url}{path}/v2.1/track", data=bomb,
                           headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}, timeout=120)
    assert answer.status_code == 413
    assert peak_memory_kb(pid) - before < 64_000  # it stopped inflating at its limit
    # Many small envelopes in one request, one huge field, a declared length over the limit: refused too.
    many = gzip.compress(json.dumps([{"time": "2026-01-01T00:00:00Z", "tags": {"ai.operation.id": "flood"}}]
                                    * 6_000).encode())
    answer = requests.post(f"{url}{path}/v2.1/track", data=many,
                           headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}, timeout=120)
    assert answer.status_code == 413 and "envelopes" in answer.json()["errors"][0]["message"]
    huge = json.dumps([envelope("Event", "flood", name="E", properties={"x": "y" * 100_000})])
    answer = requests.post(f"{url}{path}/v2.1/track", data=huge, headers={"Content-Type": "application/json"},
                           timeout=120)
    assert answer.status_code == 400 and answer.json()["itemsAccepted"] == 0
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        raw.sendall(f"POST {path}/v2.1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {10**9}\r\n\r\n[".encode())
        assert raw.recv(65536).startswith(b"HTTP/1.1 413 ")  # answered without the gigabyte
    assert stored(host, "flood") == 0
    assert requests.post(f"{url}{path}/v2.1/track", data="[]", headers={"Content-Type": "application/json"},
                         timeout=30).status_code == 200


def test_the_path_stays_out_of_the_log_when_the_intake_is_gone(host: HostProcess):
    """The exporter logs why an export failed, and the HTTP library's reason names the URL it posted to."""
    pid, _, path = intake(host)
    os.kill(pid, signal.SIGKILL)
    for _ in range(5):
        requests.get(f"{host.url}/api/ping", timeout=30)
    wait_for(lambda: "Retrying due to server request error" in host.log_text(), timeout=120,
             what="the exporter to fail")
    assert path[1:] not in host.log_text()
