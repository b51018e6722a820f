"""Drop -> serving: from the end of an upload to the first successful score by the model it trained.

Runs the real local stack (Azurite, the host, the training worker) at the
default AutoML budget. Target: delay <= budget + 20 s. Run: ``make bench-drop``.
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests
from azure.storage.blob import BlobServiceClient

from benchmarks.common import dataset_bytes
from cli.sample_data import typed
from devhost.process import HostProcess, start_azurite
from shared.settings import Settings


def main() -> int:
    content, source = dataset_bytes()
    budget = Settings.from_env().time_budget_s
    header = content.split(b"\n", 1)[0].decode("utf-8-sig").strip().split(",")
    first = content.split(b"\n", 2)[1].decode().strip().split(",")
    row = {k: typed(v) for k, v in zip(header, first, strict=True) if k != "y"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        emulator = start_azurite(root / "azurite")
        host = HostProcess(root / "state", emulator.connection_string, background=True, scan_interval=0.25,
                           env={"LOCAL_STATE_DIR": str(root / "localstack"), "DEVHOST_LOG_LEVEL": "WARNING"})
        try:
            container = BlobServiceClient.from_connection_string(emulator.connection_string) \
                .get_container_client("datasets")
            if not container.exists():  # the host creates the watched container at start
                container.create_container()
            headers = {"x-functions-key": host.function_key}
            container.get_blob_client("bank/drop.csv").upload_blob(content, overwrite=True)
            uploaded = time.perf_counter()
            scored_at = None
            while time.perf_counter() - uploaded < budget + 600:
                response = requests.post(f"{host.url}/api/score", json={"data": [row]}, headers=headers, timeout=30)
                if response.status_code == 200:
                    scored_at = time.perf_counter()
                    break
                time.sleep(0.1)
            status = requests.get(f"{host.url}/api/status", headers=headers, timeout=30).json()
            run_id = (status["uploads"][0].get("run") or {}).get("run_id") or status["uploads"][0].get("run_id")
            described = requests.get(f"{host.url}/api/runs/{run_id}", headers=headers, timeout=30).json()
        finally:
            host.stop()
            emulator.stop()
    if scored_at is None:
        print("no model served in time")
        return 1
    delay = scored_at - uploaded
    run = status["uploads"][0].get("run") or {}
    print(f"Data: {source}; AutoML budget {budget}s")
    print(f"Upload -> first successful score by the new model: {delay:.1f} s "
          f"(target <= budget + 20 = {budget + 20} s); training steps: {run.get('progress')}")
    deployment = described.get("deployment") or {}
    steps = deployment.get("history", [])
    if steps:  # from the decision (the message queued) to the last recorded step ("<time> <step> -> <next>")
        queued = datetime.fromisoformat(deployment["created_at"])
        done = datetime.fromisoformat(steps[-1].split(" ", 1)[0])
        print(f"Decision -> deployed, through the deployments queue: {(done - queued).total_seconds():.2f} s "
              f"({len(steps)} steps: {', '.join(line.split(' ', 1)[1] for line in steps)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
