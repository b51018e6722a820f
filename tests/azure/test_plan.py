"""``cli plan``: what the Azure backend would do, including the gate on the same rows for a later version."""

from __future__ import annotations

from shared.azure.config import AzureSettings
from shared.azure.plan import plan_upload
from shared.settings import Settings
from tests.azure.conftest import sample_csv


def test_the_plan_shows_a_later_version_compared_with_production_on_the_same_held_out_rows(monkeypatch, tmp_path):
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path))
    plan = plan_upload(sample_csv(count=400), "bank/jan.csv", {}, Settings.from_env(), AzureSettings.example())
    assert plan.promotion is not None and plan.promotion.decision == "deploying"
    assert any(path.endswith("/holdout.csv") for path in plan.blobs)
    steps = plan.beside_steps()
    compared = {s["deployment_name"]: s["request"]["input_data"]["data"] for s in steps
                if s["call"] == "online_endpoints.invoke" and len(s["request"]["input_data"]["data"]) > 1}
    assert set(compared) == {"blue", "green"} and compared["blue"] == compared["green"]
    assert plan.beside_decision is not None and "held out of training" in plan.beside_decision["reason"]
