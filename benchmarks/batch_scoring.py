"""Batch scoring of a 1,000,000-row CSV dropped into ``scoring-input/``: rows/s and the host's peak memory.

Runs the real stack (Azurite, host, worker), trains a small model, then drops the
big file and waits for its summary. Peak memory is the host process's VmHWM.
Target: the file scores within 2 GiB. Run: ``make bench-batch`` (ROWS=... to change).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from cli import sample_data
from devhost.process import HostProcess, start_azurite, wait_for

ROWS = int(os.environ.get("ROWS", "1000000"))


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def big_csv(rows: int) -> bytes:
    block = sample_data.rows(10_000, seed=5)
    body = sample_data.to_csv([{k: v for k, v in r.items() if k != "y"} for r in block])
    header, _, lines = body.partition(b"\n")
    return header + b"\n" + lines * (rows // 10_000)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        emulator = start_azurite(root / "azurite")
        host = HostProcess(root / "state", emulator.connection_string, background=True,
                           env={"LOCAL_STATE_DIR": str(root / "localstack"), "AUTOML_TIME_BUDGET_S": "5",
                                "DEVHOST_LOG_LEVEL": "WARNING"})
        try:
            blobs = BlobServiceClient.from_connection_string(emulator.connection_string)
            datasets = blobs.get_container_client("datasets")
            if not datasets.exists():
                datasets.create_container()
            datasets.get_blob_client("bank/train.csv").upload_blob(sample_data.to_csv(sample_data.rows(3000)))
            deployments = root / "localstack" / "deployments" / "bank.json"
            wait_for(deployments.exists, timeout=600, interval=1, what="a deployed model")
            content = big_csv(ROWS)
            before = peak_rss_mib(host.process.pid)
            inputs = blobs.get_container_client("scoring-input")
            if not inputs.exists():
                inputs.create_container()
            inputs.get_blob_client("bank/big.csv").upload_blob(content, overwrite=True, max_concurrency=4)
            uploaded = time.perf_counter()
            output = blobs.get_container_client("scoring-output")
            summary_blob = output.get_blob_client("bank/big.summary.json")
            wait_for(lambda: output.exists() and summary_blob.exists(), timeout=1800, interval=0.5,
                     what="the batch summary")
            wall = time.perf_counter() - uploaded
            summary = json.loads(summary_blob.download_blob().readall())
            peak = peak_rss_mib(host.process.pid)
        finally:
            host.stop()
            emulator.stop()
    chunk = summary["rows"] // summary["chunks"]
    print(f"Input: {summary['rows']:,} rows, {len(content) / 1e6:.0f} MB, in chunks of {chunk:,}")
    print(f"Scoring inside the function: {summary['seconds']:.1f} s = {summary['rows_per_second']:,} rows/s")
    print(f"Drop to summary written: {wall:.1f} s = {summary['rows'] / wall:,.0f} rows/s end to end")
    print(f"Host peak memory (VmHWM): {peak:.0f} MiB (before the drop: {before:.0f} MiB; target < 2048 MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
