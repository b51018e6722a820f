"""The whole local story in one command.

Start the stack, upload a CSV into ``datasets/<model>/``, follow validation and
training, print the leaderboard and the deployment decision, score two rows over
HTTP, and say where to look next.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import requests

from cli import sample_data, uploads
from cli.output import echo, fail
from cli.uploads import say
from devhost import azurite
from devhost.process import ROOT, HostProcess

PUBLIC_DATA = ("https://automlsamplenotebookdata.blob.core.windows.net/automl-sample-notebook-data/"
               "bankmarketing_train.csv")


def _dataset(data: Path | None, state: Path) -> Path:
    if data is not None:
        if not data.is_file():
            fail(f"DATA={data}: no such CSV file")
        return data
    state.mkdir(parents=True, exist_ok=True)
    target = state / "bankmarketing_train.csv"
    if target.exists():
        return target
    say(f"No DATA given: downloading the public bankmarketing_train.csv ({PUBLIC_DATA})")
    try:
        response = requests.get(PUBLIC_DATA, timeout=10)
        response.raise_for_status()
        target.write_bytes(response.content)
        return target
    except requests.RequestException as error:
        sample = state / "bank_sample.csv"
        say(f"Offline ({type(error).__name__}): generating 3,000 rows with the same schema at {sample}")
        sample.write_bytes(sample_data.to_csv(sample_data.rows(3000)))
        return sample


def _storage_connection() -> str:
    """Reuse an Azurite on the usual ports, otherwise let the host start one on free ports."""
    if azurite.port_open("127.0.0.1", azurite.DEFAULT_PORTS[0]):
        return azurite.connection_string("127.0.0.1", *azurite.DEFAULT_PORTS)
    return azurite.connection_string("127.0.0.1", *azurite.pick_ports())


def run(data: Path | None, model: str, target: str = "y", task: str | None = None,
        forecast: dict[str, str] | None = None) -> int:
    root = ROOT / ".devhost"
    data = _dataset(data, root / "demo")
    port = 7071 if not azurite.port_open("127.0.0.1", 7071) else None
    say("Starting the local stack (Azurite + development host)")
    # The same state as `make up`, so the model trained here keeps serving there.
    host = HostProcess(root, _storage_connection(), background=True, port=port)
    try:
        # The key goes to a terminal only; redirected output (a log, CI) says where to read it instead.
        keys_file = root / "keys.json"
        tty = sys.stdout.isatty()
        key = host.function_key if tty else "$KEY"
        echo(f"    Host: {host.url}   function key: {host.function_key if tty else f'in {keys_file}'}")
        metadata = {"target": target, **({"task": task} if task else {}), **(forecast or {})}
        say(f"Uploading {data} to datasets/{model}/{data.name} (metadata {metadata})")
        upload_id = uploads.drop(host.storage, data, model, metadata)
        say("Following the upload (validation, dataset registration, AutoML, registration, gate, deployment)")
        upload = uploads.follow(host, upload_id, timeout_s=900)
        uploads.report(host, upload)
        scored = uploads.try_the_model(host, upload, data, model, target) if uploads.serving(host) else True
        say("Where to look next:")
        if not tty:
            read = f"import json; print(json.load(open('{keys_file}'))['functionKeys']['default'])"
            echo(f"    KEY=$(python3 -c \"{read}\")")
        echo(f"    status:   curl -H \"x-functions-key: {key}\" {host.url}/api/status")
        echo(f"    models:   curl -H \"x-functions-key: {key}\" {host.url}/api/models")
        echo(f"    CLI:      .venv/bin/python -m cli status --url {host.url}")
        echo(f"    MLflow:   .venv/bin/mlflow ui --backend-store-uri sqlite:///{ROOT / '.localstack' / 'mlflow.db'}")
        echo("    story:    .venv/bin/python -m cli telemetry events   (then: cli telemetry trace OPERATION)")
        echo(f"    page:     \"{host.url}/telemetry?code={key}\"   (while `make up` runs)")
        echo(f"    host log: {host.log_path}")
        echo("    serve it: make up")
        return 0 if scored and upload["state"] not in ("failed",) else 1
    finally:
        time.sleep(1.5)  # the exporter sends every 0.5 s: let the last steps reach the telemetry store
        host.stop()
        say("Stack stopped")
