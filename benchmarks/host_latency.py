"""Development host figures: upload-to-invocation delay and HTTP round trip of a trivial function.

Prints the median and p95 delay from a finished upload to the blob function's
start over 50 uploads (target: median < 1.5 s), and the p50/p99 round trip of
trivial HTTP functions through the host (anonymous, and with a function key),
side by side with a bare Starlette app on the same server settings (target:
host p50 < 2 ms). Run: ``make bench``.
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from devhost.azurite import free_port, port_open
from devhost.process import ROOT, HostProcess, start_azurite, wait_for

UPLOADS = 50
REQUESTS = 3000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def http_round_trips(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    timings = []
    body = b"x" if method == "POST" else None
    for i in range(REQUESTS + 200):
        started = time.perf_counter()
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}")
        if i >= 200:  # warm-up excluded
            timings.append(elapsed)
    connection.close()
    return timings


def upload_delays(host: HostProcess, conn: str, calls: Path) -> list[float]:
    container = BlobServiceClient.from_connection_string(conn).get_container_client("uploads")
    delays = []
    for i in range(UPLOADS):
        seen = len(calls.read_text().splitlines()) if calls.exists() else 0
        container.upload_blob(f"bench-{i:03d}.csv", b"a,b\n1,2\n", overwrite=True)
        uploaded = time.time()

        def invoked(seen: int = seen) -> bool:
            return calls.exists() and len(calls.read_text().splitlines()) > seen

        wait_for(invoked, timeout=60, interval=0.005, what="invocation")
        started = json.loads(calls.read_text().splitlines()[-1])["at"]
        delays.append(started - uploaded)
    return delays


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        emulator = start_azurite(work / "azurite")
        calls = work / "calls.jsonl"
        host = HostProcess(work / "state", emulator.connection_string, app="tests.fixtures.sample_app:app",
                           env={"SAMPLE_APP_LOG": str(calls), "DEVHOST_LOG_LEVEL": "WARNING"},
                           background=True, scan_interval=0.25)
        baseline_port = free_port()
        baseline = subprocess.Popen([sys.executable, "-m", "benchmarks.baseline_server", str(baseline_port)],
                                    cwd=ROOT)
        try:
            wait_for(lambda: port_open("127.0.0.1", baseline_port), what="baseline server")
            delays = upload_delays(host, emulator.connection_string, calls)
            host_ms = http_round_trips(host.port, "GET", "/api/ping")
            keyed_ms = http_round_trips(host.port, "POST", "/api/echo/x", {"x-functions-key": host.function_key})
            base_ms = http_round_trips(baseline_port, "GET", "/api/ping")
        finally:
            baseline.terminate()
            host.stop()
            emulator.stop()
    print(f"Upload -> blob function start, {UPLOADS} uploads, scan interval 0.25 s:")
    print(f"  median {statistics.median(delays):.3f} s   p95 {percentile(delays, 95):.3f} s   "
          f"max {max(delays):.3f} s   (target: median < 1.5 s)")
    print(f"HTTP round trip of a trivial GET, {REQUESTS} keep-alive requests on loopback:")
    rows = (("devhost GET /api/ping", host_ms), ("devhost POST keyed", keyed_ms), ("bare Starlette", base_ms))
    for label, timings in rows:
        print(f"  {label:<22} p50 {percentile(timings, 50):.3f} ms   p99 {percentile(timings, 99):.3f} ms")
    print(f"  host overhead over the bare server at p50: "
          f"{percentile(host_ms, 50) - percentile(base_ms, 50):.3f} ms   (target: host p50 < 2 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
