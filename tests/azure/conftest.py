"""The Azure backend over an in-memory MLClient stand-in that records calls (no machine here reaches Azure)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from cli import sample_data
from shared.azure.config import AzureSettings
from shared.azure.dry_run import InMemoryQueue, InMemoryRecords, InMemoryRunMetrics, InMemoryWorkspace, RecordingStore
from shared.azure.wiring import assemble
from shared.ingest import Upload, ingest
from shared.ports import Backend
from shared.settings import Settings


@dataclass
class AzureStack:
    backend: Backend
    workspace: InMemoryWorkspace
    store: RecordingStore
    records: InMemoryRecords
    settings: Settings
    azure: AzureSettings
    queue: InMemoryQueue

    def upload(self, content: bytes, path: str = "bank/jan.csv", etag: str = '"0x1"',
               metadata: dict[str, str] | None = None) -> str:
        """Ingest like the blob function; returns the run id."""
        outcome = ingest(Upload(path, f"https://acct.blob.core.windows.net/datasets/{path}", content,
                                metadata or {}, etag), self.backend, self.settings)
        assert outcome.state == "training", outcome
        assert outcome.run_id
        return outcome.run_id


def sample_csv(count: int = 200, seed: int = 7) -> bytes:
    return sample_data.to_csv(sample_data.rows(count, seed=seed))


@pytest.fixture()
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AzureStack:
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path / "unused"))
    settings = Settings.from_env()
    azure = replace(AzureSettings.example(), endpoint_suffix="x7k2")
    workspace, store, records, queue = InMemoryWorkspace(), RecordingStore(), InMemoryRecords(), InMemoryQueue()
    workspace.store = store
    backend = assemble(settings, azure, workspace, store, records, credential=None, queue=queue,
                       run_metrics=InMemoryRunMetrics(workspace))
    return AzureStack(backend, workspace, store, records, settings, azure, queue)


@lru_cache(maxsize=1)
def declared_functions() -> dict[str, Any]:
    """The app's functions; ``get_functions()`` may run once per process (a second call re-registers)."""
    import function_app
    from devhost.discovery import functions_of

    return {str(f.get_function_name()): f for f in functions_of(function_app.app)}


IDENTITY_ID = ("/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/test-rg/providers/"
               "Microsoft.ManagedIdentity/userAssignedIdentities/id-test")


@dataclass
class SdkStack:
    """The Azure backend over the real MLClient, whose requests a local stand-in of the REST service answers."""

    backend: Backend
    service: Any  # tests.azure.rest_workspace.RestWorkspace
    ml: Any
    queue: InMemoryQueue
    records: InMemoryRecords
    settings: Settings

    def upload(self, content: bytes, path: str = "bank/jan.csv", etag: str = '"0x1"',
               metadata: dict[str, str] | None = None) -> str:
        outcome = ingest(Upload(path, f"https://acct.blob.core.windows.net/datasets/{path}", content,
                                metadata or {}, etag), self.backend, self.settings)
        assert outcome.state == "training", outcome
        assert outcome.run_id
        return outcome.run_id

    def run_until_waiting(self, limit: int = 20) -> list[str]:
        """Run deployment messages until one waits on Azure (``polling``) or the deployment ends."""
        outcomes: list[str] = []
        while self.queue.messages and len(outcomes) < limit:
            outcomes += self.queue.drain(self.backend, limit=1)
            if outcomes[-1] == "polling" or " -> " not in outcomes[-1]:
                break
        return outcomes

    def deploy_until_done(self, rounds: int = 10) -> list[str]:
        """Run the deployment queue; between rounds Azure finishes whatever it was provisioning."""
        outcomes: list[str] = []
        for _ in range(rounds):
            outcomes += self.run_until_waiting()
            if not self.queue.messages:
                break
            self.service.provision_all()
        return outcomes


@pytest.fixture()
def sdk_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SdkStack:
    from shared.azure.run_metrics import MlflowRunMetrics
    from tests.azure.rest_workspace import FakeCredential, RestTransport, RestWorkspace, ml_client

    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path / "unused"))
    settings = Settings.from_env()
    azure = replace(AzureSettings.example(), endpoint_suffix="x7k2", endpoint_identity_id=IDENTITY_ID)
    service = RestWorkspace()
    ml = ml_client(service)
    records, queue = InMemoryRecords(), InMemoryQueue()
    run_metrics = MlflowRunMetrics(ml, FakeCredential(), transport=RestTransport(service))
    service.store = RecordingStore()
    backend = assemble(settings, azure, ml, service.store, records, credential=None, queue=queue,
                       run_metrics=run_metrics)
    return SdkStack(backend, service, ml, queue, records, settings)
