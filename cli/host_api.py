"""The CLI's calls to a running host: an answer it cannot use ends the command with one line and exit status 1."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import requests

from cli.output import fail

KEY_SETTING = "FUNCTIONS_KEY"
TIMEOUT_S = 30


class Host(Protocol):
    """A running development host: where it answers, its function key and where that key was read."""

    @property
    def url(self) -> str: ...

    @property
    def function_key(self) -> str: ...

    @property
    def key_source(self) -> str: ...


@dataclass(frozen=True)
class RunningHost:
    url: str
    function_key: str
    key_source: str  # --key, FUNCTIONS_KEY or the keys file's path: said when the host refuses the key


def host_key(given: str | None, state_dir: Path) -> tuple[str, str]:
    """The function key and where it comes from: --key, else FUNCTIONS_KEY, else the keys file the host writes."""
    if given:
        return given, "--key"
    if os.environ.get(KEY_SETTING):
        return os.environ[KEY_SETTING], KEY_SETTING
    keys = state_dir / "keys.json"
    if not keys.exists():
        fail(f"no function key: pass --key, set {KEY_SETTING} or start the host once (it writes {keys})")
    try:
        return str(json.loads(keys.read_text())["functionKeys"]["default"]), str(keys)
    except (OSError, ValueError, KeyError, TypeError) as error:
        fail(f"cannot read the function key from {keys} ({type(error).__name__}): pass --key or set {KEY_SETTING}")


def shown(url: str) -> str:
    """``url`` without what may hold a secret: credentials and the query (where a ``code`` key would be)."""
    parts = urlsplit(url)
    where = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, where, parts.path, "", ""))


def call(host: Host, method: str, path: str, *, expect: tuple[int, ...] = (200,), **kwargs: Any) -> requests.Response:
    """``method`` on ``path`` (``/api/...``) with the function key; any other answer than ``expect`` fails."""
    url = f"{host.url}{path}"
    where = f"{method} {shown(url)}"
    try:
        response = requests.request(method, url, headers={"x-functions-key": host.function_key},
                                    timeout=TIMEOUT_S, **kwargs)
    except requests.ConnectionError:
        fail(f"{where}: the host does not answer (is it running? `make up`, or pass --url)")
    except requests.RequestException as error:
        fail(f"{where}: {type(error).__name__}")
    if response.status_code in expect:
        return response
    said = f"{where} -> {response.status_code} {response.reason}"
    if response.status_code in (401, 403):
        fail(f"{said}: the host refused the function key from {host.key_source}")
    fail(f"{said}{_why(response)}")


def get_json(host: Host, path: str, **params: str) -> Any:
    response = call(host, "GET", path, params=params or None)
    try:
        return response.json()
    except ValueError:
        fail(f"GET {shown(response.url)} -> {response.status_code}, but not JSON")


def _why(response: requests.Response) -> str:
    """The host's own words about an error, when it gave some (and each field it named)."""
    try:
        body = response.json()
        error, details = body.get("error"), body.get("details") or []
        fields = "".join(f"; {d.get('field')}: {d.get('error')}" for d in details if isinstance(d, dict))
    except (ValueError, AttributeError):
        return ""
    return f": {error}{fields}"[:500] if error else ""
