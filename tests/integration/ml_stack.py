"""A running local stack for the ML tests: Azurite, the host process, a tiny AutoML budget."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from azure.storage.blob import BlobServiceClient, ContainerClient

from devhost.process import HostProcess, start_azurite, wait_for

TERMINAL = {"promoted", "not_promoted", "rejected", "duplicate", "failed", "superseded"}


class Stack:
    def __init__(self, host: HostProcess, container: ContainerClient) -> None:
        self.host = host
        self.container = container
        self.headers = {"x-functions-key": host.function_key}

    def upload(self, name: str, content: bytes, metadata: dict[str, str] | None = None) -> str:
        result = self.container.get_blob_client(name).upload_blob(content, overwrite=True, metadata=metadata)
        return f"{name}@{str(result['etag']).strip(chr(34))}"

    def get(self, path: str, **params: str) -> Any:
        response = requests.get(f"{self.host.url}/api/{path}", headers=self.headers, params=params, timeout=60)
        if response.status_code >= 500:  # the host's own account of it, for whoever reads the failure
            raise AssertionError(f"GET /api/{path} answered {response.status_code}: {response.text[:300]}\n"
                                 f"host log, last lines:\n{self.host.log_text()[-4000:]}")
        response.raise_for_status()
        return response.json()

    def upload_record(self, upload_id: str) -> dict[str, Any] | None:
        return next((u for u in self.get("status", limit="100")["uploads"] if u["upload_id"] == upload_id), None)

    def wait_final(self, upload_id: str) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            record = self.upload_record(upload_id)
            return record if record and record["state"] in TERMINAL else None

        try:
            result: dict[str, Any] = wait_for(final, timeout=300, interval=0.5, what=f"upload {upload_id}")
        except TimeoutError:
            worker_log = Path(self.host.state_dir.parent / "localstack" / "worker.log")
            raise AssertionError(f"{self.upload_record(upload_id)}\n{self.host.log_text()[-4000:]}\n"
                                 f"{worker_log.read_text()[-4000:] if worker_log.exists() else ''}") from None
        return result

    def score(self, rows: list[dict[str, Any]], **extra: Any) -> requests.Response:
        return requests.post(f"{self.host.url}/api/score", json={"data": rows, **extra}, headers=self.headers,
                             timeout=60)

    def model(self, name: str) -> dict[str, Any]:
        return next(m for m in self.get("models")["models"] if m["name"] == name)


def features(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: v for k, v in row.items() if k != "y"} for row in rows]


@contextlib.contextmanager
def running_stack(root: Path, **env: str) -> Iterator[Stack]:
    emulator = start_azurite(root / "azurite")
    host = HostProcess(root / "state", emulator.connection_string, background=True, env={
        "LOCAL_STATE_DIR": str(root / "localstack"), "AUTOML_TIME_BUDGET_S": "3", "TRAINING_WORKER_IDLE_S": "30",
        "TELEMETRY_SAMPLING_RATIO": "1.0", **env})
    blobs = BlobServiceClient.from_connection_string(emulator.connection_string)
    container = blobs.get_container_client("datasets")
    if not container.exists():
        container.create_container()
    try:
        yield Stack(host, container)
    finally:
        host.stop()
        emulator.stop()
