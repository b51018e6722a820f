"""Where scoring spends its time under load: py-spy samples the host while wrk drives 1-row requests.

Trains a model on the real stack (as ``scoring_latency``), then for concurrency 1
and 16 records the host with py-spy (every thread, idle time excluded) while wrk
runs, and prints the share of samples that pass through each part: the request
path (HTTP server, function dispatch, validation, ONNX Runtime), telemetry
(spans, metrics, export), the drift thread and the rest. A second table counts
samples per thread, which shows what competes with requests for the GIL.
Needs ``wrk`` and ``py-spy`` (requirements-dev). Run: ``make bench-profile``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

import requests

from benchmarks.common import dataset_bytes
from benchmarks.scoring_latency import train_model, wrk
from devhost.process import HostProcess

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
# Threads other than the server's, by name prefix.
BACKGROUND = [("background: storage listeners (blob, queue polling)", ("blob-", "queue-")),
              ("background: telemetry export", ("Otel", "AzureMonitor", "ConfigurationWorker")),
              ("background: drift windows", ("drift",))]
# On the server's threads, a sample goes to the part owning its innermost recognised frame.
PARTS = [
    ("ONNX Runtime", ("onnxruntime",)),
    ("telemetry on the request (spans, metrics, events)", ("opentelemetry", "azure/monitor", "shared/telemetry.py")),
    ("scoring: parse, validate, predict glue", ("shared/scoring.py", "shared/model_contract.py", "shared/local/",
                                                "functions/score.py")),
    ("JSON", ("json/",)),
    ("azure.functions bindings (request and response objects)", ("azure/functions/",)),
    ("function dispatch (devhost)", ("devhost/",)),
    ("thread-pool hop", ("concurrent/futures", "threading.py", "asyncio/threads.py", "anyio")),
    ("HTTP server (uvicorn, starlette, asyncio)", ("uvicorn", "starlette", "httptools", "asyncio", "uvloop")),
]


def _part(thread: str, frames: list[str]) -> str:
    for name, prefixes in BACKGROUND:
        if thread.startswith(prefixes):
            return name
    for frame in reversed(frames):
        for name, markers in PARTS:
            if any(marker in frame for marker in markers):
                return name
    return "other"


def profile(host: HostProcess, url: str, body: str, headers: dict[str, str], connections: int,
            work: Path) -> tuple[dict[str, float], dict[str, int], float]:
    output = work / f"profile-{connections}.txt"
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    recorder = subprocess.Popen([spy, "record", "--pid", str(host.process.pid), "--duration", str(SECONDS),
                                 "--rate", "250", "--format", "raw", "--threads", "--gil", "--output", str(output)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result: dict[str, float] = {}
    load = threading.Thread(target=lambda: result.update(wrk(url, body, headers, connections, work)))
    load.start()
    load.join()
    recorder.wait(timeout=SECONDS + 60)
    if os.environ.get("BENCH_KEEP_PROFILE"):
        shutil.copy(output, os.environ["BENCH_KEEP_PROFILE"] + f"-{connections}.txt")
    stacks = Counter[str]()
    for line in output.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        stacks[stack] += int(samples)
    total = sum(stacks.values()) or 1
    shares: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    for stack, count in stacks.items():
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1].strip('"') if frames else "?"
        threads[thread] += count
        shares[_part(thread, frames[1:])] += count
    return {name: 100 * n / total for name, n in shares.most_common()}, dict(threads.most_common(8)), result.get(
        "p99_ms", float("nan"))


def main() -> int:
    content, source = dataset_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        host, emulator, _ = train_model(root, content)
        try:
            row = requests.get(f"{host.url}/api/swagger.json", headers={"x-functions-key": host.function_key},
                               timeout=30).json()["paths"]["/score"]["post"]["requestBody"]["content"][
                "application/json"]["example"]["data"][0]
            body = json.dumps({"data": [row]})
            headers = {"x-functions-key": host.function_key, "Content-Type": "application/json"}
            print(f"Data: {source}; py-spy at 250 Hz on the host while wrk runs {SECONDS}s, 1 row, telemetry on")
            for connections in (1, 16):
                shares, threads, p99 = profile(host, f"{host.url}/api/score", body, headers, connections, root)
                print(f"\nconcurrency {connections} (p99 {p99:.2f} ms under the profiler): share of GIL samples")
                for name, share in shares.items():
                    print(f"  {share:5.1f}%  {name}")
                print("  samples per thread: " + ", ".join(f"{t} {n}" for t, n in threads.items()))
        finally:
            host.stop()
            emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
