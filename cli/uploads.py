"""Uploads to the local stack, followed to their outcome: what ``cli demo`` and ``cli upload`` share."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from azure.storage.blob import BlobServiceClient

from cli import runs
from cli.host_api import Host, call, get_json
from cli.output import echo, fail
from shared.settings import get_settings
from shared.upload_states import UploadState, is_final

TERMINAL = tuple(str(state) for state in UploadState if is_final(state))


SHOWN_PLACES = 10  # of the leaderboard, in the terminal


def say(message: str) -> None:
    echo(f"==> {message}")


def ascii_safe(column: str) -> str:
    """A column name as blob metadata carries it: percent-encoded UTF-8 when it is not plain ASCII (or holds
    '%' or ','), as ingest reads it back."""
    return quote(column, safe=" !#$&'()*+-./:;<=>?@[]^_`{|}~") if not column.isascii() or "%" in column \
        or "," in column else column


def drop(storage: str, data: Path, model: str, metadata: dict[str, str]) -> str:
    """Put ``data`` at ``datasets/{model}/{file name}`` with ``metadata``; the upload's id (blob name and ETag)."""
    blob_name = f"{model}/{data.name}"
    container = BlobServiceClient.from_connection_string(storage).get_container_client("datasets")
    if not container.exists():
        container.create_container()
    with data.open("rb") as handle:
        uploaded = container.get_blob_client(blob_name).upload_blob(handle, overwrite=True, metadata=metadata)
    return f"{blob_name}@{str(uploaded['etag']).strip(chr(34))}"


def upload_state(host: Host, upload_id: str) -> dict[str, Any] | None:
    status = get_json(host, "/api/status", limit="100")
    return next((u for u in status["uploads"] if u["upload_id"] == upload_id), None)


def follow(host: Host, upload_id: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        upload = upload_state(host, upload_id)
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
                echo(f"    {line}")
                last = line
            if upload["state"] in TERMINAL:
                return upload
        time.sleep(1)
    fail(f"gave up after {timeout_s:.0f}s; `python -m cli status` shows where it stands")


def report(host: Host, upload: dict[str, Any]) -> None:
    if upload["state"] in ("rejected", "failed", "duplicate", "superseded"):
        say(f"Upload {upload['state']}: {upload['reason']}")
        return
    details = upload["details"]
    say(f"Task: {details.get('task')} ({details.get('task_reason')}); primary metric {details.get('metric')}")
    say("Data guardrails:")
    for finding in upload["details"].get("guardrails", []):
        echo(f"    {finding['severity']:<8} {finding['message']}")
    models = get_json(host, "/api/models")
    decision = upload["details"].get("decision", {})
    artifact = next((m["production"] for m in models["models"] if m["name"] == upload["model_name"]), None)
    run = get_json(host, f"/api/runs/{upload['run_id']}")
    result = run.get("result", {})
    search, rows = result.get("search", {}), result.get("fit_rows", {})
    say(f"Leaderboard of run {upload['run_id']} ({result.get('task', 'classification')}, {result.get('trials')} "
         f"trials; best cross-validated {search.get('loss', 'log_loss')} per learner):")
    board = result.get("leaderboard", [])
    width = max((len(row["learner"]) for row in board[:SHOWN_PLACES]), default=0)
    for place, row in enumerate(board[:SHOWN_PLACES], 1):
        echo(f"    {place:>2}. {row['learner']:<{width}}  {row['cv_loss']:.4f}")
    if len(board) > SHOWN_PLACES:
        echo(f"    ... and {len(board) - SHOWN_PLACES} more (GET /api/runs/{upload['run_id']})")
    metrics = result.get("validation_metrics", {})
    shown = ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())
    threshold = f"threshold {result['threshold']}, " if result.get("threshold") is not None else ""
    kept = {"onnx": "exported to ONNX", "native": "kept as a scikit-learn pipeline",
            "forecaster": "kept as a forecaster"}.get(str(result.get("model_format")), str(result.get("model_format")))
    echo(f"    on the held-out validation split: {shown} ({threshold}{kept})")
    if search.get("stopped_early"):
        echo(f"    the search stopped at {search['seconds']:.0f}s of its {search['budget_s']:.0f}s budget: "
              "it had plateaued")
    members = (result.get("ensemble") or {}).get("members") or {}
    if members:
        shares = ", ".join(f"{name} {share:.0%}" for name, share in members.items())
        echo(f"    deployed model: a soft vote of {shares}")
    if rows:
        deployed = f"refit on all {rows['final_fit']:,}"
        if rows.get("sampled_from"):
            echo(f"    searched on a sample of {rows['holdout_fit'] + rows['validation']:,} of "
                 f"{rows['sampled_from']:,} rows")
            if rows["final_fit"] < rows["sampled_from"]:
                deployed = "the judged fit itself (a refit on every row did not fit the budget or memory)"
        echo(f"    judged: fit on {rows['holdout_fit']:,} rows, scored on {rows['validation']:,}; deployed: {deployed}")
    say(f"Decision: {upload['state']} (model {decision.get('model')} v{decision.get('version')}): {upload['reason']}")
    if artifact:
        echo(f"    serving: {artifact['name']} v{artifact['version']}")
    # The API shows the run's folder relative to the state folder, which this command shares with the host.
    report = get_settings().state_dir / result.get("artifact_dir", "-") / "report.html"
    if report.exists():
        echo(f"    report:  {report}   (or GET /api/runs/{upload['run_id']}/report)")


