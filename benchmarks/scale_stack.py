"""A big upload through the whole local stack: peak memory of each process, time of each stage, drop to serving.

Generates bank-like CSVs (``benchmarks.ingest_scale.bank_like_csv``) of 1,054,400 and 5,000,000 rows
(``SCALE_ROWS=...`` to choose the sizes), starts Azurite and the host on free ports with
their own storage and state folders, drops each file as ``cli upload`` does (``datasets/bank/<file>``) and
follows it until a score by the model it trained succeeds. Meanwhile every process of the stack (the host and
its children: the training worker, its fork server, each training run; Azurite) has its resident memory read
from /proc every 0.5 s. Printed per file: the peak RSS of each process, when each upload state and training
step was first seen, the run's own timings and notes, and drop to serving.

Targets on a 2-core machine for 1,054,400 rows: host <= 500 MB, every other process <= 2,000 MB, drop to
serving <= 100 s (``AUTOML_TIME_BUDGET_S`` at its default, 60). Run: ``make bench-scale``.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import requests
from azure.storage.blob import BlobServiceClient

from benchmarks.ingest_scale import bank_like_csv
from devhost.process import HostProcess, start_azurite

SIZES = [int(n) for n in os.environ.get("SCALE_ROWS", "").split(",") if n.strip()] or [1_054_400, 5_000_000]
SAMPLE_EVERY_S = 0.5
TIMEOUT_S = float(os.environ.get("SCALE_TIMEOUT_S", "1800"))
EXAMPLE = {"age": 41, "job": "admin.", "marital": "married", "education": "university.degree", "default": "no",
           "housing": "yes", "loan": "no", "contact": "cellular", "month": "may", "day_of_week": "mon",
           "duration": 300, "campaign": 1, "pdays": 999, "previous": 0, "poutcome": "nonexistent",
           "emp.var.rate": 1.1, "cons.price.idx": 93.994, "cons.conf.idx": -36.4, "euribor3m": 4.857,
           "nr.employed": 5191.0}


def role(process: psutil.Process, host_pid: int, azurite_pid: int | None) -> str:
    """What a process of the stack is, from its command line (a module run with ``-m`` by its name)."""
    if process.pid == host_pid:
        return "host"
    if process.pid == azurite_pid:
        return "azurite"
    try:
        command = process.cmdline()
        parent = process.parent()
        parent_command = " ".join(parent.cmdline()) if parent else ""
    except psutil.Error:
        return "gone"
    joined = " ".join(command)
    if "forkserver" in joined:
        # The fork server's children are the training runs: same command line, the server as parent.
        return "training run" if "forkserver" in parent_command else "training fork server"
    if "shared.local.worker" in joined:
        return "training worker"
    if "-m" in command and command.index("-m") + 1 < len(command):
        return str(command[command.index("-m") + 1])
    if "multiprocessing" in joined:
        return "spawned by " + role(parent, host_pid, azurite_pid) if parent else "spawned"
    return Path(command[0]).name if command else "other"


class PeakSampler:
    """Peak RSS per role over the stack's processes, read every ``SAMPLE_EVERY_S`` seconds."""

    def __init__(self, host_pid: int, azurite_pid: int | None) -> None:
        self.host_pid = host_pid
        self.azurite_pid = azurite_pid
        self.peaks: dict[str, float] = {}
        self.first: dict[str, float] = {}  # each role's RSS when first seen: for the host, before the drop
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _processes(self) -> list[psutil.Process]:
        found = []
        for pid in (self.host_pid, self.azurite_pid):
            if pid is None:
                continue
            try:
                top = psutil.Process(pid)
                found += [top, *top.children(recursive=True)]
            except psutil.Error:
                continue
        return found

    def _run(self) -> None:
        while not self._stop.is_set():
            for process in self._processes():
                try:
                    rss = process.memory_info().rss / 1e6
                except psutil.Error:
                    continue
                name = role(process, self.host_pid, self.azurite_pid)
                self.peaks[name] = max(self.peaks.get(name, 0.0), rss)
                self.first.setdefault(name, rss)
            self._stop.wait(SAMPLE_EVERY_S)


