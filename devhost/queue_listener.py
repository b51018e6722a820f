"""Queue triggers on Azurite queues, with the Functions host's semantics.

Polling backs off from 0.1 s to ``maxPollingInterval`` while a queue is empty
and snaps back when a message arrives. A received message stays invisible
while its function runs (renewed by a keeper thread), is deleted when the
function succeeds, and becomes visible again after ``visibilityTimeout`` when
it fails. Its dequeue count rises with each delivery; after
``maxDequeueCount`` tries it moves to ``<queue>-poison``. Message bodies are
Base64 text, the host's default encoding.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.functions.meta import Datum
from azure.storage.queue import QueueClient, QueueMessage, QueueServiceClient

from devhost.discovery import FunctionSpec
from devhost.invoker import decode_trigger, invoke_sync
from devhost.message_visibility import VisibilityKeeper
from devhost.tracing import instrumentation

log = logging.getLogger("devhost.queues")
QUIET: dict[str, Any] = {"tracing_options": {"enabled": False}}
MIN_POLL_S = 0.1


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


class QueueTriggerListener:
    def __init__(self, queue_service: QueueServiceClient, specs: list[FunctionSpec], *,
                 max_dequeue_count: int = 5, retry_delay_s: int = 0, visibility_timeout_s: int = 30,
                 max_polling_interval_s: float = 2.0, batch_size: int = 4,
                 on_invoked: Callable[[str, str, bool], None] | None = None) -> None:
        self.specs = [s for s in specs if s.trigger_type == "queueTrigger"]
        self.queues: dict[str, QueueClient] = {
            s.name: queue_service.get_queue_client(str(s.trigger["queueName"])) for s in self.specs}
        self.poison: dict[str, QueueClient] = {
            s.name: queue_service.get_queue_client(f"{s.trigger['queueName']}-poison") for s in self.specs}
        self.max_dequeue_count = max_dequeue_count
        self.retry_delay_s = retry_delay_s
        self.visibility_timeout_s = visibility_timeout_s
        self.max_polling_interval_s = max_polling_interval_s
        self.batch_size = batch_size
        self.on_invoked = on_invoked
        self._pool = ThreadPoolExecutor(max_workers=max(1, batch_size * max(1, len(self.specs))),
                                        thread_name_prefix="queue-fn")
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def prepare(self) -> None:
        with instrumentation(enabled=False):
            for client in (*self.queues.values(), *self.poison.values()):
                with contextlib.suppress(ResourceExistsError):
                    client.create_queue(**QUIET)

    def drain_once(self, spec: FunctionSpec) -> int:
        """Run the messages of ``spec``'s queue that are visible now; returns how many were handled."""
        queue = self.queues[spec.name]
        batch = list(queue.receive_messages(messages_per_page=self.batch_size, max_messages=self.batch_size,
                                            visibility_timeout=self.visibility_timeout_s, **QUIET))
        list(self._pool.map(lambda m: self._process(spec, m), batch))
        return len(batch)

    def _process(self, spec: FunctionSpec, message: QueueMessage) -> None:
        with instrumentation(enabled=False):  # the invocation itself switches it back on
            self._run(spec, message)

    def _run(self, spec: FunctionSpec, message: QueueMessage) -> None:
        queue = self.queues[spec.name]
        tries = message.dequeue_count or 1
        if tries > self.max_dequeue_count:
            self._to_poison(spec, message, message.pop_receipt)
            return
        try:
            body = base64.b64decode(str(message.content), validate=True)
        except (binascii.Error, ValueError):
            log.error("Queue %s: message %s is not Base64 text; moved to the poison queue", queue.queue_name,
                      message.id)
            self._to_poison(spec, message, message.pop_receipt)
            return
        value = decode_trigger(spec, Datum(body, "bytes"), {
            "Id": Datum(message.id, "string"), "DequeueCount": Datum(str(tries), "int"),
            "PopReceipt": Datum(message.pop_receipt, "string"),
            "InsertionTime": Datum(_iso(message.inserted_on), "string"),
            "ExpirationTime": Datum(_iso(message.expires_on), "string"),
            "NextVisibleTime": Datum(_iso(message.next_visible_on), "string"),
        })
        keeper = VisibilityKeeper(queue, message, self.visibility_timeout_s)
        try:
            invoke_sync(spec, value, trigger="queue", retry=tries - 1, max_retry=self.max_dequeue_count - 1,
                        attributes=lambda: {"messaging.destination.name": queue.queue_name,
                                            "messaging.message.id": message.id})
            ok = True
        except Exception:  # already logged by the invoker; the queue decides on a retry
            ok = False
        finally:
            keeper.stop()
        if self.on_invoked:
            self.on_invoked(spec.name, message.id, ok)
        if ok:
            queue.delete_message(message.id, keeper.pop_receipt, **QUIET)
        elif tries >= self.max_dequeue_count:
            self._to_poison(spec, message, keeper.pop_receipt)
        else:
            queue.update_message(message.id, keeper.pop_receipt, visibility_timeout=self.retry_delay_s, **QUIET)

    def _to_poison(self, spec: FunctionSpec, message: QueueMessage, pop_receipt: str | None) -> None:
        queue, poison = self.queues[spec.name], self.poison[spec.name]
        log.error("Queue %s: message %s failed %d times; moved to %s", queue.queue_name, message.id,
                  message.dequeue_count, poison.queue_name)
        poison.send_message(str(message.content), **QUIET)  # still Base64: the poison queue's trigger decodes it
        queue.delete_message(message.id, pop_receipt, **QUIET)

    # ---- background polling -------------------------------------------------
    def start(self) -> None:
        for spec in self.specs:
            thread = threading.Thread(target=self._poll, args=(spec,), name=f"queue-{spec.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._pool.shutdown(wait=True)

    def _poll(self, spec: FunctionSpec) -> None:
        delay = MIN_POLL_S
        with instrumentation(enabled=False):  # the host's polling is not the app's telemetry
            while not self._stop.is_set():
                try:
                    handled = self.drain_once(spec)
                except AzureError as error:
                    log.warning("Queue %s unreachable (%s); retrying", self.queues[spec.name].queue_name,
                                type(error).__name__)
                    handled = 0
                delay = MIN_POLL_S if handled else min(delay * 2, self.max_polling_interval_s)
                self._stop.wait(0 if handled else delay)
