"""Scoring latency and throughput through the local host, beside ``mlflow models serve`` on the same model.

Trains a model on the real stack (Azurite, host, worker; a short AutoML budget),
then loads both servers with wrk on loopback: 1-row and 100-row requests at
concurrency 1 and 16, function key and invocation logging on. The peer is the
MLflow scoring server (uvicorn + FastAPI) serving the very same fitted pipeline.
Targets: 1-row p50 <= 3 ms at concurrency 1; throughput at concurrency 16 >= 5x
MLflow's. A second host with telemetry off gives the telemetry overhead
(target <= 15% at concurrency 1). Needs ``wrk`` (Debian package). Run:
``make bench-scoring``.
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


def quiet_host(root: Path, storage: str) -> HostProcess:
    """A second host on the same model with telemetry switched off, for the overhead figure."""
    return HostProcess(root / "state-quiet", storage, background=True,
                       env={"LOCAL_STATE_DIR": str(root / "localstack"), "DEVHOST_LOG_LEVEL": "WARNING",
                            "TELEMETRY_ENABLED": "false"})


def train_model(root: Path, content: bytes) -> tuple[HostProcess, Any, str]:
    emulator = start_azurite(root / "azurite")
    host = HostProcess(root / "state", emulator.connection_string, background=True,
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
    return host, emulator, str(artifact_dir)


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


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk")
        return 1
    content, source = dataset_bytes()
    frame = pd.read_csv(BytesIO(content)).drop(columns=["y"])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        host, emulator, artifact_dir = train_model(work, content)
        mlflow_server: subprocess.Popen[bytes] | None = None
        results: list[tuple[str, int, int, dict[str, float]]] = []
        overhead: list[tuple[str, dict[str, float]]] = []
        try:
            mlflow_server, mlflow_port = start_mlflow(artifact_dir, work)
            for rows in (1,) if OVERHEAD_ONLY else (1, 100):
                records = json.loads(frame.head(rows).to_json(orient="records"))
                ours = json.dumps({"data": records})
                theirs = json.dumps({"dataframe_records": records})
                key = {"x-functions-key": host.function_key, "Content-Type": "application/json"}
                check = requests.post(f"{host.url}/api/score", data=ours, headers=key, timeout=30)
                peer = requests.post(f"http://127.0.0.1:{mlflow_port}/invocations", data=theirs,
                                     headers={"Content-Type": "application/json"}, timeout=30)
                assert check.ok and peer.ok, (check.text, peer.text)
                for connections in (1,) if OVERHEAD_ONLY else (1, 16):
                    results.append(("devhost /api/score", rows, connections,
                                    wrk(f"{host.url}/api/score", ours, key, connections, work)))
                    results.append(("mlflow models serve", rows, connections,
                                    wrk(f"http://127.0.0.1:{mlflow_port}/invocations", theirs,
                                        {"Content-Type": "application/json"}, connections, work)))
            quiet = quiet_host(work, emulator.connection_string)
            try:
                body = json.dumps({"data": json.loads(frame.head(1).to_json(orient="records"))})
                # Alternate short cells on the two hosts, so machine noise hits both alike.
                for _ in range(OVERHEAD_ROUNDS):
                    for label, server in (("telemetry on", host), ("telemetry off", quiet)):
                        key = {"x-functions-key": server.function_key, "Content-Type": "application/json"}
                        overhead.append((label, wrk(f"{server.url}/api/score", body, key, 1, work)))
            finally:
                quiet.stop()
        finally:
            if mlflow_server is not None:
                mlflow_server.terminate()
            host.stop()
            emulator.stop()
    print(f"Data: {source}; wrk {DURATION_S}s per cell on loopback, {os.cpu_count()} cores")
    print(f"{'server':<22} {'rows':>5} {'conc':>5} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'max ms':>8} "
          f"{'req/s':>9} {'errors':>7}")
    for name, rows, connections, figures in results:
        print(f"{name:<22} {rows:>5} {connections:>5} {figures['p50_ms']:>8.2f} {figures['p99_ms']:>8.2f} "
              f"{figures['p999_ms']:>9.2f} {figures['max_ms']:>8.1f} {figures['rps']:>9.0f} {figures['errors']:>7}")
    for rows in () if OVERHEAD_ONLY else (1, 100):
        host_rps = next(f["rps"] for n, r, c, f in results if n.startswith("devhost") and r == rows and c == 16)
        peer_rps = next(f["rps"] for n, r, c, f in results if n.startswith("mlflow") and r == rows and c == 16)
        print(f"{rows}-row throughput at concurrency 16: {host_rps / max(peer_rps, 1e-9):.1f}x MLflow's "
              "(target >= 5x)")
    on = statistics.median(f["p50_ms"] for label, f in overhead if label == "telemetry on")
    off = statistics.median(f["p50_ms"] for label, f in overhead if label == "telemetry off")
    cells = ", ".join(f"{label.split()[-1]} {f['p50_ms']:.3f}" for label, f in overhead)
    print(f"telemetry on/off, 1 row, concurrency 1, alternating {OVERHEAD_ROUNDS} rounds (p50 ms): {cells}")
    print(f"telemetry overhead: median p50 {on:.3f} ms on vs {off:.3f} ms off = {(on - off) / off:+.0%} "
          "(target <= +15%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
