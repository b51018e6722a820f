"""Host keys: created once in a git-ignored file, checked in constant time."""

from __future__ import annotations

import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

EVENTGRID_SYSTEM_KEY = "eventgrid_extension"


@dataclass(frozen=True)
class HostKeys:
    master: str
    function: str
    eventgrid: str

    def allows_function(self, presented: str | None) -> bool:
        return presented is not None and (_same(presented, self.function) or _same(presented, self.master))

    def allows_admin(self, presented: str | None) -> bool:
        return presented is not None and _same(presented, self.master)

    def allows_eventgrid(self, presented: str | None) -> bool:
        return presented is not None and (_same(presented, self.eventgrid) or _same(presented, self.master))


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def load_or_create(path: Path) -> HostKeys:
    """Read the keys file, creating it (mode 0600) on first start.

    ``FUNCTIONS_KEY`` in the environment replaces the default function key, so
    scripts and CI can fix it in advance.
    """
    if path.exists():
        stored = json.loads(path.read_text())
    else:
        stored = {
            "masterKey": secrets.token_urlsafe(32),
            "functionKeys": {"default": secrets.token_urlsafe(32)},
            "systemKeys": {EVENTGRID_SYSTEM_KEY: secrets.token_urlsafe(32)},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(stored, handle, indent=2)
    function_key = os.environ.get("FUNCTIONS_KEY") or stored["functionKeys"]["default"]
    return HostKeys(
        master=stored["masterKey"],
        function=function_key,
        eventgrid=stored["systemKeys"][EVENTGRID_SYSTEM_KEY],
    )
