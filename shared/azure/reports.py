"""Run reports in Azure: Azure ML studio already shows each run's metrics, children and outputs."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shared.azure.config import AzureSettings
from shared.errors import NotSupported
from shared.ports import RunInfo, RunReports


class StudioRunReports(RunReports):
    def __init__(self, azure: AzureSettings) -> None:
        self.azure = azure

    def write(self, run: RunInfo, decision: dict[str, Any]) -> None:
        """Nothing to write: the decision is in the upload record and in telemetry, the run in the studio."""

    def html(self, run_id: str) -> str | None:
        workspace = (f"/subscriptions/{self.azure.subscription_id}/resourceGroups/{self.azure.resource_group}"
                     f"/providers/Microsoft.MachineLearningServices/workspaces/{self.azure.workspace}")
        raise NotSupported(f"run reports are written by the local backend; in Azure, open the run in Azure ML "
                           f"studio: https://ml.azure.com/runs/{quote(run_id)}?wsid={quote(workspace)}")
