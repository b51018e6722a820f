"""The whole local story in one command: stack up, CSV in, function invoked, endpoints answering."""

from __future__ import annotations

import time
from pathlib import Path

import requests
from azure.storage.blob import BlobServiceClient

from cli import sample_data
from devhost import azurite
from devhost.process import ROOT, HostProcess, wait_for


def _say(message: str) -> None:
    print(f"==> {message}", flush=True)


def _storage_connection() -> str:
    """Reuse an Azurite on the usual ports, otherwise let the host start one on free ports."""
    if azurite.port_open("127.0.0.1", azurite.DEFAULT_PORTS[0]):
        return azurite.connection_string("127.0.0.1", *azurite.DEFAULT_PORTS)
    return azurite.connection_string("127.0.0.1", *azurite.pick_ports())


def _dataset(data: Path | None, state: Path) -> Path:
    if data is not None:
        if not data.is_file():
            raise SystemExit(f"--data {data}: no such CSV file")
        return data
    sample = state / "bank_sample.csv"
    _say(f"No --data given: generating a sample with the Bank Marketing schema at {sample}")
    sample.parent.mkdir(parents=True, exist_ok=True)
    sample.write_bytes(sample_data.to_csv(sample_data.rows(3000)))
    return sample


def run(data: Path | None, model: str) -> int:
    state = ROOT / ".devhost" / "demo"
    data = _dataset(data, state)
    port = 7071 if not azurite.port_open("127.0.0.1", 7071) else None
    _say("Starting the local stack (Azurite + development host)")
    host = HostProcess(state, _storage_connection(), background=True, port=port)
    try:
        print(f"    Host: {host.url}   function key: {host.function_key}")
        print(f"    Host log: {host.log_path}")
        blob_name = f"{model}/{data.name}"
        _say(f"Uploading {data} to datasets/{blob_name}")
        blobs = BlobServiceClient.from_connection_string(azurite.connection_string("127.0.0.1", *_ports(host)))
        container = blobs.get_container_client("datasets")
        if not container.exists():
            container.create_container()
        started = time.monotonic()
        with data.open("rb") as handle:
            container.upload_blob(blob_name, handle, overwrite=True, metadata={"target": "y"})
        wait_for(lambda: "Executed 'Functions.ingest' (Succeeded" in host.log_text(), timeout=120,
                 what="the ingest function")
        _say(f"The blob trigger ran ingest {time.monotonic() - started:.2f}s after the upload")
        health = requests.get(f"{host.url}/api/health", timeout=10)
        _say(f"GET /api/health -> {health.status_code} {health.text}")
        return 0 if health.ok else 1
    finally:
        host.stop()
        _say("Stack stopped")


def _ports(host: HostProcess) -> tuple[int, int, int]:
    ports = azurite.emulator_ports(host.storage)
    if ports is None:
        raise RuntimeError("the demo expects a loopback emulator")
    return ports
