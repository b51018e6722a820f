"""A local stack that can be killed and restarted on the same port and storage, as a machine crash would."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient

from devhost import azurite
from devhost.process import HostProcess, start_azurite, wait_for
from tests.integration.ml_stack import Stack


def processes_of(state_dir: Path) -> list[int]:
    """Training workers (and their children) serving ``state_dir``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "shared.local.worker" in command and str(state_dir) in command:
            found.append(int(entry.name))
    return found


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
                    "TRAINING_WORKER_IDLE_S": "30", "TELEMETRY_ENABLED": "false", **env}
        self.blobs = BlobServiceClient.from_connection_string(self.emulator.connection_string)
        self.container = self.blobs.get_container_client("datasets")
        if not self.container.exists():
            self.container.create_container()
        self.host: HostProcess | None = None

    def start(self, faults: str = "", **env: str) -> Stack:
        extra = {"FAULTS": faults} if faults else {}
        self.host = HostProcess(self.root / "state", self.emulator.connection_string, background=True,
                                env={**self.env, **env, **extra}, port=self.port)
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
