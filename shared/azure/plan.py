"""What the Azure backend would do for one upload, worked out by running it against an in-memory workspace.

The same ``ingest``, ``handle_run_completed`` and deployment steps that run in
the Function App drive the Azure ports here; only ``MLClient`` and the storage writes are
stood in for, and every call they receive is kept, in order, with the REST
body Azure ML would get.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from shared import batch_flow
from shared.azure import entities
from shared.azure.batch_scoring import SCORED_FILE, SUMMARY_FILE, InMemoryJobOutputs
from shared.azure.config import AzureSettings
from shared.azure.dry_run import (
    Call,
    InMemoryQueue,
    InMemoryRecords,
    InMemoryRunMetrics,
    InMemoryWorkspace,
    RecordingBatchOutputs,
    RecordingStore,
    drain_batch,
    rest_form,
)
from shared.azure.wiring import assemble
from shared.ingest import IngestOutcome, Upload, ingest
from shared.ports import Backend
from shared.promotion import RUN_COMPLETED, PromotionOutcome, handle_run_completed
from shared.settings import Settings


@dataclass(frozen=True)
class Plan:
    ingest: IngestOutcome
    promotion: PromotionOutcome | None
    calls: list[Call]
    blobs: dict[str, bytes]
    event: dict[str, Any] | None
    container: str = ""  # where the dataset versions are written
    beside: list[Call] | None = None  # the calls for a later version, while this one serves
    beside_decision: dict[str, Any] | None = None
    drop: list[Call] | None = None  # the calls for the same file dropped into scoring-input/<model>/
    drop_outputs: list[str] | None = None  # what that drop writes to scoring-output

    def drop_steps(self) -> list[dict[str, Any]]:
        """The calls of a batch scoring drop while this upload's model serves: the batch endpoint, a deployment
        of the production version, the job over the file, and its status."""
        return [{"call": c.operation, **describe(c)} for c in self.drop or []]

    def beside_steps(self) -> list[dict[str, Any]]:
        """The calls of a later version's promotion, made while this upload's model serves: its deployment
        beside production, the comparison on the same held-out rows, and the switch or the removal."""
        return [{"call": c.operation, **describe(c)} for c in self.beside or []]

    def steps(self) -> list[dict[str, Any]]:
        """Each call to Azure ML in order, as the REST body it would send."""
        return [{"call": c.operation, **describe(c)} for c in self.calls]


def plan_upload(content: bytes, blob_path: str, metadata: dict[str, str], settings: Settings,
                azure: AzureSettings, assumed_score: float = 0.91) -> Plan:
    workspace, store, records, queue = InMemoryWorkspace(), RecordingStore(), InMemoryRecords(), InMemoryQueue()
    workspace.store = store
    job_outputs, batch_queue = InMemoryJobOutputs(), InMemoryQueue()
    backend = assemble(settings, azure, workspace, store, records, credential=None, queue=queue,
                       run_metrics=InMemoryRunMetrics(workspace), batch_outputs=job_outputs,
                       batch_queue=batch_queue)
    uri = f"https://<storage-account>.blob.core.windows.net/datasets/{blob_path}"
    outcome = ingest(Upload(blob_path, uri, content, metadata, '"0x8DC0000000000"'), backend, settings)
    if outcome.state != "training" or outcome.run_id is None:
        return Plan(outcome, None, workspace.calls, store.blobs, None, azure.versions_container)
    event = workspace.complete_run(outcome.run_id, score=assumed_score)
    promotion = handle_run_completed(RUN_COMPLETED, event, backend)
    queue.drain(backend)  # the deployment the queue trigger would drive, step by step
    first = list(workspace.calls)
    drop, written = plan_drop(backend, workspace, job_outputs, batch_queue, azure, blob_path, content)
    first_count = len(workspace.calls)
    # A later version of the same rows (re-ordered: a new content hash) while this one serves, equally good.
    lines = content.rstrip(b"\n").split(b"\n")
    later = b"\n".join([lines[0], *reversed(lines[1:])]) + b"\n"
    second = ingest(Upload(blob_path, uri, later, metadata, '"0x8DC0000000001"'), backend, settings)
    beside, decision = None, None
    if second.state == "training" and second.run_id:
        handle_run_completed(RUN_COMPLETED, workspace.complete_run(second.run_id, score=assumed_score), backend)
        queue.drain(backend)
        beside = workspace.calls[first_count:]
        decision = backend.promotions.decision(second.run_id)
    return Plan(outcome, promotion, first, store.blobs, event, azure.versions_container, beside, decision, drop,
                written)


def plan_drop(backend: Backend, workspace: InMemoryWorkspace, job_outputs: InMemoryJobOutputs,
              queue: InMemoryQueue, azure: AzureSettings, blob_path: str, content: bytes
              ) -> tuple[list[Call], list[str]]:
    """The same file dropped into ``scoring-input/<model>/``: the batch flow's calls, Azure ML playing the job
    (its script's files stand in for by the input and a summary)."""
    before = len(workspace.calls)
    outputs = RecordingBatchOutputs()
    batch_flow.accept(backend, batch_flow.Drop(blob_path, '"0x8DC0000000002"', lambda: io.BytesIO(content)),
                      outputs)
    for _ in range(20):
        if not queue.messages:
            break
        drain_batch(queue, backend, outputs, limit=1)
        for name, job in workspace.job_views.items():
            if name.startswith("score-") and job.status != "Completed":
                folder = entities.batch_job_output(azure, name)
                rows = max(0, content.count(b"\n") - 1)
                job_outputs.blobs[f"{folder}/{SCORED_FILE}"] = content
                job_outputs.blobs[f"{folder}/{SUMMARY_FILE}"] = json.dumps(
                    {"rows": rows, "chunks": 1, "predictions": {}, "values_not_numeric": 0}).encode()
                job.status = "Completed"
    return workspace.calls[before:], sorted([*outputs.committed, *outputs.json])


def describe(call: Call) -> dict[str, Any]:
    """A call with each SDK entity replaced by its REST body."""
    def entity(value: Any) -> bool:
        return any(hasattr(value, m) for m in ("_to_rest_object", "_to_rest_online_endpoint",
                                                "_to_rest_batch_endpoint"))

    return {key: rest_form(value) if entity(value) else value for key, value in call.args.items()}
