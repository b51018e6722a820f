"""The Azure backend's records in blob storage, on a real Azurite: create-once claims and ETag-safe updates."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from azure.storage.blob import BlobServiceClient

from shared.azure import state
from shared.azure.blobstore import ContainerStore
from shared.azure.state import BlobPromotionLedger, BlobUploadLog, JsonBlobs
from shared.upload_states import UploadState, record

pytestmark = pytest.mark.integration


@pytest.fixture()
def blobs(blob_service: BlobServiceClient) -> JsonBlobs:
    container = blob_service.get_container_client("pipeline-state")
    container.create_container()
    return JsonBlobs(container)


def test_one_of_many_concurrent_claims_wins(blobs: JsonBlobs):
    ledger = BlobPromotionLedger(blobs)
    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(lambda _: ledger.claim("train-1"), range(16)))
    assert wins.count(True) == 1
    assert ledger.decision("train-1") is None
    ledger.finish("train-1", {"decision": "deployed", "version": "3"})
    assert ledger.decision("train-1") == {"decision": "deployed", "version": "3"}
    assert not ledger.claim("train-1")


def test_a_released_claim_can_be_taken_again_and_a_stale_one_taken_over(blobs: JsonBlobs,
                                                                        monkeypatch: pytest.MonkeyPatch):
    ledger = BlobPromotionLedger(blobs)
    assert ledger.claim("r") and not ledger.claim("r")
    ledger.release("r")
    assert ledger.claim("r")
    monkeypatch.setattr(state, "CLAIM_TTL_S", -1)  # as if the claimer crashed long ago
    assert ledger.claim("r")


def test_concurrent_upload_updates_lose_nothing(blobs: JsonBlobs):
    log = BlobUploadLog(blobs)
    upload = 'bank/jan.csv@"0x8D"'
    record(log, upload, blob="bank/jan.csv", state=UploadState("received"), details={"bytes": 10})
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: record(log, upload, details={f"k{i}": i}), range(20)))
    record(log, upload, state=UploadState("training"), run_id="train-1")
    stored = log.get(upload)
    assert stored is not None
    assert stored["state"] == "training" and stored["run_id"] == "train-1" and stored["blob"] == "bank/jan.csv"
    assert stored["details"] == {"bytes": 10, **{f"k{i}": i for i in range(20)}}
    assert [r["upload_id"] for r in log.list()] == [upload]
    assert log.get("bank/other.csv@x") is None


def test_immutable_copies_are_written_once(blob_service: BlobServiceClient):
    container = blob_service.get_container_client("dataset-versions")
    container.create_container()
    store = ContainerStore(container)
    assert store.put_once("bank/abc/data.csv", b"first")
    assert not store.put_once("bank/abc/data.csv", b"second")
    assert container.download_blob("bank/abc/data.csv").readall() == b"first"
