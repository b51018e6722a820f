"""Host keys: created once in a git-ignored file, checked in constant time."""

from __future__ import annotations

import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EVENTGRID_SYSTEM_KEY = "eventgrid_extension"
GENERATED = "generated"  # the random function key, set aside while FUNCTIONS_KEY replaces it


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

    ``FUNCTIONS_KEY`` in the environment replaces the default function key, so scripts and CI can fix it in
    advance; the file then holds it too, so that tools in another shell (the CLI) read the key the host accepts.
    """
    if not path.exists():
        _write_private(path, {
            "masterKey": secrets.token_urlsafe(32),
            "functionKeys": {"default": secrets.token_urlsafe(32)},
            "systemKeys": {EVENTGRID_SYSTEM_KEY: secrets.token_urlsafe(32)},
        }, replace=False)
    stored = json.loads(path.read_text())
    keys = stored["functionKeys"]
    fixed = os.environ.get("FUNCTIONS_KEY")
    if fixed and keys.get("default") != fixed:
        keys.setdefault(GENERATED, keys.get("default"))  # kept, so the fixed key ends with the variable
        keys["default"] = fixed
        _write_private(path, stored, replace=True)
    elif not fixed and keys.get(GENERATED):
        keys["default"] = keys.pop(GENERATED)  # the variable is gone: a fixed (often weak) key stops working
        _write_private(path, stored, replace=True)
    return HostKeys(
        master=stored["masterKey"],
        function=stored["functionKeys"]["default"],
        eventgrid=stored["systemKeys"][EVENTGRID_SYSTEM_KEY],
    )


def _write_private(path: Path, stored: dict[str, Any], *, replace: bool) -> None:
    """Write the whole file at once, readable by its owner alone; without ``replace``, a file another host
    created meanwhile wins (both then read the same keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(stored, handle, indent=2)
    if replace:
        os.replace(temporary, path)
        return
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
