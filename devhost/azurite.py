"""Start Azurite from the project's node_modules when no storage is reachable."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

log = logging.getLogger("devhost.azurite")

# The emulator's fixed, publicly documented development account (not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEFAULT_PORTS = (10000, 10001, 10002)


def connection_string(host: str, blob_port: int, queue_port: int, table_port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint=http://{host}:{blob_port}/{DEV_ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue_port}/{DEV_ACCOUNT};"
        f"TableEndpoint=http://{host}:{table_port}/{DEV_ACCOUNT};"
    )


def expand(conn: str) -> str:
    """Turn the ``UseDevelopmentStorage=true`` shorthand into a full connection string."""
    if conn.strip().rstrip(";").lower() == "usedevelopmentstorage=true":
        return connection_string("127.0.0.1", *DEFAULT_PORTS)
    return conn


def blob_endpoint(conn: str) -> tuple[str, int] | None:
    parts = dict(p.split("=", 1) for p in expand(conn).split(";") if "=" in p)
    endpoint = parts.get("BlobEndpoint")
    if endpoint:
        url = urlparse(endpoint)
        return url.hostname or "127.0.0.1", url.port or (443 if url.scheme == "https" else 80)
    return None


def emulator_ports(conn: str) -> tuple[int, int, int] | None:
    """The blob/queue/table ports of a loopback emulator connection string, else None."""
    parts = dict(p.split("=", 1) for p in expand(conn).split(";") if "=" in p)
    if parts.get("AccountName") != DEV_ACCOUNT:
        return None
    ports = []
    for key in ("BlobEndpoint", "QueueEndpoint", "TableEndpoint"):
        url = urlparse(parts.get(key, ""))
        if url.hostname not in ("127.0.0.1", "localhost") or url.port is None:
            return None
        ports.append(url.port)
    return ports[0], ports[1], ports[2]


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(project_root: Path) -> Path:
    local = project_root / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return local
    found = shutil.which("azurite")
    if found:
        return Path(found)
    raise FileNotFoundError("Azurite is not installed: run `npm ci` in the project folder (make does it for you)")


class Azurite:
    """An Azurite child process with its data in ``location``."""

    def __init__(self, binary: Path, location: Path, ports: tuple[int, int, int]) -> None:
        self.binary = binary
        self.location = location
        self.ports = ports
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        return connection_string("127.0.0.1", *self.ports)

    def start(self, timeout: float = 30.0) -> None:
        self.location.mkdir(parents=True, exist_ok=True)
        blob, queue, table = self.ports
        command = [
            str(self.binary), "--silent", "--disableTelemetry", "--skipApiVersionCheck",
            "--location", str(self.location),
            "--blobHost", "127.0.0.1", "--blobPort", str(blob),
            "--queueHost", "127.0.0.1", "--queuePort", str(queue),
            "--tableHost", "127.0.0.1", "--tablePort", str(table),
        ]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while not all(port_open("127.0.0.1", p) for p in self.ports):
            if self._process.poll() is not None:
                error = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"Azurite exited at start: {error.strip()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("Azurite did not open its ports in time")
            time.sleep(0.05)
        log.info("Azurite started (blob %s, queue %s, table %s, data in %s)", blob, queue, table, self.location)

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        log.info("Azurite stopped")


def pick_ports() -> tuple[int, int, int]:
    """Azurite's usual ports when free, otherwise free ones."""
    if not any(port_open("127.0.0.1", p) for p in DEFAULT_PORTS):
        return DEFAULT_PORTS
    return free_port(), free_port(), free_port()
