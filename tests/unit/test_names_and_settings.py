"""Names that outlive their first meaning, and settings read from where the platform keeps them."""

import json
from pathlib import Path

import pytest

from functions import deploy
from shared import pipelines
from shared.errors import NotFound


def test_the_training_pipeline_has_a_task_neutral_name_and_its_first_name_still_starts_it():
    assert pipelines.definition("automl-training") is pipelines.TRAINING
    assert pipelines.definition("automl-classification") is pipelines.TRAINING
    assert pipelines.TRAINING.reference == "automl-training:1"  # what every run records, whichever name began it
    with pytest.raises(NotFound, match="automl-training"):
        pipelines.definition("automl-regression")


def test_the_poison_handler_counts_the_tries_host_json_allows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    shipped = json.loads(deploy.HOST_JSON.read_text())["extensions"]["queues"]["maxDequeueCount"]
    assert deploy.max_tries() == shipped
    queues = {"maxDequeueCount": 3}
    (tmp_path / "host.json").write_text(json.dumps({"version": "2.0", "extensions": {"queues": queues}}))
    monkeypatch.setattr(deploy, "HOST_JSON", tmp_path / "host.json")
    deploy.max_tries.cache_clear()
    try:
        assert deploy.max_tries() == 3
    finally:
        deploy.max_tries.cache_clear()


def test_a_scoring_body_may_start_with_a_byte_order_mark_as_json_allows():
    from shared.scoring import parse_request

    body = '\ufeff{"data": [{"age": 41}]}'.encode()
    request = parse_request(body, max_rows=10, max_bytes=10_000, content_type="application/json")
    assert request.rows == [{"age": 41}]


def test_the_upload_limit_by_default_is_what_the_machine_can_train(monkeypatch: pytest.MonkeyPatch):
    from shared import settings

    gib = 1024**3
    assert settings.default_upload_mb(24 * gib) == 6144  # 5,000,000 bank rows (about 600 MB) pass
    assert settings.default_upload_mb(512 * 1024**2) == 200  # a small machine keeps the floor
    monkeypatch.delenv("MAX_UPLOAD_MB", raising=False)
    assert settings.Settings.from_env().max_upload_bytes == settings.default_upload_mb() * 1024**2
    assert "a quarter of this machine's memory" in settings.upload_limit_source()
    monkeypatch.setenv("MAX_UPLOAD_MB", "300")
    assert settings.Settings.from_env().max_upload_bytes == 300 * 1024**2
    assert settings.upload_limit_source() == "MAX_UPLOAD_MB"
