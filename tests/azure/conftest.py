"""The Azure backend over an in-memory MLClient stand-in that records calls (no machine here reaches Azure)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from cli import sample_data
from shared.azure.config import AzureSettings
from shared.azure.dry_run import InMemoryRecords, InMemoryWorkspace, RecordingStore
from shared.azure.wiring import assemble
from shared.backend import Backend
from shared.ingest import Upload, ingest
from shared.settings import Settings


@dataclass
class AzureStack:
    backend: Backend
    workspace: InMemoryWorkspace
    store: RecordingStore
    records: InMemoryRecords
    settings: Settings
    azure: AzureSettings

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
    workspace, store, records = InMemoryWorkspace(), RecordingStore(), InMemoryRecords()
    backend = assemble(settings, azure, workspace, store, records, credential=None)
    return AzureStack(backend, workspace, store, records, settings, azure)


@lru_cache(maxsize=1)
def declared_functions() -> dict[str, Any]:
    """The app's functions; ``get_functions()`` may run once per process (a second call re-registers)."""
    import function_app
    from devhost.discovery import functions_of

    return {str(f.get_function_name()): f for f in functions_of(function_app.app)}
