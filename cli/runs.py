"""``python -m cli run``: start the published pipeline over REST and follow it with a progress bar."""

from __future__ import annotations

import time
from typing import Any

from cli.host_api import Host, call, get_json
from cli.output import echo, redraw

FINISHED = ("completed", "failed", "superseded", "cancelled")


def start(host: Host, pipeline: str, body: dict[str, Any]) -> str:
    response = call(host, "POST", f"/api/pipelines/{pipeline}/runs", expect=(202,), json=body)
    run_id: str = response.json()["Id"]
    echo(f"Started run {run_id} of pipeline {pipeline}")
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


def follow(host: Host, run_id: str, poll_s: float = 1.0) -> int:
    """Redraw one progress line until the run ends, then wait for its deployment decision."""
    run: dict[str, Any] = {}
    while True:
        run = get_json(host, f"/api/runs/{run_id}")
        if run["state"] == "queued":
            redraw(f"queued ({run['progress'].get('step', 'queued')})")
        else:
            redraw(_bar(run["progress"]))
        if run["state"] in FINISHED and (run["state"] != "completed" or run.get("decision")):
            break
        time.sleep(poll_s)
    echo("")
    if run["state"] != "completed":
        echo(f"Run {run['state']}: {run.get('error') or ''}")
        return 1
    result, decision = run["result"], run["decision"] or {}
    metric = result["primary_metric"]
    echo(f"Best: {result['best_learner']} after {result['trials']} trials; {metric['name']} "
         f"{metric['value']:.4f} on the validation split ({result['model_format']} export)")
    echo(f"Registered {decision.get('model')} v{decision.get('version')}: {decision.get('decision')} "
         f"({decision.get('reason')})")
    return 0
