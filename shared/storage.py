"""Blob storage clients: a connection string locally, managed identity in Azure (no keys in settings)."""

from __future__ import annotations

import os

from azure.storage.blob import BlobServiceClient

# The emulator's documented development account (not a secret).
_DEV_CONNECTION = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
)


def blob_service() -> BlobServiceClient:
    """From ``AzureWebJobsStorage`` when it is a connection string, else ``AzureWebJobsStorage__blobServiceUri``
    with DefaultAzureCredential (the Function App's managed identity)."""
    connection = os.environ.get("AzureWebJobsStorage", "")
    if connection.strip().lower().rstrip(";") == "usedevelopmentstorage=true":
        connection = _DEV_CONNECTION
    if connection:
        return BlobServiceClient.from_connection_string(connection)
    service_uri = os.environ.get("AzureWebJobsStorage__blobServiceUri")
    if not service_uri:
        raise RuntimeError("set AzureWebJobsStorage (connection string) or AzureWebJobsStorage__blobServiceUri")
    from azure.identity import DefaultAzureCredential

    return BlobServiceClient(service_uri, credential=DefaultAzureCredential())
