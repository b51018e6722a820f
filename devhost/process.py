"""Run the local stack from another process (the CLI, tests, benchmarks): Azurite and host processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from devhost import azurite

ROOT = Path(__file__).resolve().parent.parent


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, interval: float = 0.05,
             what: str = "condition") -> Any:
    """Poll until ``condition`` returns something truthy (a hang guard, not a speed check)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(interval)


def start_azurite(location: Path, tries: int = 3) -> azurite.Azurite:
    """Azurite on three free ports. A port free when picked can be taken before Azurite binds it (other stacks
    start beside this one): then it starts again on new ones."""
    for attempt in range(tries):
        emulator = azurite.Azurite(azurite.find_binary(ROOT), location,
                                   (azurite.free_port(), azurite.free_port(), azurite.free_port()))
        try:
            emulator.start()
        except RuntimeError as error:
            if "EADDRINUSE" not in str(error) or attempt == tries - 1:
                raise
            continue
        return emulator
    raise AssertionError("unreachable")


class HostProcess:
    """``python -m devhost`` as a child process (a free port unless given) with its own state folder."""

    def __init__(self, state_dir: Path, storage: str, app: str = "function_app:app",
                 env: dict[str, str] | None = None, background: bool = False, scan_interval: float = 0.1,
                 port: int | None = None, may_exit_early: bool = False) -> None:
        """``may_exit_early``: a host that dies while starting (an armed fault) is returned, not an error."""
        self.state_dir = state_dir
        self.port = port or azurite.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = state_dir / f"host-{self.port}.log"
        args = [sys.executable, "-m", "devhost", "--app", app, "--port", str(self.port),
                "--state-dir", str(state_dir), "--scan-interval", str(scan_interval)]
        if not background:
            args.append("--no-background-triggers")
        self.storage = storage
        self._may_exit_early = may_exit_early
        full_env = {**os.environ, "AzureWebJobsStorage": storage, **(env or {})}
        if "FUNCTIONS_KEY" not in (env or {}):
            full_env.pop("FUNCTIONS_KEY", None)
        state_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(args, cwd=ROOT, env=full_env, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            wait_for(self._ready, timeout=60, what=f"host on port {self.port}")
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"host did not start:\n{self.log_path.read_text()}") from None
        keys = json.loads((state_dir / "keys.json").read_text())
        self.function_key: str = (env or {}).get("FUNCTIONS_KEY") or keys["functionKeys"]["default"]
        self.key_source = "FUNCTIONS_KEY" if (env or {}).get("FUNCTIONS_KEY") else str(state_dir / "keys.json")
        self.master_key: str = keys["masterKey"]
        self.eventgrid_key: str = keys["systemKeys"]["eventgrid_extension"]

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            if self._may_exit_early and (self.state_dir / "keys.json").exists():
                return True
            raise RuntimeError(f"host exited early:\n{self.log_path.read_text()}")
        try:
            requests.get(f"{self.url}/admin/host/status", timeout=0.5)
            return True
        except requests.ConnectionError:
            return False

    def scan(self) -> dict[str, int]:
        """Run one blob scan and drain the trigger queue, synchronously."""
        response = requests.post(f"{self.url}/admin/host/blobs/scan", headers={"x-functions-key": self.master_key},
                                 timeout=120)
        response.raise_for_status()
        result: dict[str, int] = response.json()
        return result

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def processes(matches: Callable[[list[str], int], bool]) -> list[int]:
    """Process ids whose command line (its arguments) and parent id satisfy ``matches`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if matches(command, parent):
            found.append(int(entry.name))
    return found
