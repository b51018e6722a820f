"""Scoring latency and throughput through the local host, beside a peer and the floor, on the same model.

Trains a model on the real stack (Azurite, host, worker; a short AutoML budget),
then loads three servers with wrk on loopback (1-row and 100-row requests, at
concurrency 1 and 16, function key and invocation logging on): the host; the
peer, the MLflow scoring server (uvicorn + FastAPI) serving the very same
fitted pipeline; and the floor, a minimal Starlette + ONNX Runtime server on the
very same ``model.onnx`` with no key, validation or telemetry
(``benchmarks/floor_server.py``). Apache Bench (``ab -k``) measures the host and
the floor again. Fresh hosts with telemetry off, and with Python's 5 ms GIL
switch interval instead of the host's 0.5 ms, give the telemetry overhead and
the switch interval's effect: alternating rounds at both concurrencies,
medians. Targets are
printed beside the figures. Needs ``wrk`` and ``ab`` (Debian: wrk,
apache2-utils). Run: ``make bench-scoring``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

import pandas as pd
import requests
from azure.storage.blob import BlobServiceClient

from benchmarks.common import dataset_bytes
from devhost.azurite import free_port
from devhost.process import HostProcess, start_azurite, wait_for

DURATION_S = int(os.environ.get("BENCH_SECONDS", "8"))
OVERHEAD_ONLY = os.environ.get("BENCH_OVERHEAD_ONLY") == "1"  # only the telemetry on/off cells
OVERHEAD_ROUNDS = 3
# Hosts here poll for blobs as `make up` does (the tests' hosts poll faster): their pollers share the machine.
USER_SCAN_INTERVAL_S = 0.25


def wrk(url: str, body: str, headers: dict[str, str], connections: int, work: Path) -> dict[str, float]:
    script = work / "post.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body)}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    # wrk's own summary stops at p99: print p99.9 and the maximum (microseconds) from its histogram.
    lines += ["done = function(summary, latency, requests)",
              '  io.write(string.format("p999_us %d\\nmax_us %d\\n", latency:percentile(99.9), latency.max))',
              "end"]
    script.write_text("\n".join(lines) + "\n")
    threads = min(2, connections)
    command = [shutil.which("wrk") or "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{DURATION_S}s",
               "--latency", "-s", str(script), url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    percentiles = {m.group(1): _ms(m.group(2), m.group(3))
                   for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    tail = {m.group(1): int(m.group(2)) / 1000 for m in re.finditer(r"^(p999|max)_us (\d+)$", output, re.MULTILINE)}
    return {"p50_ms": percentiles.get("50", float("nan")), "p99_ms": percentiles.get("99", float("nan")),
            "p999_ms": tail.get("p999", float("nan")), "max_ms": tail.get("max", float("nan")),
            "rps": float(rate.group(1)) if rate else 0.0, "errors": int(errors.group(1)) if errors else 0}


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def serving_host(root: Path, storage: str, name: str, env: dict[str, str]) -> HostProcess:
    """A fresh host on the trained model, for the overhead figures. Every side is fresh: the host that ingested
    the upload and trained carries a bigger heap, which would count against the side it stood for."""
    return HostProcess(root / f"state-{name}", storage, background=True, scan_interval=USER_SCAN_INTERVAL_S,
                       env={"LOCAL_STATE_DIR": str(root / "localstack"), "DEVHOST_LOG_LEVEL": "WARNING", **env})


def train_model(root: Path, content: bytes) -> tuple[HostProcess, Any, str]:
    emulator = start_azurite(root / "azurite")
    host = HostProcess(root / "state", emulator.connection_string, background=True, scan_interval=USER_SCAN_INTERVAL_S,
                       env={"LOCAL_STATE_DIR": str(root / "localstack"), "AUTOML_TIME_BUDGET_S": "15",
                            "DEVHOST_LOG_LEVEL": "WARNING"})
    container = BlobServiceClient.from_connection_string(emulator.connection_string).get_container_client("datasets")
    if not container.exists():
        container.create_container()
    container.get_blob_client("bank/bench.csv").upload_blob(content, overwrite=True)
    headers = {"x-functions-key": host.function_key}

    def deployed() -> str | None:
        models = requests.get(f"{host.url}/api/models", headers=headers, timeout=30).json()["models"]
        return next((m["production"]["artifact_uri"] for m in models if m["production"]), None)

    artifact_dir = wait_for(deployed, timeout=600, interval=1, what="a deployed model")
    return host, emulator, str(root / "localstack" / artifact_dir)  # the API shows it relative to that folder


def start_mlflow(artifact_dir: str, work: Path) -> tuple[subprocess.Popen[bytes], int]:
    import joblib
    import mlflow.sklearn

    model_dir = work / "mlflow-model"
    mlflow.sklearn.save_model(joblib.load(Path(artifact_dir) / "model.pkl"), str(model_dir),
                              serialization_format="cloudpickle")
    port = free_port()
    mlflow_bin = str(Path(sys.executable).parent / "mlflow")
    process = subprocess.Popen([mlflow_bin, "models", "serve", "-m", str(model_dir), "--env-manager", "local",
                                "--host", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL,
                               env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    wait_for(lambda: _ping(f"http://127.0.0.1:{port}/ping"), timeout=120, interval=0.5, what="mlflow server")
    return process, port


def _ping(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False


def ab(url: str, body: str, headers: dict[str, str], connections: int, work: Path) -> dict[str, float]:
    """Apache Bench with keep-alive; its percentiles are whole milliseconds, its mean is finer."""
    payload = work / "body.json"
    payload.write_text(body)
    command = [shutil.which("ab") or "ab", "-k", "-q", "-t", str(DURATION_S), "-n", "10000000",
               "-c", str(connections), "-p", str(payload), "-T", "application/json"]
    command += [arg for name, value in headers.items() if name.lower() != "content-type"
                for arg in ("-H", f"{name}: {value}")]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rate = re.search(r"Requests per second:\s+([\d.]+)", output)
    mean = re.search(r"Time per request:\s+([\d.]+) \[ms\] \(mean\)", output)
    percentiles = {m.group(1): float(m.group(2))
                   for m in re.finditer(r"^\s+(50|99|100)%\s+(\d+)", output, re.MULTILINE)}
    failed = re.search(r"Non-2xx responses:\s+(\d+)", output)
    return {"mean_ms": float(mean.group(1)) if mean else float("nan"), "p50_ms": percentiles.get("50", float("nan")),
            "p99_ms": percentiles.get("99", float("nan")), "max_ms": percentiles.get("100", float("nan")),
            "rps": float(rate.group(1)) if rate else 0.0, "errors": int(failed.group(1)) if failed else 0}


def start_floor(artifact_dir: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.floor_server", artifact_dir, str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/score"
    wait_for(lambda: _posts(url), timeout=60, interval=0.3, what="floor server")
    return process, port


def _posts(url: str) -> bool:
    try:
        return requests.post(url, data="{}", timeout=1).status_code in (200, 500)
    except requests.RequestException:
        return False


Cell = tuple[str, int, int, dict[str, float]]


def main() -> int:
    missing = [tool for tool in ("wrk", "ab") if shutil.which(tool) is None]
    if missing:
        print(f"{' and '.join(missing)} not installed: apt-get install wrk apache2-utils")
        return 1
    content, source = dataset_bytes()
    frame = pd.read_csv(BytesIO(content)).drop(columns=["y"])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        host, emulator, artifact_dir = train_model(work, content)
        servers: list[subprocess.Popen[bytes]] = []
        results: list[Cell] = []
        benches: list[Cell] = []
        overhead: list[Cell] = []
        try:
            mlflow_server, mlflow_port = start_mlflow(artifact_dir, work)
            floor_server, floor_port = start_floor(artifact_dir)
            servers += [mlflow_server, floor_server]
            floor_url = f"http://127.0.0.1:{floor_port}/score"
            plain = {"Content-Type": "application/json"}
            key = {"x-functions-key": host.function_key, **plain}
            for rows in (1,) if OVERHEAD_ONLY else (1, 100):
                records = json.loads(frame.head(rows).to_json(orient="records"))
                ours = json.dumps({"data": records})
                theirs = json.dumps({"dataframe_records": records})
                check = requests.post(f"{host.url}/api/score", data=ours, headers=key, timeout=30)
                peer = requests.post(f"http://127.0.0.1:{mlflow_port}/invocations", data=theirs, headers=plain,
                                     timeout=30)
                floor = requests.post(floor_url, data=ours, headers=plain, timeout=30)
                assert check.ok and peer.ok and floor.ok, (check.text, peer.text, floor.text)
                assert floor.json()["result"] == check.json()["result"], "the floor must answer what the host does"
                for connections in (1,) if OVERHEAD_ONLY else (1, 16):
                    results.append(("devhost /api/score", rows, connections,
                                    wrk(f"{host.url}/api/score", ours, key, connections, work)))
                    results.append(("mlflow models serve", rows, connections,
                                    wrk(f"http://127.0.0.1:{mlflow_port}/invocations", theirs, plain, connections,
                                        work)))
                    results.append(("floor (Starlette+ORT)", rows, connections,
                                    wrk(floor_url, ours, plain, connections, work)))
                    if rows == 1:
                        benches.append(("devhost /api/score", rows, connections,
                                        ab(f"{host.url}/api/score", ours, key, connections, work)))
                        benches.append(("floor (Starlette+ORT)", rows, connections,
                                        ab(floor_url, ours, plain, connections, work)))
            results += multi_process_cells(work, emulator.connection_string, frame)
            overhead = telemetry_rounds(emulator.connection_string, frame, work)
        finally:
            for server in servers:
                server.terminate()
            host.stop()
            emulator.stop()
    report(source, results, benches, overhead)
    return 0


def multi_process_cells(work: Path, storage: str, frame: pd.DataFrame) -> list[Cell]:
    """The same host with two HTTP processes on the one port (DEVHOST_HTTP_PROCESSES=2), 1 row."""
    multi = HostProcess(work / "state-multi", storage, background=True, scan_interval=USER_SCAN_INTERVAL_S,
                        env={"LOCAL_STATE_DIR": str(work / "localstack"), "DEVHOST_LOG_LEVEL": "WARNING",
                             "DEVHOST_HTTP_PROCESSES": "2"})
    body = json.dumps({"data": json.loads(frame.head(1).to_json(orient="records"))})
    key = {"x-functions-key": multi.function_key, "Content-Type": "application/json"}
    try:
        # The second process listens once it has loaded the app; the first answers meanwhile.
        wait_for(lambda: all(requests.post(f"{multi.url}/api/score", data=body, headers=key, timeout=30).ok
                             for _ in range(20)), timeout=60, interval=1, what="the HTTP processes")
        time.sleep(5)
        return [("devhost, 2 HTTP processes", 1, connections,
                 wrk(f"{multi.url}/api/score", body, key, connections, work)) for connections in (1, 16)]
    finally:
        multi.stop()


# The fresh hosts of the alternating rounds: telemetry on and off, and Python's own GIL switch interval.
SIDES = {"telemetry on": {"TELEMETRY_ENABLED": "true"},
         "telemetry off": {"TELEMETRY_ENABLED": "false"},
         "switch 5 ms": {"TELEMETRY_ENABLED": "true", "DEVHOST_SWITCH_INTERVAL_MS": "5"}}


def telemetry_rounds(storage: str, frame: pd.DataFrame, work: Path) -> list[Cell]:
    """Alternate short cells on fresh hosts, one per side, so machine noise hits every side alike."""
    hosts: dict[str, HostProcess] = {}
    body = json.dumps({"data": json.loads(frame.head(1).to_json(orient="records"))})
    cells: list[Cell] = []
    try:
        for label, env in SIDES.items():
            hosts[label] = serving_host(work, storage, label.replace(" ", "-"), env)
        for server in hosts.values():  # load the model and warm up before measuring
            key = {"x-functions-key": server.function_key, "Content-Type": "application/json"}
            for _ in range(50):
                requests.post(f"{server.url}/api/score", data=body, headers=key, timeout=30).raise_for_status()
        for _ in range(OVERHEAD_ROUNDS):
            for connections in (1, 16):
                for label, server in hosts.items():
                    key = {"x-functions-key": server.function_key, "Content-Type": "application/json"}
                    cells.append((label, 1, connections, wrk(f"{server.url}/api/score", body, key, connections,
                                                             work)))
    finally:
        for server in hosts.values():
            server.stop()
    return cells


def _figure(cells: list[Cell], name: str, rows: int, connections: int) -> dict[str, float]:
    return next(f for n, r, c, f in cells if n.startswith(name) and r == rows and c == connections)


def report(source: str, results: list[Cell], benches: list[Cell], overhead: list[Cell]) -> None:
    print(f"Data: {source}; wrk and ab {DURATION_S}s per cell on loopback, {os.cpu_count()} cores")
    print(f"wrk: {'server':<22} {'rows':>5} {'conc':>5} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'max ms':>8} "
          f"{'req/s':>9} {'errors':>7}")
    for name, rows, connections, figures in results:
        print(f"     {name:<22} {rows:>5} {connections:>5} {figures['p50_ms']:>8.2f} {figures['p99_ms']:>8.2f} "
              f"{figures['p999_ms']:>9.2f} {figures['max_ms']:>8.1f} {figures['rps']:>9.0f} {figures['errors']:>7}")
    print(f"ab -k: {'server':<20} {'rows':>5} {'conc':>5} {'mean ms':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'req/s':>9} {'errors':>7}")
    for name, rows, connections, figures in benches:
        print(f"       {name:<20} {rows:>5} {connections:>5} {figures['mean_ms']:>8.3f} {figures['p50_ms']:>8.0f} "
              f"{figures['p99_ms']:>8.0f} {figures['max_ms']:>8.0f} {figures['rps']:>9.0f} {figures['errors']:>7}")
    if not OVERHEAD_ONLY:
        for rows in (1, 100):
            host_rps = _figure(results, "devhost", rows, 16)["rps"]
            peer_rps = _figure(results, "mlflow", rows, 16)["rps"]
            floor_rps = _figure(results, "floor", rows, 16)["rps"]
            print(f"{rows}-row throughput at concurrency 16: {host_rps / max(peer_rps, 1e-9):.1f}x MLflow's "
                  f"(target >= 5x); {host_rps / max(floor_rps, 1e-9):.0%} of the floor's (target >= 50%)")
        one, many = _figure(results, "devhost", 1, 1), _figure(results, "devhost", 1, 16)
        print(f"targets, 1 row, telemetry on: concurrency 1 p50 {one['p50_ms']:.2f} ms (<= 0.3), p99 "
              f"{one['p99_ms']:.2f} ms (<= 2); concurrency 16 p99 {many['p99_ms']:.1f} ms (<= 20)")
    for connections in (1, 16):
        side = {label: [f for name, _, c, f in overhead if name == label and c == connections] for label in SIDES}
        on, off = side["telemetry on"], side["telemetry off"]
        p50_on, p50_off = _median(on, "p50_ms"), _median(off, "p50_ms")
        rps_on, rps_off = _median(on, "rps"), _median(off, "rps")
        cells = ", ".join(f"{f['p50_ms']:.3f}/{g['p50_ms']:.3f}" for f, g in zip(on, off, strict=True))
        print(f"telemetry on/off, 1 row, concurrency {connections}, {OVERHEAD_ROUNDS} alternating rounds "
              f"(p50 ms on/off: {cells}): median p50 {p50_on:.3f} vs {p50_off:.3f} ms = "
              f"{(p50_on - p50_off) / p50_off:+.0%}; median req/s {rps_on:.0f} vs {rps_off:.0f} = "
              f"{(rps_on - rps_off) / rps_off:+.0%} (target: within 10%)")
        slow = side["switch 5 ms"]
        print(f"GIL switch interval 0.5 ms (the host's) vs 5 ms (Python's), telemetry on, concurrency {connections}, "
              f"medians of the same rounds: p99 {_median(on, 'p99_ms'):.2f} vs {_median(slow, 'p99_ms'):.2f} ms, "
              f"p99.9 {_median(on, 'p999_ms'):.2f} vs {_median(slow, 'p999_ms'):.2f} ms, p50 "
              f"{p50_on:.3f} vs {_median(slow, 'p50_ms'):.3f} ms, req/s {rps_on:.0f} vs {_median(slow, 'rps'):.0f}")


def _median(cells: list[dict[str, float]], figure: str) -> float:
    return statistics.median(f[figure] for f in cells)


if __name__ == "__main__":
    raise SystemExit(main())
