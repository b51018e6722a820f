"""``python -m cli plan``: what the Azure backend would create for an upload, without touching Azure."""

from __future__ import annotations

import json
from pathlib import Path

from cli.output import echo, echo_text
from shared.backend import plan_azure_upload
from shared.settings import Settings


def run(data: Path, model: str, metadata: list[str], as_json: bool) -> int:
    pairs = dict(item.split("=", 1) for item in metadata)
    plan = plan_azure_upload(data.read_bytes(), f"{model}/{data.name}", pairs, Settings.from_env())
    steps = plan.steps()
    writes = {path: body.decode(errors="replace") for path, body in plan.blobs.items()
              if not path.endswith(".csv")}
    if as_json:
        echo_text(json.dumps({"ingest": plan.ingest.__dict__, "blobs": sorted(plan.blobs), "steps": steps,
                              "promotion": plan.promotion.__dict__ if plan.promotion else None,
                              "later_version": {"steps": plan.beside_steps(), "decision": plan.beside_decision},
                              "drop": {"steps": plan.drop_steps(), "writes": plan.drop_outputs}},
                             indent=1, default=str))
        return 0 if plan.ingest.state == "training" else 1
    echo(f"Upload datasets/{model}/{data.name}: {plan.ingest.state}"
         + (f" ({plan.ingest.reason})" if plan.ingest.reason else ""))
    for path in plan.blobs:
        echo("", f"write {plan.container}/{path}" + (":" if path in writes else ""))
        if path in writes:
            echo_text(writes[path])
    for number, step in enumerate(steps, 1):
        echo("", f"{number}. {step.pop('call')}")
        echo_text(json.dumps(step, indent=1, default=str))
    if plan.promotion:
        echo("", f"then, when AutoML finishes (assuming a best score of 0.91): {plan.promotion.decision} - "
                 f"{plan.promotion.detail.get('reason', '')}")
    drop = plan.drop_steps()
    if drop:
        echo("", f"The same file dropped into scoring-input/{model}/ while this model serves: a batch endpoint job "
                 "of the production version (each wait is a re-enqueued message of the batch-jobs queue):")
        for number, step in enumerate(drop, 1):
            echo("", f"{number}. {step.pop('call')}")
            echo_text(json.dumps(step, indent=1, default=str))
        echo("", "then, once the job completes, the app copies its output to scoring-output/: "
                 + ", ".join(plan.drop_outputs or []))
    beside = plan.beside_steps()
    if beside:
        echo("", "Later, a new version of this data while this model serves (an equally good model): it is "
                 "deployed beside production with no traffic, and both score the same held-out rows:")
        for number, step in enumerate(beside, 1):
            call = step.pop("call")
            rows = step.get("request", {}).get("input_data", {}).get("data")
            echo("", f"{number}. {call}" + (f" ({step.get('deployment_name')}, {len(rows)} rows)" if rows else ""))
        decision = plan.beside_decision or {}
        echo("", f"then: {decision.get('decision')} - {decision.get('reason', '')}")
    return 0 if plan.ingest.state == "training" else 1
