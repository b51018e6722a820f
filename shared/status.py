"""What the status API and the CLI show: uploads with their state, runs, models and what serves."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from shared import batch_flow
from shared.ports import Backend
from shared.settings import get_settings

DEFAULT_LIMIT = 20  # uploads listed by /status
MAX_LIMIT = 1000  # at most: each is a record read


def overview(backend: Backend, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    uploads = backend.uploads.list(limit)
    runs = {r.run_id: r for r in backend.pipeline.list_runs(limit=limit * 2)}
    for upload in uploads:
        run = runs.get(upload.get("run_id") or "")
        if run is not None:
            upload["run"] = {"state": run.state, "progress": run.progress, "error": run.error,
                             "primary_metric": run.result.get("primary_metric")}
    shown: dict[str, Any] = {"uploads": uploads, "models": models(backend)["models"]}
    if backend.batch is not None:  # drops scored as platform jobs (locally a drop is scored as it arrives)
        shown["batch_jobs"] = batch_flow.recent(backend, limit)
    return shown


def models(backend: Backend) -> dict[str, Any]:
    by_name: dict[str, dict[str, Any]] = {}
    for version in backend.registry.list_versions():
        entry = by_name.setdefault(version.name, {"name": version.name, "production": None, "versions": []})
        entry["versions"].append({
            "version": version.version, "run_id": version.run_id, "metric": version.metric,
            "value": version.metrics.get(version.metric),
            "dataset": f"{version.dataset_name}:{version.dataset_version}",
            "decision": version.tags.get("decision", "pending"), "reason": version.tags.get("decision_reason"),
            "feature_importance": json.loads(version.tags.get("feature_importance", "{}")),
        })
    for name in list(by_name):
        production = backend.deployer.production(name)
        entry = by_name.setdefault(name, {"name": name, "production": None, "versions": []})
        entry["production"] = _shown(asdict(production)) if production else None
    return {"models": sorted(by_name.values(), key=lambda m: m["name"])}


def _shown(version: dict[str, Any]) -> dict[str, Any]:
    """A model version with its local paths relative to the state folder (``Settings.shown_path``)."""
    shown_path = get_settings().shown_path
    tags = dict(version["tags"])
    if "artifact_dir" in tags:
        tags["artifact_dir"] = shown_path(tags["artifact_dir"])
    return {**version, "artifact_uri": shown_path(version["artifact_uri"]), "tags": tags}
