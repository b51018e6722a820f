"""``python -m cli status``: each upload's state and the models, from a running host."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cli.host_api import Host, get_json
from cli.output import echo, echo_text
from devhost.process import ROOT


def _describe(upload: dict[str, Any]) -> str:
    state = upload["state"]
    run = upload.get("run") or {}
    if state == "training" and run.get("progress"):
        progress = run["progress"]
        return (f"training ({run.get('state')}: {progress.get('step')}, {progress.get('trials', 0)} trials, "
                f"{progress.get('elapsed_s', 0)}s/{progress.get('budget_s')}s)")
    return f"{state}: {upload['reason']}" if upload.get("reason") else state


def show(host: Host, as_json: bool) -> int:
    status = get_json(host, "/api/status")
    if as_json:
        echo_text(json.dumps(status, indent=2))
        return 0
    echo("Uploads (newest first):")
    for upload in status["uploads"]:
        echo(f"  {upload['created_at'][:19]}  {upload['blob'] or upload['upload_id']:<40} {_describe(upload)}")
        for finding in (upload.get("details") or {}).get("guardrails", []):
            if finding["severity"] != "info":
                echo(f"      {finding['severity'].upper()}: {finding['message']}")
    echo("Models:")
    for model in status["models"]:
        serving = model["production"]["version"] if model["production"] else "none"
        echo(f"  {model['name']}: serving v{serving}")
        for version in model["versions"]:
            value = f"{version['value']:.4f}" if version["value"] is not None else "?"
            echo(f"    v{version['version']}  {version['metric']}={value}  dataset {version['dataset']}  "
                 f"{version['decision']}: {version['reason'] or ''}")
    return 0


def default_url() -> str:
    return os.environ.get("DEVHOST_URL", "http://127.0.0.1:7071")


def default_state() -> Path:
    return Path(os.environ.get("DEVHOST_STATE_DIR", ROOT / ".devhost"))
