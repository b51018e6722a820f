"""The whole local story in one command.

Start the stack, upload a CSV into ``datasets/<model>/``, follow validation and
training, print the leaderboard and the deployment decision, score two rows over
HTTP, and say where to look next.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import requests
from azure.storage.blob import BlobServiceClient

from cli import sample_data
from devhost import azurite
from devhost.process import ROOT, HostProcess
from shared.upload_states import UploadState, is_final

PUBLIC_DATA = ("https://automlsamplenotebookdata.blob.core.windows.net/automl-sample-notebook-data/"
               "bankmarketing_train.csv")
TERMINAL = tuple(str(state) for state in UploadState if is_final(state))


def _say(message: str) -> None:
    print(f"==> {message}", flush=True)


def _dataset(data: Path | None, state: Path) -> Path:
    if data is not None:
        if not data.is_file():
            raise SystemExit(f"DATA={data}: no such CSV file")
        return data
    state.mkdir(parents=True, exist_ok=True)
    target = state / "bankmarketing_train.csv"
    if target.exists():
        return target
    _say(f"No DATA given: downloading the public bankmarketing_train.csv ({PUBLIC_DATA})")
    try:
        response = requests.get(PUBLIC_DATA, timeout=10)
        response.raise_for_status()
        target.write_bytes(response.content)
        return target
    except requests.RequestException as error:
        sample = state / "bank_sample.csv"
        _say(f"Offline ({type(error).__name__}): generating 3,000 rows with the same schema at {sample}")
        sample.write_bytes(sample_data.to_csv(sample_data.rows(3000)))
        return sample


def _storage_connection() -> str:
    """Reuse an Azurite on the usual ports, otherwise let the host start one on free ports."""
    if azurite.port_open("127.0.0.1", azurite.DEFAULT_PORTS[0]):
        return azurite.connection_string("127.0.0.1", *azurite.DEFAULT_PORTS)
    return azurite.connection_string("127.0.0.1", *azurite.pick_ports())


def _upload_state(host: HostProcess, upload_id: str) -> dict[str, Any] | None:
    status = requests.get(f"{host.url}/api/status", headers={"x-functions-key": host.function_key},
                          params={"limit": "50"}, timeout=30).json()
    return next((u for u in status["uploads"] if u["upload_id"] == upload_id), None)


def _follow(host: HostProcess, upload_id: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        upload = _upload_state(host, upload_id)
        if upload:
            progress = (upload.get("run") or {}).get("progress") or {}
            line = f"{upload['state']}"
            if upload["state"] == "training" and progress:
                line += f": {progress.get('step')}"
                if progress.get("budget_s") is not None and progress.get("elapsed_s") is not None:
                    line += (f", {progress.get('trials', 0)} trials, "
                             f"{progress['elapsed_s']}s of {progress['budget_s']}s budget")
                if progress.get("best_learner"):
                    line += (f", best so far {progress['best_learner']} "
                             f"(cv {progress.get('loss', 'loss')} {progress['best_cv_loss']:.4f})")
            if line != last:
                print(f"    {line}", flush=True)
                last = line
            if upload["state"] in TERMINAL:
                return upload
        time.sleep(1)
    raise SystemExit(f"gave up after {timeout_s:.0f}s; see the host log at {host.log_path}")


def _report(host: HostProcess, upload: dict[str, Any]) -> None:
    if upload["state"] in ("rejected", "failed", "duplicate", "superseded"):
        _say(f"Upload {upload['state']}: {upload['reason']}")
        return
    headers = {"x-functions-key": host.function_key}
    details = upload["details"]
    _say(f"Task: {details.get('task')} ({details.get('task_reason')}); primary metric {details.get('metric')}")
    _say("Data guardrails:")
    for finding in upload["details"].get("guardrails", []):
        print(f"    {finding['severity']:<8} {finding['message']}")
    models = requests.get(f"{host.url}/api/models", headers=headers, timeout=30).json()
    decision = upload["details"].get("decision", {})
    artifact = next((m["production"] for m in models["models"] if m["name"] == upload["model_name"]), None)
    run = requests.get(f"{host.url}/api/runs/{upload['run_id']}", headers=headers, timeout=30).json()
    result = run.get("result", {})
    search, rows = result.get("search", {}), result.get("fit_rows", {})
    _say(f"Leaderboard of run {upload['run_id']} ({result.get('task', 'classification')}, {result.get('trials')} "
         f"trials; best cross-validated {search.get('loss', 'log_loss')} per learner):")
    for place, row in enumerate(result.get("leaderboard", []), 1):
        print(f"    {place}. {row['learner']:<12} {row['cv_loss']:.4f}")
    metrics = result.get("validation_metrics", {})
    shown = ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())
    threshold = f"threshold {result['threshold']}, " if result.get("threshold") is not None else ""
    print(f"    on the held-out validation split: {shown} ({threshold}{result.get('model_format')} export)")
    if search.get("stopped_early"):
        print(f"    the search stopped at {search['seconds']:.0f}s of its {search['budget_s']:.0f}s budget: "
              "it had plateaued")
    members = (result.get("ensemble") or {}).get("members") or {}
    if members:
        shares = ", ".join(f"{name} {share:.0%}" for name, share in members.items())
        print(f"    deployed model: a soft vote of {shares}")
    if rows:
        print(f"    judged: fit on {rows['holdout_fit']:,} rows, scored on {rows['validation']:,}; "
              f"deployed: refit on all {rows['final_fit']:,}")
    _say(f"Decision: {upload['state']} (model {decision.get('model')} v{decision.get('version')}): {upload['reason']}")
    if artifact:
        print(f"    serving: {artifact['name']} v{artifact['version']}")
    report = Path(result.get("artifact_dir", "")) / "report.html"
    if report.exists():
        print(f"    report:  {report}   (or GET /api/runs/{upload['run_id']}/report)")


def _serving(host: HostProcess) -> bool:
    models = requests.get(f"{host.url}/api/models", headers={"x-functions-key": host.function_key}, timeout=30)
    return any(m["production"] for m in models.json()["models"])


def first_rows(data: Path, target: str, count: int = 2) -> list[dict[str, object]]:
    """The file's first rows as a client would send them, read as ingest reads the file (its delimiter, decimal
    commas): numbers as numbers, empty cells as null, the target and a row-name column left out."""
    import io
    import json

    import pandas as pd

    from shared.dataset_validation import EXTRA_MISSING, decimal_commas, header_of, sniff_delimiter

    text = data.read_text(encoding="utf-8-sig")
    delimiter = sniff_delimiter(text)
    frame = pd.read_csv(io.StringIO(text), sep=delimiter, nrows=count, skipinitialspace=True,
                        na_values=EXTRA_MISSING)
    frame.columns = header_of(text, delimiter)
    if delimiter == ";":
        decimal_commas(frame)
    rows: list[dict[str, object]] = json.loads(frame.drop(columns=[c for c in (target, "") if c in frame.columns])
                                               .to_json(orient="records"))
    return rows


def _score_two_rows(host: HostProcess, data: Path, model: str, target: str, regression: bool) -> bool:
    body: dict[str, object] = {"data": first_rows(data, target)}
    if not regression:
        body["probabilities"] = True
    response = requests.post(f"{host.url}/api/models/{model}/score", json=body,
                             headers={"x-functions-key": host.function_key}, timeout=30)
    _say(f"POST /api/models/{model}/score with two rows -> {response.status_code}")
    print(f"    {response.text}")
    return response.ok


def run(data: Path | None, model: str, target: str = "y", task: str | None = None) -> int:
    root = ROOT / ".devhost"
    data = _dataset(data, root / "demo")
    port = 7071 if not azurite.port_open("127.0.0.1", 7071) else None
    _say("Starting the local stack (Azurite + development host)")
    # The same state as `make up`, so the model trained here keeps serving there.
    host = HostProcess(root, _storage_connection(), background=True, port=port)
    try:
        # The key goes to a terminal only; redirected output (a log, CI) says where to read it instead.
        keys_file = root / "keys.json"
        tty = sys.stdout.isatty()
        key = host.function_key if tty else "$KEY"
        print(f"    Host: {host.url}   function key: {host.function_key if tty else f'in {keys_file}'}")
        blob_name = f"{model}/{data.name}"
        metadata = {"target": target, **({"task": task} if task else {})}
        _say(f"Uploading {data} to datasets/{blob_name} (metadata {metadata})")
        blobs = BlobServiceClient.from_connection_string(host.storage)
        container = blobs.get_container_client("datasets")
        if not container.exists():
            container.create_container()
        with data.open("rb") as handle:
            uploaded = container.get_blob_client(blob_name).upload_blob(handle, overwrite=True,
                                                                        metadata=metadata)
        upload_id = f"{blob_name}@{str(uploaded['etag']).strip(chr(34))}"
        _say("Following the upload (validation, dataset registration, AutoML, registration, gate, deployment)")
        upload = _follow(host, upload_id, timeout_s=900)
        _report(host, upload)
        regression = (upload.get("details") or {}).get("task") == "regression"
        scored = _score_two_rows(host, data, model, target, regression) if _serving(host) else True
        _say("Where to look next:")
        if not tty:
            read = f"import json; print(json.load(open('{keys_file}'))['functionKeys']['default'])"
            print(f"    KEY=$(python3 -c \"{read}\")")
        print(f"    status:   curl -H \"x-functions-key: {key}\" {host.url}/api/status")
        print(f"    models:   curl -H \"x-functions-key: {key}\" {host.url}/api/models")
        print(f"    CLI:      .venv/bin/python -m cli status --url {host.url}")
        print(f"    MLflow:   .venv/bin/mlflow ui --backend-store-uri sqlite:///{ROOT / '.localstack' / 'mlflow.db'}")
        print("    story:    .venv/bin/python -m cli telemetry events   (then: cli telemetry trace OPERATION)")
        print(f"    page:     \"{host.url}/telemetry?code={key}\"   (while `make up` runs)")
        print(f"    host log: {host.log_path}")
        print("    serve it: make up")
        return 0 if scored and upload["state"] not in ("failed",) else 1
    finally:
        time.sleep(1.5)  # the exporter sends every 0.5 s: let the last steps reach the telemetry store
        host.stop()
        _say("Stack stopped")
