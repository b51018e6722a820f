"""The local registry lists its versions from the store's tables, without loading MLflow: the same versions and
tags MLflow's own search finds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shared.local import tracking
from shared.local.registry import MlflowModelRegistry, _to_version


def _through_mlflow(registry: MlflowModelRegistry, name: str | None = None) -> list[tuple[str, str, dict]]:
    query = f"name = '{name}'" if name else ""
    found = [_to_version(mv) for mv in registry.client.search_model_versions(query)]
    return sorted(((v.name, v.version, v.tags) for v in found), key=lambda t: (t[0], int(t[1])))


def test_versions_read_from_the_tables_match_mlflow(tmp_path: Path) -> None:
    registry = MlflowModelRegistry(tmp_path)
    assert registry.list_versions() == []  # no store yet: nothing registered, nothing loaded
    client = registry.client
    for name in ("bank", "churn"):
        client.create_registered_model(name)
    for i in range(3):
        client.create_model_version("bank", f"file:///models/bank/{i}", tags={"pipeline_run_id": f"r{i}",
                                                                           "metric.auc": str(0.9 + i / 100)})
    client.create_model_version("churn", "file:///models/churn/0", tags={"primary_metric": "r2"})
    client.set_model_version_tag("bank", "2", "decision", "promoted")
    client.delete_model_version("bank", "3")

    listed = registry.list_versions()
    assert [(v.name, v.version) for v in listed] == [("bank", "1"), ("bank", "2"), ("churn", "1")]
    assert [(v.name, v.version, v.tags) for v in listed] == _through_mlflow(registry)
    assert listed[1].metrics == {"auc": 0.91} and listed[1].tags["decision"] == "promoted"
    assert [(v.name, v.version, v.tags) for v in registry.list_versions("bank")] == _through_mlflow(registry, "bank")


def test_listing_versions_does_not_load_mlflow(tmp_path: Path) -> None:
    registry = MlflowModelRegistry(tmp_path)
    registry.client.create_registered_model("bank")
    registry.client.create_model_version("bank", "file:///models/bank/0", tags={"pipeline_run_id": "r0"})
    script = ("import sys; from pathlib import Path; from shared.local.registry import MlflowModelRegistry; "
              f"print(len(MlflowModelRegistry(Path({str(tmp_path)!r})).list_versions()), 'mlflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.split() == ["1", "False"]
    assert Path(tracking.tracking_uri(tmp_path).removeprefix("sqlite:///")).exists()


def test_a_store_still_being_created_lists_nothing(tmp_path: Path) -> None:
    import sqlite3

    path = Path(tracking.tracking_uri(tmp_path).removeprefix("sqlite:///"))
    with sqlite3.connect(path) as db:  # the file exists, its tables not yet (a training run is creating them)
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    assert MlflowModelRegistry(tmp_path).list_versions() == []
