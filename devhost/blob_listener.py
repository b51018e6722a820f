"""Blob triggers on Azurite: container scan, receipts, an internal queue, retries and poison.

It follows the real host's protocol so that several hosts can share one storage
account: a blob version (name + ETag) is claimed by creating its receipt with
If-None-Match ``*`` (only one host wins), then a message goes to the internal
queue, whose visibility timeout hands each message to one worker at a time.
After ``maxDequeueCount`` failed tries the message moves to the poison queue.

A blob the host cannot read for its name alone (one storage cannot list, or one whose URL names another blob)
costs that blob alone: it is reported through ``on_rejected`` with the reason, and the scan goes on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.functions.meta import Datum
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient, QueueMessage, QueueServiceClient

from devhost.blob_listing import Listed, ListingBroken, ResilientListing, Unlisted
from devhost.discovery import FunctionSpec, blob_path_parts
from devhost.invoker import decode_blob_trigger, decode_sdk_trigger, invoke_sync, sdk_type_of
from devhost.message_visibility import VisibilityKeeper
from devhost.tracing import instrumentation
from shared.printable import printable

log = logging.getLogger("devhost.blobs")
# Storage's answers that are about a blob's name itself: nothing but another name will ever help.
NAME_ERRORS = frozenset({"InvalidResourceName", "InvalidUri", "InvalidBlobOrBlock", "OutOfRangeInput"})

HOSTS_CONTAINER = "azure-webjobs-hosts"
POISON_QUEUE = "webjobs-blobtrigger-poison"
# The host's own storage calls are not the app's dependencies: no spans for them.
QUIET: dict[str, Any] = {"tracing_options": {"enabled": False}}
# A receipt left "claimed" this long without its queue message is taken over.
CLAIM_TIMEOUT_S = 60.0
MAX_KNOWN_BLOBS = 100_000
DOWNLOAD_CONCURRENCY = 2  # ranges of a blob downloaded at once (each held until written to disk)


def normalise_etag(etag: str) -> str:
    return etag.strip('"')


def unaddressable(name: str) -> str | None:
    """Why the host cannot read a listed blob by its name, or None. A '.' or '..' segment is resolved by HTTP
    clients (``a/../b`` is requested as ``b``): its URL names another blob, and its receipt could not be written."""
    if any(segment in (".", "..") for segment in name.replace("\\", "/").split("/")):
        return "its name has a '.' or '..' segment, which HTTP clients resolve, so its URL names another blob"
    return None


@dataclass(frozen=True)
class RejectedBlob:
    """A blob its function will never see, and why: the host cannot read it by its name."""

    function: str
    container: str
    name: str
    etag: str
    reason: str


@dataclass(frozen=True)
class BlobWatch:
    spec: FunctionSpec
    container: str
    prefix: str
    matcher: Any

    @classmethod
    def of(cls, spec: FunctionSpec) -> BlobWatch:
        container, prefix, matcher = blob_path_parts(str(spec.trigger["path"]))
        return cls(spec, container, prefix, matcher)


class BlobTriggerListener:
    def __init__(
        self,
        blob_service: BlobServiceClient,
        queue_service: QueueServiceClient,
        specs: list[FunctionSpec],
        host_id: str,
        *,
        max_dequeue_count: int = 5,
        retry_delay_s: int = 0,
        visibility_timeout_s: int = 30,
        max_parallel: int = 4,
        poll_interval_s: float = 0.25,
        max_idle_interval_s: float = 1.0,
        on_invoked: Callable[[str, str, bool], None] | None = None,
        on_rejected: Callable[[RejectedBlob], None] | None = None,
        spool_dir: Path | None = None,
    ) -> None:
        self.blobs = blob_service
        # Where each blob is copied for its invocation (the system's temporary folder when None): on disk, so that
        # the host holds a chunk of an upload at a time, never the whole of it.
        self.spool_dir = spool_dir
        self.watches = [BlobWatch.of(s) for s in specs if s.trigger_type == "blobTrigger"]
        self.host_id = host_id
        self.max_dequeue_count = max_dequeue_count
        self.retry_delay_s = retry_delay_s
        self.visibility_timeout_s = visibility_timeout_s
        self.poll_interval_s = poll_interval_s
        # Polling backs off to this while nothing arrives: each scan is a storage listing parsed in Python,
        # which takes GIL time from the requests the host serves meanwhile.
        self.max_idle_interval_s = max(max_idle_interval_s, poll_interval_s)
        self.queue: QueueClient = queue_service.get_queue_client(f"azure-webjobs-blobtrigger-{host_id}")
        self.poison: QueueClient = queue_service.get_queue_client(POISON_QUEUE)
        self.receipts = blob_service.get_container_client(HOSTS_CONTAINER)
        # Blob versions already claimed here: a cache that spares storage calls, bounded because a claim is
        # also recorded by its receipt (a forgotten version is found claimed again, never processed twice).
        self._known: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._pool = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="blob-fn")
        self._max_parallel = max_parallel
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._prepared = False
        self._storage_down_since: float | None = None
        self.on_invoked = on_invoked
        self.on_rejected = on_rejected
        self._listings = {(w.container, w.prefix): ResilientListing(blob_service.get_container_client(w.container),
                                                                    w.prefix, **QUIET) for w in self.watches}
        self._broken: set[str] = set()  # listing failures already said, said once

    # ---- set-up -------------------------------------------------------
    def prepare(self) -> None:
        """Create the host's containers and queues, and learn existing receipts."""
        with instrumentation(enabled=False):
            self._prepare()

    def _prepare(self) -> None:
        for create in (self.receipts.create_container, self.queue.create_queue, self.poison.create_queue):
            with contextlib.suppress(ResourceExistsError):
                create(**QUIET)
        for watch in self.watches:
            with contextlib.suppress(ResourceExistsError):
                self.blobs.create_container(watch.container, **QUIET)
            receipts = self.receipts.list_blobs(name_starts_with=self._receipt_prefix(watch), include=["metadata"],
                                                **QUIET)
            for receipt in receipts:
                parsed = self._parse_receipt(watch, receipt.name)
                if parsed is None:
                    continue
                etag, blob_name = parsed
                status = (receipt.metadata or {}).get("status")
                age = (datetime.now(UTC) - receipt.last_modified).total_seconds()
                if status == "claimed" and age > CLAIM_TIMEOUT_S:
                    # A host died between claiming and queueing: queue it now, once.
                    self._requeue_stale_claim(watch, receipt.name, normalise_etag(receipt.etag), blob_name, etag)
                self._remember((watch.spec.name, blob_name, etag))
        self._prepared = True

    def _remember(self, key: tuple[str, str, str]) -> None:
        self._known[key] = None
        while len(self._known) > MAX_KNOWN_BLOBS:
            self._known.popitem(last=False)

    def _receipt_prefix(self, watch: BlobWatch) -> str:
        return f"blobreceipts/{self.host_id}/{watch.spec.function_id}/"

    def _receipt_name(self, watch: BlobWatch, etag: str, blob_name: str) -> str:
        return f"{self._receipt_prefix(watch)}{etag}/{watch.container}/{blob_name}"

    def _parse_receipt(self, watch: BlobWatch, name: str) -> tuple[str, str] | None:
        rest = name[len(self._receipt_prefix(watch)):]
        etag, _, tail = rest.partition("/")
        container, _, blob_name = tail.partition("/")
        if container != watch.container or not blob_name:
            return None
        return etag, blob_name

    # ---- scanning -----------------------------------------------------
    def scan_once(self) -> int:
        """Claim and queue every blob version not seen before; returns how many were queued."""
        if not self._prepared:
            self.prepare()
        queued = 0
        for watch in self.watches:
            try:
                queued += self._scan(watch)
            except ListingBroken as broken:  # the names before it were claimed; say where it stops, once
                if str(broken) not in self._broken:
                    self._broken.add(str(broken))
                    log.error("%s", printable(broken))
        if queued:
            self._wake.set()
        return queued

    def _scan(self, watch: BlobWatch) -> int:
        queued = 0
        for blob in self._listings[(watch.container, watch.prefix)]:
            if not watch.matcher.match(blob.name):
                continue
            key = (watch.spec.name, blob.name, blob.etag)
            if key in self._known:
                continue
            taken = self._take(watch, blob)
            if taken is not None:
                self._remember(key)
                queued += taken
        return queued

    def _take(self, watch: BlobWatch, blob: Listed | Unlisted) -> bool | None:
        """Claim one blob, in a try of its own: a name the host cannot read is rejected and costs that blob alone.
        True when queued here; None when it is to be looked at again at the next scan."""
        if isinstance(blob, Unlisted):
            return self._reject(RejectedBlob(watch.spec.name, watch.container, blob.name, blob.etag, blob.reason))
        reason = unaddressable(blob.name)
        try:
            if reason is None:
                return self._claim(watch, blob.name, blob.etag)
        except HttpResponseError as error:
            if error.status_code != 400 or getattr(error, "error_code", None) not in NAME_ERRORS:
                # Storage trouble (an outage, a wiped receipts container, an expired credential), not the name's:
                # the blob stays where it is and the next scan tries it again.
                log.warning("Could not claim blob %s/%s (%s %s); trying again at the next scan", watch.container,
                            printable(blob.name), error.status_code, getattr(error, "error_code", None))
                return None
            reason = f"storage refuses requests for its name ({error.status_code} {getattr(error, 'error_code', None)})"
        except ValueError as error:  # a name the SDK cannot put in a URL
            reason = f"its name cannot be put in a URL ({printable(error)})"
        return self._reject(RejectedBlob(watch.spec.name, watch.container, blob.name, blob.etag,
                                         f"the host cannot read this blob: {reason}"))

    def _reject(self, rejected: RejectedBlob) -> bool | None:
        """Log and report a blob its function will never see: False once reported, None to try at the next scan."""
        log.warning("Blob %s/%s is not processed: %s", rejected.container, printable(rejected.name),
                    printable(rejected.reason))
        if self.on_rejected is None:
            return False
        try:
            self.on_rejected(rejected)
        except Exception:  # recorded at the next scan; meanwhile the other blobs go on
            log.exception("Could not record blob %s/%s as rejected", rejected.container, printable(rejected.name))
            return None
        return False

    def _claim(self, watch: BlobWatch, blob_name: str, etag: str) -> bool:
        receipt = self.receipts.get_blob_client(self._receipt_name(watch, etag, blob_name))
        try:
            created = receipt.upload_blob(b"", overwrite=False, metadata={"status": "claimed"}, **QUIET)
        except ResourceExistsError:
            return False  # another host (or an earlier run) owns this version
        try:
            self._send(watch, blob_name, etag)
        except AzureError:
            receipt.delete_blob(**QUIET)  # give the claim back so the next scan retries it
            raise
        receipt.set_blob_metadata({"status": "queued"}, etag=created["etag"],
                                  match_condition=MatchConditions.IfNotModified, **QUIET)
        return True

    def _requeue_stale_claim(self, watch: BlobWatch, receipt_name: str, receipt_etag: str,
                             blob_name: str, etag: str) -> None:
        receipt = self.receipts.get_blob_client(receipt_name)
        try:
            receipt.set_blob_metadata({"status": "queued"}, etag=receipt_etag,
                                      match_condition=MatchConditions.IfNotModified, **QUIET)
        except (ResourceModifiedError, ResourceNotFoundError):
            return  # someone else recovered it
        log.warning("Recovering blob %s/%s, claimed by a host that stopped before queueing it",
                    watch.container, printable(blob_name))
        self._send(watch, blob_name, etag)

    def _send(self, watch: BlobWatch, blob_name: str, etag: str) -> None:
        message = {"Type": "BlobTrigger", "FunctionId": watch.spec.function_id, "BlobType": "BlockBlob",
                   "ContainerName": watch.container, "BlobName": blob_name, "ETag": etag}
        self.queue.send_message(json.dumps(message), **QUIET)

    # ---- processing ---------------------------------------------------
    def drain_once(self) -> int:
        """Process the messages visible now; returns how many were handled."""
        if not self._prepared:
            self.prepare()
        handled = 0
        while True:
            batch = list(self.queue.receive_messages(messages_per_page=self._max_parallel,
                                                     visibility_timeout=self.visibility_timeout_s,
                                                     max_messages=self._max_parallel, **QUIET))
            if not batch:
                return handled
            list(self._pool.map(self._process_quietly, batch))
            handled += len(batch)

    def _watch_for(self, function_id: str) -> BlobWatch | None:
        return next((w for w in self.watches if w.spec.function_id == function_id), None)

    def _process_quietly(self, message: QueueMessage) -> None:
        with instrumentation(enabled=False):  # the invocation itself switches it back on
            self._process(message)

    def _process(self, message: QueueMessage) -> None:
        try:
            body = json.loads(message.content)
            watch = self._watch_for(body["FunctionId"])
        except (ValueError, KeyError, TypeError):
            log.error("Dropping an unreadable blob trigger message: %s", printable(repr(message.content)))
            self.queue.delete_message(message, **QUIET)
            return
        if watch is None:
            log.warning("No function %s here any more; dropping its message", printable(body["FunctionId"]))
            self.queue.delete_message(message, **QUIET)
            return
        blob_name, etag = body["BlobName"], body["ETag"]
        reason = unaddressable(blob_name)
        if reason is not None:  # queued before names were checked: it cannot be read, so it cannot be retried
            self._reject(RejectedBlob(watch.spec.name, watch.container, blob_name, etag,
                                      f"the host cannot read this blob: {reason}"))
            self.queue.delete_message(message, **QUIET)
            return
        receipt = self.receipts.get_blob_client(self._receipt_name(watch, etag, blob_name))
        tries = message.dequeue_count or 1
        if tries > self.max_dequeue_count:
            self._to_poison(message, body, receipt)
            return
        try:
            if (receipt.get_blob_properties(**QUIET).metadata or {}).get("status") == "done":
                self.queue.delete_message(message, **QUIET)
                return
        except ResourceNotFoundError:
            pass
        blob = self.blobs.get_blob_client(watch.container, blob_name)
        sdk_type = sdk_type_of(watch.spec)
        if self.spool_dir is not None:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=self.spool_dir, prefix="blob-") as spool:  # gone when closed, or at a crash
            try:
                if sdk_type is not None:  # the function reads the blob itself, through the client it is given
                    props = blob.get_blob_properties(etag=f'"{etag}"',
                                                     match_condition=MatchConditions.IfNotModified, **QUIET)
                    input_stream = decode_sdk_trigger(watch.spec, sdk_type, watch.container, blob_name)
                else:
                    download = blob.download_blob(etag=f'"{etag}"', match_condition=MatchConditions.IfNotModified,
                                                  max_concurrency=DOWNLOAD_CONCURRENCY, **QUIET)
                    download.readinto(spool)  # a few ranges at a time, each written where it goes
                    props = download.properties
                    input_stream = decode_blob_trigger(watch.spec, spool, {
                        "BlobTrigger": Datum(f"{watch.container}/{blob_name}", "string"),
                        "Uri": Datum(blob.url, "string"),
                        "Properties": Datum(json.dumps({
                            "ContentLength": props.size, "Length": props.size, "ETag": etag,
                            "ContentType": props.content_settings.content_type,
                            "LastModified": props.last_modified.isoformat() if props.last_modified else None,
                        }), "json"),
                        "Metadata": Datum(json.dumps(dict(props.metadata or {})), "json"),
                    })
            except (ResourceModifiedError, ResourceNotFoundError):
                # Overwritten or deleted since it was queued: the new version has its own receipt.
                log.info("Skipping %s/%s: it changed or went away since it was queued", watch.container,
                         printable(blob_name))
                self._set_status(receipt, "skipped")
                self.queue.delete_message(message, **QUIET)
                return
            keeper = VisibilityKeeper(self.queue, message, self.visibility_timeout_s)
            try:
                invoke_sync(watch.spec, input_stream, trigger="blob",
                            trace_parent=(props.metadata or {}).get("traceparent", ""),
                            retry=tries - 1, max_retry=self.max_dequeue_count - 1,
                            attributes=lambda: {"blob.name": f"{watch.container}/{blob_name}"})
                ok = True
            except Exception:  # already logged by the invoker; the queue decides on a retry
                ok = False
            finally:
                keeper.stop()
        if self.on_invoked:
            self.on_invoked(watch.spec.name, blob_name, ok)
        if ok:
            self._set_status(receipt, "done")
            self.queue.delete_message(keeper.message, pop_receipt=keeper.pop_receipt, **QUIET)
        elif tries >= self.max_dequeue_count:
            self._to_poison(message, body, receipt, pop_receipt=keeper.pop_receipt)
        else:
            self.queue.update_message(keeper.message, pop_receipt=keeper.pop_receipt,
                                      visibility_timeout=self.retry_delay_s, **QUIET)

    def _to_poison(self, message: QueueMessage, body: dict[str, Any], receipt: Any,
                   pop_receipt: str | None = None) -> None:
        log.error("Blob %s/%s failed %d times; moved to queue %s", printable(body["ContainerName"]),
                  printable(body["BlobName"]), message.dequeue_count, POISON_QUEUE)
        self.poison.send_message(json.dumps(body), **QUIET)
        self._set_status(receipt, "poisoned")
        self.queue.delete_message(message, pop_receipt=pop_receipt or message.pop_receipt, **QUIET)

    @staticmethod
    def _set_status(receipt: Any, status: str) -> None:
        try:
            receipt.set_blob_metadata({"status": status}, **QUIET)
        except ResourceNotFoundError:
            receipt.upload_blob(b"", overwrite=True, metadata={"status": status}, **QUIET)

    # ---- background loop ----------------------------------------------
    def start(self) -> None:
        for target, name in ((self._scan_loop, "blob-scan"), (self._drain_loop, "blob-queue")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._pool.shutdown(wait=True)

    def _guarded(self, step: Callable[[], int]) -> int:
        try:
            result = step()
        except AzureError as error:
            if self._storage_down_since is None:
                self._storage_down_since = time.monotonic()
                log.warning("Storage is unreachable (%s); retrying until it is back", type(error).__name__)
            return 0
        if self._storage_down_since is not None:
            log.warning("Storage is reachable again after %.1fs", time.monotonic() - self._storage_down_since)
            self._storage_down_since = None
        return result

    def _scan_loop(self) -> None:
        with instrumentation(enabled=False):  # the host's polling is not the app's telemetry
            interval = self.poll_interval_s
            while not self._stop.is_set():
                found = self._guarded(self.scan_once)
                interval = self.poll_interval_s if found else min(interval * 2, self.max_idle_interval_s)
                self._stop.wait(interval)

    def _drain_loop(self) -> None:
        with instrumentation(enabled=False):
            self._drain_forever()

    def _drain_forever(self) -> None:
        interval = self.poll_interval_s
        while not self._stop.is_set():
            if self._guarded(self.drain_once) == 0:
                self._wake.wait(interval)  # a scan that queues something wakes it at once
                self._wake.clear()
                interval = min(interval * 2, 2 * self.max_idle_interval_s)
            else:
                interval = self.poll_interval_s
