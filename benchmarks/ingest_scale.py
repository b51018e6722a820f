"""Ingest of a big upload: peak memory (VmHWM) and time of reading and checking it, beside a floor and peers.

Generates a bank-like CSV of ``ROWS`` rows (default 1,054,400: numbers, categories, a yes/no target ``y``) in a
temporary folder, then runs each reader in a fresh process of its own, so that each peak is its own:

- ``floor``: hash the file and count its lines, 1 MiB at a time: what any reader must at least do;
- ``pandas``: ``pandas.read_csv`` of the whole file, the usual way to load it;
- ``arrow``: pyarrow's streaming CSV reader, batch after batch, keeping nothing;
- ``ingest``: ``shared.ingest.ingest`` on the local backend, as the host runs it (the upload handed over as the
  blob trigger hands it, validated, its guardrails computed, the dataset version copied and its run queued);
- ``ingest-file``: the same, reading the upload from a file instead of from memory;
- ``azure-ingest``: the Azure backend's ingest as the Function runs it: the upload read from a blob (Azurite) a
  range at a time through a BlobClient, the dataset version, its training rows and its held-out rows written back
  to Azurite a block at a time (Azure ML itself stood in for in memory).

Run: ``make bench-scale`` (``ROWS=...`` to change the size; ``MODES=floor,ingest`` to run some).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cli import sample_data

ROWS = int(os.environ.get("ROWS", "1054400"))
MODES = ("floor", "pandas", "arrow", "ingest", "ingest-file", "azure-ingest")
AZURITE = "BENCH_AZURITE"  # the connection of the Azurite the parent started, for the azure-ingest child
BLOCK_ROWS = 100_000


def bank_like_csv(path: Path, rows: int, seed: int = 7) -> None:
    """Rows with the Bank Marketing columns, drawn with numpy block by block (a million in seconds); the target
    depends on a few columns, as in the sample data."""
    rng = np.random.default_rng(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        for start in range(0, rows, BLOCK_ROWS):
            n = min(BLOCK_ROWS, rows - start)
            block = {name: rng.choice(values, n) for name, values in sample_data.CATEGORIES.items()}
            duration = rng.exponential(250, n).astype(int)
            euribor = rng.uniform(0.6, 5.0, n).round(3)
            fresh = block["poutcome"] == "nonexistent"
            block.update({
                "age": rng.integers(18, 91, n), "duration": duration, "campaign": rng.integers(1, 11, n),
                "pdays": np.where(fresh, 999, rng.integers(0, 28, n)),
                "previous": np.where(fresh, 0, rng.integers(1, 7, n)),
                "emp.var.rate": rng.uniform(-3.4, 1.4, n).round(1),
                "cons.price.idx": rng.uniform(92.2, 94.8, n).round(3),
                "cons.conf.idx": rng.uniform(-50.8, -26.9, n).round(1), "euribor3m": euribor,
                "nr.employed": rng.uniform(4963.6, 5228.1, n).round(1),
            })
            score = duration / 200 - 0.6 * euribor + np.where(block["poutcome"] == "success", 2.0, 0.0) - 1.5
            block["y"] = np.where(rng.random(n) < 1 / (1 + np.exp(-score)), "yes", "no")
            frame = pd.DataFrame(block)[sample_data.COLUMNS]
            frame.to_csv(out, index=False, header=start == 0, lineterminator="\n")


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def current_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _floor(path: Path) -> str:
    digest, lines = hashlib.sha256(), 0
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
            lines += chunk.count(b"\n")
    return f"{lines:,} lines"


def _pandas(path: Path) -> str:
    return f"{len(pd.read_csv(path)):,} rows"


def _arrow(path: Path) -> str:
    from pyarrow import csv

    rows = 0
    for batch in csv.open_csv(path):
        rows += batch.num_rows
    return f"{rows:,} rows"


def _ingest(path: Path, from_file: bool) -> str:
    """``shared.ingest.ingest`` on the local backend, its training run left queued: no worker starts."""
    from dataclasses import replace

    from shared.backend import build_backend
    from shared.ingest import Upload, ingest
    from shared.local.pipeline import LocalTrainingPipeline
    from shared.settings import Settings

    class QueuedOnly(LocalTrainingPipeline):
        def ensure_worker(self) -> None:  # the benchmark measures ingest, not training
            return None

    state = path.parent / "state"
    os.environ["LOCAL_STATE_DIR"] = str(state)
    settings = Settings.from_env()
    backend = build_backend(settings)
    backend = replace(backend, pipeline=QueuedOnly(state))
    # As the host hands it over: the blob's bytes, as the Functions runtime gives them to the function; or a path.
    content: bytes | Path = path if from_file else path.read_bytes()
    upload = Upload("bank/big.csv", f"file://{path}", content, {}, '"1"', "2026-01-01T00:00:00+00:00")
    ready = current_rss_mib()  # the backend imported and built, the bytes held: before ingest reads them
    started = time.perf_counter()
    outcome = ingest(upload, backend, settings)
    elapsed = time.perf_counter() - started
    record = backend.uploads.get(upload.upload_id) or {}
    checks = [f["check"] for f in (record.get("details") or {}).get("guardrails", [])]
    return json.dumps({"outcome": outcome.state, "reason": outcome.reason, "ingest_s": round(elapsed, 2),
                       "rss_before_ingest_mib": round(ready), "rows": (record.get("details") or {}).get("rows"),
                       "checks": checks})


def _azure_ingest(path: Path) -> str:
    """The Azure backend's ingest over Azurite, as ``functions/ingest.py`` runs it."""
    from azure.storage.blob import BlobServiceClient

    from shared.azure.blobstore import ContainerStore
    from shared.azure.config import AzureSettings
    from shared.azure.dry_run import InMemoryQueue, InMemoryRecords, InMemoryRunMetrics, InMemoryWorkspace
    from shared.azure.wiring import assemble
    from shared.blob_stream import blob_stream
    from shared.ingest import Upload, ingest
    from shared.settings import Settings

    os.environ["LOCAL_STATE_DIR"] = str(path.parent / "state")
    os.environ.setdefault("MAX_UPLOAD_MB", "10240")  # as infra/ sets it in Azure
    settings = Settings.from_env()
    service = BlobServiceClient.from_connection_string(os.environ[AZURITE])
    workspace = InMemoryWorkspace()
    backend = assemble(settings, AzureSettings.example(), workspace,
                       ContainerStore(service.get_container_client("dataset-versions")), InMemoryRecords(),
                       credential=None, queue=InMemoryQueue(), run_metrics=InMemoryRunMetrics(workspace))
    client = service.get_blob_client("datasets", "bank/big.csv")
    properties = client.get_blob_properties()
    upload = Upload("bank/big.csv", client.url, blob_stream(client, properties.size, properties.etag), {},
                    properties.etag.strip('"'), "2026-01-01T00:00:00+00:00")
    ready = current_rss_mib()
    started = time.perf_counter()
    outcome = ingest(upload, backend, settings)
    elapsed = time.perf_counter() - started
    written = sorted(b.name.rsplit("/", 1)[-1] for b in
                     service.get_container_client("dataset-versions").list_blobs(name_starts_with="bank/"))
    return json.dumps({"outcome": outcome.state, "reason": outcome.reason, "ingest_s": round(elapsed, 2),
                       "rss_before_ingest_mib": round(ready), "written": written})


