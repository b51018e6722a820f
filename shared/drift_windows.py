"""Drift over every instance of a scaled-out app: each process flushes its windows' counts to the state
container, and one summary per window merges all of them, written once.

Windows are aligned to the clock (``shared.drift.DriftTracker``), so window ``k`` is the same span
``[k * W, (k + 1) * W)`` in every process. At the end of window ``k`` each process writes its counts for it
under ``drift/<model>/v<version>/windows/<k>/<instance>.json``, then merges window ``k - 1``, which every
process flushed one window ago: the summary is created if-none-match, so exactly one process publishes it
(metrics and ``DataDriftDetected``) and removes the counts it merged. A window with fewer rows than the
monitor's minimum waits for the next ones, as it does in one process. The ``/drift`` route merges on read the
same way, so an answer is at most two windows old; counts an instance flushes after its window was merged (a
clock far off, or a process stopped before its flush) are dropped.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from shared import drift
from shared.blob_records import JsonBlobs

PREFIX = "drift"
LOOKBACK_WINDOWS = 12  # how many windows of too little traffic are merged together before the oldest go
KEPT_SUMMARIES = 24  # per model version: the latest is the answer, a few before it are history


def instance_name() -> str:
    """This process, unique across the app's instances (a blob name's part)."""
    host = os.environ.get("WEBSITE_INSTANCE_ID") or socket.gethostname()
    return re.sub(r"[^A-Za-z0-9-]", "-", f"{host}-{os.getpid()}")[:120]


class SharedDriftWindows:
    def __init__(self, records: JsonBlobs, window_s: float, instance: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.records = records
        self.window_s = window_s
        self.instance = instance or instance_name()
        self.clock = clock

    def _folder(self, model: str, version: str) -> str:
        return f"{PREFIX}/{model}/v{version}"

    def window_of(self, moment: str | float) -> int:
        seconds = datetime.fromisoformat(moment).timestamp() if isinstance(moment, str) else moment
        return int(seconds // self.window_s)

    def flush(self, monitor: drift.DriftMonitor) -> None:
        """At a window's end: this process's counts out, then the window before merged (``DriftTracker``'s
        ``close``)."""
        counts = monitor.take(min_rows=1)
        if counts is not None:
            path = f"{self._folder(monitor.model, monitor.version)}/windows/{self.window_of(counts.start):012d}/" \
                   f"{self.instance}.json"
            self.records.update(path, lambda current: (drift.WindowCounts.merge(
                [drift.WindowCounts.from_dict(current), counts]) if current else counts).to_dict())
        self.summarise(monitor)

    def summarise(self, monitor: drift.DriftMonitor) -> dict[str, Any] | None:
        """The latest summary of ``monitor``'s model version across instances, merging first the windows that
        every instance has flushed and no summary holds yet; None before there is one."""
        folder = self._folder(monitor.model, monitor.version)
        through = self.window_of(self.clock()) - 2  # the last window every instance flushed a window ago
        summaries = self.records.names(f"{folder}/summaries/")
        last = int(summaries[-1].rsplit("/", 1)[-1].split(".")[0]) if summaries else -1
        if last < through:
            pending: dict[int, list[str]] = {}
            for name in self.records.names(f"{folder}/windows/"):
                window = int(name.split("/")[-2])
                if window <= last or window < through - LOOKBACK_WINDOWS:
                    self.records.delete(name)  # late, or too old to join a summary
                elif window <= through:
                    pending.setdefault(window, []).append(name)
            if pending:
                self._merge(monitor, folder, through, pending)
                summaries = self.records.names(f"{folder}/summaries/")  # this one's, or a concurrent merge's
                for old in summaries[:-KEPT_SUMMARIES]:
                    self.records.delete(old)
        latest = self.records.get(summaries[-1]) if summaries else None
        return latest[0] if latest else None

    def _merge(self, monitor: drift.DriftMonitor, folder: str, through: int, pending: dict[int, list[str]]
               ) -> None:
        names = [name for window in sorted(pending) for name in pending[window]]
        parts = [found[0] for found in map(self.records.get, names) if found is not None]
        if not parts:
            return
        merged = drift.WindowCounts.merge([drift.WindowCounts.from_dict(p) for p in parts])
        if merged.rows < monitor.min_rows:
            return  # too little traffic yet: these windows wait for the next ones
        summary = monitor.summary_of(merged)
        body = {**asdict(summary), "instances": len({n.rsplit("/", 1)[-1] for n in names}),
                "windows": len(pending)}
        if self.records.create(f"{folder}/summaries/{through:012d}.json", body):
            monitor.last = summary
            drift.publish(monitor, summary)
            for name in names:
                self.records.delete(name)
