"""Scoring soak: 100,000+ requests through the host while a new model trains and deploys.

Measures what the reliability promise needs: failed requests (target 0: the hot
swap drops nothing), and the host's memory over the run. The baseline is the
same host before the load: resident memory idle, in the first tenth of the run
and in the last tenth (flat = the last tenth within 10% of the first). Needs
``wrk`` (Debian package). Run: ``make bench-soak``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import requests
from azure.storage.blob import BlobServiceClient

from cli import sample_data
from devhost.process import HostProcess, start_azurite, wait_for

TARGET_REQUESTS = int(os.environ.get("SOAK_REQUESTS", "100000"))
CONNECTIONS = 4


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def production(host: HostProcess) -> str | None:
    models = requests.get(f"{host.url}/api/models", headers={"x-functions-key": host.function_key},
                          timeout=30).json()["models"]
    return next((m["production"]["version"] for m in models if m["name"] == "bank" and m["production"]), None)


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk")
        return 1
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        emulator = start_azurite(root / "azurite")
        host = HostProcess(root / "state", emulator.connection_string, background=True,
                           env={"LOCAL_STATE_DIR": str(root / "localstack"), "AUTOML_TIME_BUDGET_S": "10",
                                "DEVHOST_LOG_LEVEL": "WARNING"})
        try:
            container = BlobServiceClient.from_connection_string(emulator.connection_string) \
                .get_container_client("datasets")
            if not container.exists():  # the host creates it when it starts watching
                container.create_container()
            container.upload_blob("bank/v1.csv", sample_data.to_csv(sample_data.rows(2000, seed=1)))
            wait_for(lambda: production(host) == "1", timeout=300, what="the first model")
            row = {k: v for k, v in sample_data.rows(1, seed=5)[0].items() if k != "y"}
            script = root / "post.lua"
            script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps({"data": [row]}))}\n'
                              f'wrk.headers["x-functions-key"] = "{host.function_key}"\n'
                              'wrk.headers["Content-Type"] = "application/json"\n')
            # Calibrate the duration that reaches the target count.
            probe = run_wrk(host, script, 3)
            seconds = max(10, int(TARGET_REQUESTS / max(probe["rps"], 1.0) * 1.1) + 1)
            idle = rss_mib(host.process.pid)
            samples: list[tuple[float, float]] = []
            done = threading.Event()

            def sample() -> None:
                start = time.monotonic()
                while not done.is_set():
                    samples.append((time.monotonic() - start, rss_mib(host.process.pid)))
                    time.sleep(0.5)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            uploader = threading.Timer(seconds * 0.2, lambda: container.upload_blob(
                "bank/v2.csv", sample_data.to_csv(sample_data.rows(3000, seed=2))))
            uploader.start()
            result = run_wrk(host, script, seconds)
            done.set()
            sampler.join()
            swapped = production(host)
        finally:
            host.stop()
            emulator.stop()
    tenth = max(1, len(samples) // 10)
    first = max(r for _, r in samples[:tenth])
    last = max(r for _, r in samples[-tenth:])
    peak = max(r for _, r in samples)
    print(f"Scoring soak: {result['requests']:,} requests in {seconds}s, {CONNECTIONS} connections, 1 row each")
    print(f"  failed requests: {result['errors']} (non-2xx or socket errors; target 0)")
    print(f"  throughput {result['rps']:,.0f} req/s, p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms")
    print(f"  model in production: v1 at the start, v{swapped} at the end (new upload at {seconds * 0.2:.0f}s)")
    print(f"  host memory: idle {idle:.0f} MiB, first tenth {first:.0f} MiB, last tenth {last:.0f} MiB, "
          f"peak {peak:.0f} MiB")
    flat = last <= first * 1.10
    print(f"  memory flat over the run (last tenth within 10% of the first): {'yes' if flat else 'NO'}")
    ok = result["errors"] == 0 and flat and result["requests"] >= TARGET_REQUESTS and swapped == "2"
    return 0 if ok else 1


def run_wrk(host: HostProcess, script: Path, seconds: int) -> dict[str, float]:
    command = [shutil.which("wrk") or "wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{seconds}s", "--latency",
               "-s", str(script), f"{host.url}/api/score"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    total = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    latency = {m.group(1): float(m.group(2)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(3)]
               for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)}
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(int(g) for g in sockets.groups()) if sockets else 0)
    return {"requests": int(total.group(1)) if total else 0, "errors": errors,
            "rps": float(rate.group(1)) if rate else 0.0, "p50_ms": latency.get("50", float("nan")),
            "p99_ms": latency.get("99", float("nan"))}


if __name__ == "__main__":
    raise SystemExit(main())
