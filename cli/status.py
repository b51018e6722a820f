"""``python -m cli status``: each upload's state and the models, from a running host."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import requests

from devhost.process import ROOT


def host_key(state_dir: Path) -> str:
    if os.environ.get("FUNCTIONS_KEY"):
        return os.environ["FUNCTIONS_KEY"]
    keys = state_dir / "keys.json"
    if not keys.exists():
        raise SystemExit(f"no function key: set FUNCTIONS_KEY or start the host once (it writes {keys})")
    return str(json.loads(keys.read_text())["functionKeys"]["default"])


def _describe(upload: dict[str, Any]) -> str:
    state = upload["state"]
    run = upload.get("run") or {}
    if state == "training" and run.get("progress"):
        progress = run["progress"]
        return (f"training ({run.get('state')}: {progress.get('step')}, {progress.get('trials', 0)} trials, "
                f"{progress.get('elapsed_s', 0)}s/{progress.get('budget_s')}s)")
    return f"{state}: {upload['reason']}" if upload.get("reason") else state


def show(url: str, key: str, as_json: bool) -> int:
    response = requests.get(f"{url}/api/status", headers={"x-functions-key": key}, timeout=30)
    response.raise_for_status()
    status = response.json()
    if as_json:
        print(json.dumps(status, indent=2))
        return 0
    print("Uploads (newest first):")
    for upload in status["uploads"]:
        print(f"  {upload['created_at'][:19]}  {upload['blob'] or upload['upload_id']:<40} {_describe(upload)}")
        for finding in (upload.get("details") or {}).get("guardrails", []):
            if finding["severity"] != "info":
                print(f"      {finding['severity'].upper()}: {finding['message']}")
    print("Models:")
    for model in status["models"]:
        serving = model["production"]["version"] if model["production"] else "none"
        print(f"  {model['name']}: serving v{serving}")
        for version in model["versions"]:
            value = f"{version['value']:.4f}" if version["value"] is not None else "?"
            print(f"    v{version['version']}  {version['metric']}={value}  dataset {version['dataset']}  "
                  f"{version['decision']}: {version['reason'] or ''}")
    return 0


def default_url() -> str:
    return os.environ.get("DEVHOST_URL", "http://127.0.0.1:7071")


def default_state() -> Path:
    return Path(os.environ.get("DEVHOST_STATE_DIR", ROOT / ".devhost"))
