from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from devhost.process import start_azurite


@pytest.fixture()
def azurite_conn(tmp_path: Path) -> Iterator[str]:
    """A real Azurite on free ports with its own data folder (it starts in well under a second)."""
    emulator = start_azurite(tmp_path / "azurite")
    try:
        yield emulator.connection_string
    finally:
        emulator.stop()


@pytest.fixture()
def blob_service(azurite_conn: str) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(azurite_conn)


@pytest.fixture()
def queue_service(azurite_conn: str) -> QueueServiceClient:
    return QueueServiceClient.from_connection_string(azurite_conn)


@pytest.fixture()
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"
