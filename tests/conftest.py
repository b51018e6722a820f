from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from devhost.process import start_azurite

# host.json waits 30 s before a failed queue message is tried again, as a deployment in Azure should; the hosts
# the tests start retry at once, through the override the Functions host itself reads.
os.environ.setdefault("AzureFunctionsJobHost__extensions__queues__visibilityTimeout", "00:00:00")


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything that starts Azurite and host processes is slow: ``pytest -m "not slow"`` is the fast loop.

    The slow files go first: ``make test`` hands whole files to its processes in this order, and the many short
    ones then fill the gaps at the end instead of one long file starting last (its tail was the run's)."""
    for item in items:
        if item.get_closest_marker("integration") or item.get_closest_marker("reliability"):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: 0 if item.get_closest_marker("reliability") else
               1 if item.get_closest_marker("integration") else 2)
