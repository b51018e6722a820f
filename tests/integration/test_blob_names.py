"""Blob names the host cannot read, on real Azurite: each costs that blob alone, and says why."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from cli import sample_data
from devhost.blob_listing import Listed, ListingBroken, ResilientListing, Unlisted
from devhost.process import wait_for
from tests.integration.ml_stack import Stack, running_stack

pytestmark = pytest.mark.integration


def names_listed(blob_service: BlobServiceClient, names: list[str], prefix: str = "") -> list[tuple[str, str]]:
    container = blob_service.get_container_client("names")
    container.create_container()
    for name in names:
        container.get_blob_client(name).upload_blob(b"x", overwrite=True)
    listing = ResilientListing(container, prefix)
    return [(type(blob).__name__, blob.name) for blob in listing]


def test_a_listing_goes_on_past_names_storage_cannot_list(blob_service: BlobServiceClient):
    """Azurite answers 500 to any listing page holding a NUL or another control character XML cannot carry."""
    listed = names_listed(blob_service, [
        "a.csv", "bank/2024\x1b[31m.csv", "bank/2024-01.csv", "nl\n/ansi.csv", "nul\x00name/x.csv", "sp/q.csv",
        "zz\x01a.csv", "zz\x02", "zz\t", "zzz.csv"])
    assert listed == [
        ("Listed", "a.csv"), ("Unlisted", "bank/2024\ufffd"), ("Listed", "bank/2024-01.csv"),
        ("Listed", "nl\n/ansi.csv"), ("Unlisted", "nul\ufffd"), ("Listed", "sp/q.csv"), ("Unlisted", "zz\ufffd"),
        ("Listed", "zz\t"), ("Listed", "zzz.csv")]


def test_a_name_right_after_the_skipped_ones_is_listed_and_a_prefix_is_kept(blob_service: BlobServiceClient):
    listed = names_listed(blob_service, ["m/a\x00", "m/a\t", "m/b", "n/x"], prefix="m/")
    assert listed == [("Unlisted", "m/a\ufffd"), ("Listed", "m/a\t"), ("Listed", "m/b")]


def test_where_the_search_cannot_follow_the_listing_says_after_which_name_it_fails(blob_service: BlobServiceClient):
    container = blob_service.get_container_client("beyond")
    container.create_container()
    for name in ("a.csv", "é\x00.csv", "ü.csv"):
        container.get_blob_client(name).upload_blob(b"x", overwrite=True)
    seen: list[str] = []
    with pytest.raises(ListingBroken, match=r"fails after 'a\.csv': the name of the blob after it holds a character"):
        for blob in ResilientListing(container):
            seen.append(blob.name)
    assert seen == ["a.csv"]  # what comes before is still listed


def test_what_a_skipped_name_is_reported_as():
    skipped = Unlisted("nul")
    assert skipped.name == "nul\ufffd" and skipped.etag == "unlisted"
    assert skipped.reason.startswith("storage cannot list a blob whose name starts with 'nul' followed by a control "
                                     "character")
    assert Listed("a", "0x1").name == "a"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("blob-names")) as running:
        yield running


def rejected_events(state_dir: Path) -> list[dict[str, object]]:
    with sqlite3.connect(state_dir / "telemetry.db") as db:
        rows = db.execute("SELECT body FROM envelopes WHERE type='Event' AND name='DatasetRejected'").fetchall()
    return [json.loads(body)["data"]["baseData"]["properties"] for (body,) in rows]


def test_one_bad_blob_name_costs_that_blob_alone(stack: Stack):
    """A NUL in a name broke every listing of the container; a '..' segment broke the receipt of every scan. Each
    is now rejected with its reason, and an upload made after them, sorting after them, is processed."""
    stack.upload("nul\x00name/x.csv", b"y\n1\n")
    stack.upload("..\\..\\x.csv", b"y\n1\n")  # Azurite keeps it as ../../x.csv
    unlisted = "nul\ufffd@unlisted"
    wait_for(lambda: stack.upload_record(unlisted), timeout=60, interval=0.5, what="the unlistable blob rejected")
    valid = stack.upload("zz/after.csv", sample_data.to_csv(sample_data.rows(120, seed=5)))
    record = wait_for(lambda: (r := stack.upload_record(valid)) and r["state"] != "received" and r,
                      timeout=120, interval=0.5, what="the valid upload processed")
    assert record["state"] in ("training", "promoted", "not_promoted"), record
    uploads = {u["blob"]: u for u in stack.get("status", limit="100")["uploads"]}
    nul, dots = uploads["nul\ufffd"], uploads["../../x.csv"]
    assert nul["state"] == dots["state"] == "rejected"
    assert nul["reason"].startswith("storage cannot list a blob whose name starts with 'nul' followed by a control "
                                    "character")
    assert dots["reason"] == ("the host cannot read this blob: its name has a '.' or '..' segment, which HTTP "
                              "clients resolve, so its URL names another blob")
    log = stack.host.log_text()
    assert "Storage is unreachable" not in log  # a bad name is no outage
    assert "Blob datasets/nul\ufffd is not processed" in log

    def in_telemetry() -> dict[str, object] | None:
        found = {str(e["upload_id"]): e["reason"] for e in rejected_events(stack.host.state_dir)
                 if e.get("code") == "unreadable_name"}
        return found if len(found) == 2 else None

    reasons = wait_for(in_telemetry, timeout=30, interval=0.5, what="the rejections in telemetry")
    assert reasons == {unlisted: nul["reason"], dots["upload_id"]: dots["reason"]}


def test_storage_trouble_while_claiming_is_retried_never_a_rejected_upload(blob_service: BlobServiceClient,
                                                                          queue_service: QueueServiceClient):
    """Only an answer about the name itself rejects a blob: a receipts container wiped under a running host (404),
    like an outage, leaves the upload where it is, and the next scan claims it."""
    from devhost.blob_listener import HOSTS_CONTAINER, BlobTriggerListener
    from devhost.discovery import discover, load_app

    rejected: list[object] = []
    listener = BlobTriggerListener(blob_service, queue_service, discover(load_app("tests.fixtures.sample_app:app")),
                                   "names-test", on_rejected=rejected.append)
    listener.prepare()
    blob_service.get_container_client("uploads").get_blob_client("a.csv").upload_blob(b"x", overwrite=True)
    blob_service.delete_container(HOSTS_CONTAINER)
    wait_for(lambda: not blob_service.get_container_client(HOSTS_CONTAINER).exists(), timeout=10, what="deleted")
    assert listener.scan_once() == 0 and rejected == []
    blob_service.create_container(HOSTS_CONTAINER)
    assert listener.scan_once() == 1 and rejected == []


def test_pages_follow_storage_s_own_continuation_token(blob_service: BlobServiceClient,
                                                      monkeypatch: pytest.MonkeyPatch):
    from devhost import blob_listing

    monkeypatch.setattr(blob_listing, "PAGE", 2)
    names = [f"p{i}.csv" for i in range(5)]
    assert names_listed(blob_service, names) == [("Listed", name) for name in names]


def test_a_container_that_fails_every_page_is_an_outage_found_in_a_few_calls():
    """Not a name to search for for a thousand calls: the error reaches the host, which reports an outage."""
    from azure.core.exceptions import HttpResponseError

    class Failing:
        container_name = "datasets"
        calls = 0

        def list_blobs(self, **kwargs: object) -> object:
            Failing.calls += 1
            error = HttpResponseError("InternalError: the server encountered an internal error")
            error.status_code = 500  # what a listing page holding an unlistable name answers too
            raise error

    failing = Failing()
    with pytest.raises(HttpResponseError):
        list(ResilientListing(failing))  # type: ignore[arg-type]
    assert Failing.calls <= 12