def follow(url: str, headers: dict[str, str], upload_id: str, dropped: float) -> dict[str, Any]:
    """Poll the upload until a score succeeds; when each state and training step was first seen (s from drop)."""
    seen: dict[str, float] = {}
    record: dict[str, Any] = {}
    while time.perf_counter() - dropped < TIMEOUT_S:
        status = requests.get(f"{url}/api/status", headers=headers, params={"limit": "20"}, timeout=30).json()
        record = next((u for u in status["uploads"] if u["upload_id"] == upload_id), {})
        at = round(time.perf_counter() - dropped, 1)
        state = record.get("state")
        if state:
            seen.setdefault(f"upload {state}", at)
        step = ((record.get("run") or {}).get("progress") or {}).get("step")
        if step and state == "training":
            seen.setdefault(f"  training: {step}", at)
        if state in ("rejected", "failed", "not_promoted", "cancelled", "superseded", "duplicate"):
            break
        if state == "promoted":
            response = requests.post(f"{url}/api/score", json={"data": [EXAMPLE]}, headers=headers, timeout=30)
            if response.status_code == 200:
                seen["first score by the new model"] = round(time.perf_counter() - dropped, 1)
                break
        time.sleep(0.5)
    return {"seen": seen, "record": record}


def run_one(rows: int, root: Path) -> None:
    data = root / f"bank_{rows}.csv"
    started = time.perf_counter()
    bank_like_csv(data, rows)
    size = data.stat().st_size
    print(f"\n== {rows:,} rows, {size / 1e6:.0f} MB (generated in {time.perf_counter() - started:.0f} s)")
    emulator = start_azurite(root / f"azurite-{rows}")
    host = HostProcess(root / f"state-{rows}", emulator.connection_string, background=True, scan_interval=0.25,
                       # the upload limit left at its default, as a user's host has it
                       env={"LOCAL_STATE_DIR": str(root / f"localstack-{rows}"), "DEVHOST_LOG_LEVEL": "WARNING",
                            "MAX_UPLOAD_MB": ""})
    azurite_pid = getattr(getattr(emulator, "_process", None), "pid", None)
    try:
        container = BlobServiceClient.from_connection_string(emulator.connection_string) \
            .get_container_client("datasets")
        if not container.exists():
            container.create_container()
        headers = {"x-functions-key": host.function_key}
        with PeakSampler(host.process.pid, azurite_pid) as sampler:
            sending = time.perf_counter()
            with data.open("rb") as handle:  # as ``cli upload`` drops it
                uploaded = container.get_blob_client(f"bank/{data.name}").upload_blob(handle, overwrite=True,
                                                                                       metadata={"target": "y"})
            dropped = time.perf_counter()
            upload_id = f"bank/{data.name}@{str(uploaded['etag']).strip(chr(34))}"
            followed = follow(host.url, headers, upload_id, dropped)
        record = followed["record"]
        run_id = (record.get("run") or {}).get("run_id") or record.get("run_id")
        run = requests.get(f"{host.url}/api/runs/{run_id}", headers=headers, timeout=30).json() if run_id else {}
    finally:
        host.stop()
        emulator.stop()
    print(f"upload to storage: {dropped - sending:.1f} s; outcome: {record.get('state')} "
          f"{record.get('reason') or ''}")
    print("peak RSS (MB), sampled every 0.5 s (and when first seen):")
    for name, peak in sorted(sampler.peaks.items(), key=lambda pair: -pair[1]):
        target = 500 if name == "host" else 2000
        print(f"  {name:<28} {peak:>7,.0f}  (first seen {sampler.first[name]:>5,.0f}; target <= {target:,})"
              f"{'  OVER' if peak > target else ''}")
    print("first seen, s after the drop:")
    for what, at in followed["seen"].items():
        print(f"  {at:>6.1f}  {what}")
    result = run.get("result") or {}
    timings = result.get("timings") or {}
    if timings:
        print("run timings (s, cumulative within training): "
              + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    for note in result.get("notes") or []:
        print(f"  note: {note}")
    if result.get("fit_rows"):
        print(f"  fit rows: {result['fit_rows']}")
    if result.get("best_learner"):
        print(f"  best: {result['best_learner']} {result.get('best_config')}")
    served = followed["seen"].get("first score by the new model")
    print(f"drop to serving: {served if served is not None else 'not served'} s (target <= 100 s at 1,054,400 "
          "rows)")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for rows in SIZES:
            run_one(rows, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
