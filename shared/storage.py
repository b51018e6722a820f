"""Storage clients: a connection string locally, managed identity in Azure (no keys in settings)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Callable
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, BlobServiceClient, ContainerClient
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from shared.batch import BatchOutputs
from shared.ports import DeploymentQueue

# The emulator's documented development account (not a secret).
_DEV_CONNECTION = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
)


def _connection() -> str:
    connection = os.environ.get("AzureWebJobsStorage", "")
    if connection.strip().lower().rstrip(";") == "usedevelopmentstorage=true":
        return _DEV_CONNECTION
    return connection


def _identity_uri(service: str) -> str:
    """``AzureWebJobsStorage__{service}ServiceUri``: the identity-based connection the Functions host uses too."""
    uri = os.environ.get(f"AzureWebJobsStorage__{service}ServiceUri")
    if not uri:
        raise RuntimeError(f"set AzureWebJobsStorage (connection string) or AzureWebJobsStorage__{service}ServiceUri")
    return uri


def _credential() -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def blob_service() -> BlobServiceClient:
    """From ``AzureWebJobsStorage`` when it is a connection string, else ``AzureWebJobsStorage__blobServiceUri``
    with DefaultAzureCredential (the Function App's managed identity)."""
    connection = _connection()
    if connection:
        return BlobServiceClient.from_connection_string(connection)
    return BlobServiceClient(_identity_uri("blob"), credential=_credential())


def queue_client(name: str) -> QueueClient:
    """A queue of the app's storage account, with the Base64 text encoding queue triggers expect by default."""
    codecs: dict[str, Any] = {"message_encode_policy": TextBase64EncodePolicy(),
                              "message_decode_policy": TextBase64DecodePolicy()}
    connection = _connection()
    if connection:
        return QueueClient.from_connection_string(connection, name, **codecs)
    return QueueClient(_identity_uri("queue"), name, credential=_credential(), **codecs)


class StorageDeploymentQueue(DeploymentQueue):
    """The deployments queue on the app's storage account (Azurite locally), created on first use."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._client: QueueClient | None = None

    def send(self, message: str, delay_s: float) -> None:
        if self._client is None:
            self._client = queue_client(self.name)
        try:
            self._client.send_message(message, visibility_timeout=round(delay_s) or None)
        except ResourceNotFoundError:
            with contextlib.suppress(ResourceExistsError):
                self._client.create_queue()
            self._client.send_message(message, visibility_timeout=round(delay_s) or None)


class BlobBatchOutputs(BatchOutputs):
    """Batch results in a container: the scored CSV is staged block by block and committed at the end."""

    def __init__(self, container: ContainerClient) -> None:
        self.container = container
        with contextlib.suppress(ResourceExistsError):
            container.create_container()

    def write_json(self, name: str, body: dict[str, object]) -> None:
        self.container.get_blob_client(name).upload_blob(json.dumps(body, indent=1), overwrite=True)

    def csv_writer(self, name: str) -> tuple[Callable[[bytes], None], Callable[[], None]]:
        target = self.container.get_blob_client(name)
        blocks: list[BlobBlock] = []

        def write(piece: bytes) -> None:
            block_id = base64.b64encode(f"{len(blocks):08d}".encode()).decode()
            target.stage_block(block_id, piece)
            blocks.append(BlobBlock(block_id))

        def commit() -> None:
            target.commit_block_list(blocks)

        return write, commit
