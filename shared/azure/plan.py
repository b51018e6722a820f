"""What the Azure backend would do for one upload, worked out by running it against an in-memory workspace.

The same ``ingest``, ``handle_run_completed`` and deployment steps that run in
the Function App drive the Azure ports here; only ``MLClient`` and the storage writes are
stood in for, and every call they receive is kept, in order, with the REST
body Azure ML would get.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.azure.config import AzureSettings
from shared.azure.dry_run import (
    Call,
    InMemoryQueue,
    InMemoryRecords,
    InMemoryRunMetrics,
    InMemoryWorkspace,
    RecordingStore,
    rest_form,
)
from shared.azure.wiring import assemble
from shared.ingest import IngestOutcome, Upload, ingest
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
    backend = assemble(settings, azure, workspace, store, records, credential=None, queue=queue,
                       run_metrics=InMemoryRunMetrics(workspace))
    uri = f"https://<storage-account>.blob.core.windows.net/datasets/{blob_path}"
    outcome = ingest(Upload(blob_path, uri, content, metadata, '"0x8DC0000000000"'), backend, settings)
    if outcome.state != "training" or outcome.run_id is None:
        return Plan(outcome, None, workspace.calls, store.blobs, None, azure.versions_container)
    event = workspace.complete_run(outcome.run_id, score=assumed_score)
    promotion = handle_run_completed(RUN_COMPLETED, event, backend)
    queue.drain(backend)  # the deployment the queue trigger would drive, step by step
    first = list(workspace.calls)
    # A later version of the same rows (re-ordered: a new content hash) while this one serves, equally good.
    lines = content.rstrip(b"\n").split(b"\n")
    later = b"\n".join([lines[0], *reversed(lines[1:])]) + b"\n"
    second = ingest(Upload(blob_path, uri, later, metadata, '"0x8DC0000000001"'), backend, settings)
    beside, decision = None, None
    if second.state == "training" and second.run_id:
        handle_run_completed(RUN_COMPLETED, workspace.complete_run(second.run_id, score=assumed_score), backend)
        queue.drain(backend)
        beside = workspace.calls[len(first):]
        decision = backend.promotions.decision(second.run_id)
    return Plan(outcome, promotion, first, store.blobs, event, azure.versions_container, beside, decision)


def describe(call: Call) -> dict[str, Any]:
    """A call with each SDK entity replaced by its REST body."""
    def entity(value: Any) -> bool:
        return hasattr(value, "_to_rest_object") or hasattr(value, "_to_rest_online_endpoint")

    return {key: rest_form(value) if entity(value) else value for key, value in call.args.items()}
