"""``python -m cli run``: start the published pipeline over REST and follow it with a progress bar."""

from __future__ import annotations

import sys
import time
from typing import Any

import requests

FINISHED = ("completed", "failed", "superseded", "cancelled")


def start(url: str, key: str, pipeline: str, body: dict[str, Any]) -> str:
    response = requests.post(f"{url}/api/pipelines/{pipeline}/runs", json=body,
                             headers={"x-functions-key": key}, timeout=30)
    if response.status_code != 202:
        raise SystemExit(f"{response.status_code}: {response.text}")
    run_id: str = response.json()["Id"]
    print(f"Started run {run_id} of pipeline {pipeline}")
    return run_id


def _bar(progress: dict[str, Any], width: int = 30) -> str:
    budget = float(progress.get("budget_s") or 1)
    elapsed = float(progress.get("elapsed_s") or 0)
    filled = min(width, int(width * elapsed / budget))
    best = ""
    if progress.get("best_learner"):
        best = f"  best {progress['best_learner']} {progress.get('loss', 'loss')} {progress['best_cv_loss']:.4f}"
    return (f"[{'#' * filled}{'.' * (width - filled)}] {elapsed:5.1f}/{budget:.0f}s  "
            f"{progress.get('step', '?'):<9} trials {progress.get('trials', 0):>4}{best}")


def follow(url: str, key: str, run_id: str, poll_s: float = 1.0) -> int:
    """Redraw one progress line until the run ends, then wait for its deployment decision."""
    headers = {"x-functions-key": key}
    run: dict[str, Any] = {}
    while True:
        run = requests.get(f"{url}/api/runs/{run_id}", headers=headers, timeout=30).json()
        if run["state"] == "queued":
            sys.stdout.write(f"\rqueued ({run['progress'].get('step', 'queued')})".ljust(100))
        else:
            sys.stdout.write("\r" + _bar(run["progress"]).ljust(100))
        sys.stdout.flush()
        if run["state"] in FINISHED and (run["state"] != "completed" or run.get("decision")):
            break
        time.sleep(poll_s)
    print()
    if run["state"] != "completed":
        print(f"Run {run['state']}: {run.get('error') or ''}")
        return 1
    result, decision = run["result"], run["decision"] or {}
    metric = result["primary_metric"]
    print(f"Best: {result['best_learner']} after {result['trials']} trials; {metric['name']} "
          f"{metric['value']:.4f} on the validation split ({result['model_format']} export)")
    print(f"Registered {decision.get('model')} v{decision.get('version')}: {decision.get('decision')} "
          f"({decision.get('reason')})")
    return 0