def child(mode: str, path: Path) -> None:
    """One measurement, printed as JSON on the last line of stdout."""
    baseline = current_rss_mib()
    started = time.perf_counter()
    if mode == "floor":
        result = _floor(path)
    elif mode == "pandas":
        result = _pandas(path)
    elif mode == "arrow":
        result = _arrow(path)
    elif mode == "azure-ingest":
        result = _azure_ingest(path)
    else:
        result = _ingest(path, from_file=mode == "ingest-file")
    seconds = time.perf_counter() - started
    print(json.dumps({"mode": mode, "seconds": round(seconds, 2), "peak_mib": round(peak_rss_mib()),
                      "start_mib": round(baseline), "result": result}))


def main() -> int:
    modes = [m for m in os.environ.get("MODES", ",".join(MODES)).split(",") if m]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bank_big.csv"
        started = time.perf_counter()
        bank_like_csv(path, ROWS)
        size = path.stat().st_size
        print(f"Generated {ROWS:,} bank-like rows, {size / 1e6:.0f} MB, in {time.perf_counter() - started:.1f} s")
        emulator = _azurite_with(path, Path(tmp)) if "azure-ingest" in modes else None
        print(f"{'reader':<12} {'time s':>7} {'peak MiB':>9} {'x file':>7}  result")
        for mode in modes:
            (Path(tmp) / "state").mkdir(exist_ok=True)
            done = subprocess.run([sys.executable, "-m", "benchmarks.ingest_scale", "--child", mode, str(path)],
                                  capture_output=True, text=True, check=False,
                                  cwd=Path(__file__).resolve().parents[1])
            if done.returncode != 0:
                print(f"{mode:<12} failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            line = json.loads(done.stdout.strip().splitlines()[-1])
            times = line["peak_mib"] * 2**20 / size
            print(f"{mode:<12} {line['seconds']:>7.1f} {line['peak_mib']:>9,} {times:>7.1f}  {line['result']} "
                  f"(process at start: {line['start_mib']} MiB)")
            shutil.rmtree(Path(tmp) / "state", ignore_errors=True)
        if emulator is not None:
            emulator.stop()
    return 0


def _azurite_with(path: Path, folder: Path) -> Any:
    """An Azurite holding the upload in ``datasets/bank/big.csv``, its connection passed on to the children."""
    from azure.storage.blob import BlobServiceClient

    from devhost.process import start_azurite

    emulator = start_azurite(folder / "azurite")
    service = BlobServiceClient.from_connection_string(emulator.connection_string)
    service.create_container("dataset-versions")
    with path.open("rb") as source:
        service.create_container("datasets").upload_blob("bank/big.csv", source, max_concurrency=2)
    os.environ[AZURITE] = emulator.connection_string
    return emulator


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]))
        raise SystemExit(0)
    raise SystemExit(main())
