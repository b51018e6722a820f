"""A local stack that can be killed and restarted on the same port and storage, as a machine crash would."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import requests
from azure.storage.blob import BlobServiceClient

from devhost import azurite
from devhost.process import HostProcess, processes, start_azurite, wait_for
from shared.run_events import APP_TAG, APP_TAG_KEY
from tests.integration.ml_stack import Stack


def processes_of(state_dir: Path) -> list[int]:
    """Training workers (and their children) serving ``state_dir``."""
    def serving(command: list[str], _: int) -> bool:
        line = " ".join(command)
        return "shared.local.worker" in line and str(state_dir) in line

    return processes(serving)


def kill_workers(state_dir: Path) -> int:
    pids = processes_of(state_dir)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)  # the worker leads its session: its children go too
    return len(pids)


class Node:
    def __init__(self, root: Path, **env: str) -> None:
        self.root = root
        self.localstack = root / "localstack"
        self.emulator = start_azurite(root / "azurite")
        self.port = azurite.free_port()
        self.env = {"LOCAL_STATE_DIR": str(self.localstack), "AUTOML_TIME_BUDGET_S": "3",
                    "TRAINING_WORKER_IDLE_S": "30", "TELEMETRY_ENABLED": "false",
                    # A killed host's queue message comes back this soon (the Functions host: minutes).
                    "DEVHOST_QUEUE_VISIBILITY_S": "2", **env}
        self.blobs = BlobServiceClient.from_connection_string(self.emulator.connection_string)
        self.container = self.blobs.get_container_client("datasets")
        if not self.container.exists():
            self.container.create_container()
        self.host: HostProcess | None = None

    def start(self, faults: str = "", **env: str) -> Stack:
        extra = {"FAULTS": faults} if faults else {}
        self.host = HostProcess(self.root / "state", self.emulator.connection_string, background=True,
                                env={**self.env, **env, **extra}, port=self.port, may_exit_early=bool(faults))
        return Stack(self.host, self.container)

    def wait_crashed(self, timeout: float = 180) -> None:
        host = self.host
        assert host is not None
        wait_for(lambda: host.process.poll() is not None, timeout=timeout, what="the injected crash")
        assert host.process.returncode == -signal.SIGKILL, host.log_text()[-2000:]
        assert "Fault injected" in host.log_text()

    def kill(self) -> None:
        if self.host is not None:
            self.host.stop(signal.SIGKILL)

    def close(self) -> None:
        if self.host is not None:
            self.host.stop()
        kill_workers(self.localstack)
        self.emulator.stop()


def runs_of(stack: Stack, upload_id: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = stack.get("runs", model=upload_id.split("/")[0])["runs"]
    return [r for r in runs if r.get("upload_id") == upload_id]


def clone_run(node: Node, run_id: str, **changes: Any) -> str:
    """A copy of a finished run under a new id (as if another run had produced it); returns the new id."""
    db = sqlite3.connect(node.localstack / "state.db", isolation_level=None)
    db.row_factory = sqlite3.Row
    row = dict(db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone())
    new_id = f"run_{uuid.uuid4().hex[:16]}"
    row.update(run_id=new_id, seq=row["seq"] + 1, upload_id=None, idempotency_key=None, event_pending=0, **changes)
    columns, marks = ",".join(row), ",".join("?" * len(row))  # column names come from the table itself
    db.execute(f"INSERT INTO runs ({columns}) VALUES ({marks})", tuple(row.values()))  # noqa: S608
    db.close()
    return new_id


def deliver_run_completed(stack: Stack, run_id: str) -> int:
    """Post RunCompleted for ``run_id`` to the promote function, as Event Grid would; returns the status."""
    event = {"id": f"completed-{run_id}", "eventType": "Microsoft.MachineLearningServices.RunCompleted",
             "subject": f"experiments/x/runs/{run_id}", "eventTime": "2026-01-01T00:00:00Z",
             "dataVersion": "2", "topic": "/local",
             "data": {"runId": run_id, "runType": None, "runTags": {APP_TAG_KEY: APP_TAG}}}
    response = requests.post(f"{stack.host.url}/runtime/webhooks/eventgrid",
                             params={"functionName": "promote", "code": stack.host.eventgrid_key},
                             data=json.dumps([event]), headers={"aeg-event-type": "Notification"}, timeout=60)
    return response.status_code
