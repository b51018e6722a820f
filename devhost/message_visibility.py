"""Keeps a received queue message invisible while its function runs, as the Functions host does."""

from __future__ import annotations

import logging
import threading
from typing import Any

from azure.core.exceptions import AzureError
from azure.storage.queue import QueueClient, QueueMessage

log = logging.getLogger("devhost.queues")
QUIET: dict[str, Any] = {"tracing_options": {"enabled": False}}


class VisibilityKeeper:
    """Keeps a queue message invisible while its function runs, so no other host takes it."""

    def __init__(self, queue: QueueClient, message: QueueMessage, timeout_s: int) -> None:
        self.queue = queue
        self.message = message
        self.pop_receipt: str | None = message.pop_receipt
        self._timeout_s = timeout_s
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(self._timeout_s / 3):
            with self._lock:
                try:
                    updated = self.queue.update_message(self.message, pop_receipt=self.pop_receipt,
                                                        visibility_timeout=self._timeout_s, **QUIET)
                    self.pop_receipt = updated.pop_receipt
                except AzureError as error:
                    log.warning("Could not extend a message's visibility: %s", error)

    def stop(self) -> None:
        self._done.set()
        with self._lock:
            pass
        self._thread.join()