def serving(host: Host) -> bool:
    return any(m["production"] for m in get_json(host, "/api/models")["models"])


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


def score_first_rows(host: Host, data: Path, model: str, target: str, regression: bool) -> bool:
    body: dict[str, object] = {"data": first_rows(data, target)}
    if not regression:
        body["probabilities"] = True
    # Any answer a client could get is shown (a refusal, nothing serving yet, too many rows); the hints follow.
    response = call(host, "POST", f"/api/models/{model}/score", expect=(200, 400, 404, 413, 503), json=body)
    say(f"POST /api/models/{model}/score with two rows -> {response.status_code}")
    echo(f"    {response.text}")
    return response.ok


def forecast_next(host: Host, model: str, settings: dict[str, Any]) -> bool:
    """Forecast the horizon after the first series' history: the times from the model's own example row (its
    first future period) stepped by the data's frequency, the known features held at their last values."""
    import pandas as pd

    document = get_json(host, "/api/swagger.json")
    body = document["paths"][f"/models/{model}/score"]["post"]["requestBody"]["content"]["application/json"]
    first = dict(body["example"]["data"][0])
    time_column, horizon = settings["time_column"], int(settings["horizon"])
    step = {"hourly": pd.DateOffset(hours=1), "daily": pd.DateOffset(days=1), "weekly": pd.DateOffset(weeks=1),
            "monthly": pd.DateOffset(months=1), "quarterly": pd.DateOffset(months=3),
            "yearly": pd.DateOffset(years=1)}[settings["frequency"]]
    start = pd.Timestamp(first[time_column])
    month_ends = settings.get("anchor") == "end"
    times = [start + step * i for i in range(horizon)]
    if month_ends:  # months of different lengths: each on its own last day
        times = [t + pd.offsets.MonthEnd(0) for t in times]
    rows = [{**first, time_column: t.isoformat() if t != t.normalize() else t.date().isoformat()} for t in times]
    response = call(host, "POST", f"/api/models/{model}/score", expect=(200, 400, 404, 503), json={"data": rows})
    say(f"POST /api/models/{model}/score with the next {horizon} period(s) -> {response.status_code}")
    if response.ok:
        for row, value in zip(rows, response.json()["result"], strict=True):
            echo(f"    {row[time_column]}  {value}")
    else:
        echo(f"    {response.text}")
    return response.ok


def try_the_model(host: Host, upload: dict[str, Any], data: Path, model: str, target: str) -> bool:
    """Ask the model serving ``model`` what a client would: the file's first rows, or a forecaster its horizon."""
    details = upload.get("details") or {}
    if details.get("time_series"):
        return forecast_next(host, model, details["time_series"])
    return score_first_rows(host, data, model, target, details.get("task") == "regression")


def local_storage(state_dir: Path) -> str:
    """The storage the running stack reads: ``AzureWebJobsStorage`` (the environment, then local.settings.json),
    else the emulator the host started (its ``storage.json``), else Azurite on its usual ports."""
    from devhost import azurite
    from devhost.config import load_local_settings
    from devhost.host import STORAGE_FILE, STORAGE_SETTING
    from devhost.process import ROOT

    load_local_settings(ROOT / "local.settings.json")
    candidates = [os.environ.get(STORAGE_SETTING, "")]
    recorded = state_dir / STORAGE_FILE
    if recorded.exists():
        candidates.append(str(json.loads(recorded.read_text())["connection"]))
    candidates.append(azurite.expand("UseDevelopmentStorage=true"))
    for connection in filter(None, candidates):
        endpoint = azurite.blob_endpoint(connection)
        if endpoint is None or azurite.port_open(*endpoint):  # an account in Azure has no local port to check
            return connection
    fail("no storage answers: start the stack first (`make up`), or set AzureWebJobsStorage")


def run(data: Path, model: str, metadata: dict[str, str], host: Host, storage: str, wait: bool) -> int:
    """``cli upload``: drop ``data`` for ``model``, then follow it to its outcome and report it as the demo does.
    Exit status 1 when the upload is rejected or fails."""
    if not data.is_file():
        fail(f"{data}: no such CSV file")
    if wait:  # a key the host refuses would leave behind an upload this command cannot follow: ask first
        get_json(host, "/api/status", limit="1")
    say(f"Uploading {data} to datasets/{model}/{data.name} (metadata {metadata})")
    upload_id = drop(storage, data, model, metadata)
    echo(f"    upload id: {upload_id}")
    if not wait:
        return 0
    say("Following the upload (validation, dataset registration, AutoML, registration, gate, deployment)")
    outcome = follow(host, upload_id, timeout_s=3600)
    original = (outcome.get("details") or {}).get("duplicate_of") if outcome["state"] == "duplicate" else None
    if original:  # nothing new to train: what the user waits for is the run that trains this data
        say(f"Upload duplicate: {outcome['reason']}")
        if original.get("upload_id") and upload_state(host, original["upload_id"]) is not None:
            say(f"Following the upload that trains it: {original['upload_id']} (run {original['run_id']})")
            outcome = follow(host, original["upload_id"], timeout_s=3600)
        else:  # a run started over REST, or an upload older than the status shows
            say(f"Following the run that trains it: {original['run_id']}")
            return runs.follow(host, original["run_id"])
    report(host, outcome)
    if outcome["state"] == "promoted" and (outcome.get("details") or {}).get("time_series"):
        forecast_next(host, model, outcome["details"]["time_series"])  # what the new forecaster says next
    return 1 if outcome["state"] in ("rejected", "failed") else 0
