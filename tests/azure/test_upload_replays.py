"""Replayed uploads keep their outcome, states only move forward, and new metadata on the same bytes trains.

The core's ingest over the Azure ports (in-memory stand-ins, no FLAML): fast, and the same code runs in Azure,
where blob events arrive at least once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.azure.pipeline import FILED, AzureTrainingPipeline
from shared.ingest import Upload, ingest
from shared.local.uploads import LocalUploadLog
from shared.ports import UploadLog
from shared.promotion import RUN_COMPLETED, handle_run_completed
from shared.upload_states import UploadState, may_move, record
from tests.azure.conftest import AzureStack, sample_csv

URI = "https://acct.blob.core.windows.net/datasets/"


def again(stack: AzureStack, path: str = "bank/jan.csv", etag: str = '"0x1"', metadata: dict | None = None,
          content: bytes | None = None):
    return ingest(Upload(path, URI + path, sample_csv() if content is None else content, metadata or {}, etag),
                  stack.backend, stack.settings)


def jobs(stack: AzureStack) -> int:
    return len(stack.workspace.operations("jobs.create_or_update"))


@pytest.mark.parametrize("promoted", [False, True], ids=["while-training", "after-promotion"])
def test_a_replay_keeps_the_outcome_it_has_and_submits_nothing(stack: AzureStack, promoted: bool):
    run_id = stack.upload(sample_csv())
    if promoted:
        handle_run_completed(RUN_COMPLETED, stack.workspace.complete_run(run_id), stack.backend)
        assert stack.queue.drain(stack.backend)[-1] == "done"
    state = "promoted" if promoted else "training"
    replay = again(stack)
    assert (replay.state, replay.run_id) == (state, run_id)
    assert jobs(stack) == 1
    record = stack.backend.uploads.get('bank/jan.csv@"0x1"')
    assert record is not None and record["state"] == state


def test_an_upload_cut_short_after_submitting_is_not_a_duplicate_of_itself(stack: AzureStack):
    """A crash after the run was submitted but before the record said so: the retry finds its own run."""
    run_id = stack.upload(sample_csv())
    path = 'uploads/bank%2Fjan.csv@"0x1".json'
    body, etag = stack.records.records[path]
    stack.records.records[path] = ({**body, "state": "received"}, etag)  # as the crash left it
    retry = again(stack)
    assert (retry.state, retry.run_id) == ("training", run_id)  # the idempotent submit gives the same run
    assert jobs(stack) == 1


@pytest.mark.parametrize("metadata", [{"metric": "AUC_weighted"}, {"exclude": "duration"}, {"target": "loan"}])
def test_the_same_bytes_with_other_metadata_train_again(stack: AzureStack, metadata: dict[str, str]):
    stack.upload(sample_csv())
    # Uploaded later (within the same second, blob names rank: see Upload.data_time), so not older data.
    other = again(stack, "bank/later.csv", '"0x2"', metadata)
    assert other.state == "training" and jobs(stack) == 2
    run = stack.backend.pipeline.get_run(str(other.run_id))
    assert run is not None
    if "target" in metadata:  # another target is another dataset version, read with that target
        dataset = stack.backend.datasets.get("bank", run.dataset_version)
        assert dataset is not None and dataset.version == 2 and dataset.schema.target == "loan"
    same = again(stack, "bank/mar.csv", '"0x3"', metadata)
    assert same.state == "duplicate" and jobs(stack) == 2  # the same bytes trained the same way: nothing new


def logs(tmp_path: Path, stack: AzureStack) -> list[UploadLog]:
    return [stack.backend.uploads, LocalUploadLog(tmp_path / "local")]


def test_states_only_move_forward_in_both_upload_logs(tmp_path: Path, stack: AzureStack):
    for uploads in logs(tmp_path, stack):
        assert record(uploads, "u1", state=UploadState("received"), blob="a.csv")
        assert record(uploads, "u1", state=UploadState("training"), run_id="r1")
        assert record(uploads, "u1", state=UploadState("deploying"))
        assert record(uploads, "u1", state=UploadState("promoted"), reason="better")
        for backwards in ("received", "training", "deploying", "duplicate", "rejected"):
            assert not record(uploads, "u1", state=UploadState(backwards), reason="stale")
        stored = uploads.get("u1")
        assert stored is not None and (stored["state"], stored["reason"]) == ("promoted", "better")
        assert record(uploads, "u1", details={"note": "kept"})  # fields without a state still merge


def test_the_rule_itself():
    assert may_move(None, "received") and may_move("received", "training") and may_move("training", "failed")
    assert may_move("training", "superseded") and may_move("deploying", "not_promoted")
    assert not may_move("superseded", "training")  # a run superseded before ingest said "training"
    assert not may_move("promoted", "received") and not may_move("failed", "promoted")


def test_scoring_a_name_never_uploaded_is_404_and_a_known_model_not_deployed_yet_is_503(
        stack: AzureStack, monkeypatch: pytest.MonkeyPatch):
    import asyncio
    import json

    import azure.functions as func

    from functions import score as module

    monkeypatch.setattr(module, "get_backend", lambda: stack.backend)
    stack.upload(sample_csv())  # bank has a dataset and a run, nothing deployed yet
    score_model = module.score_model.build().get_user_function()

    def answer(name: str) -> tuple[int, str]:
        request = func.HttpRequest("POST", f"/api/models/{name}/score", route_params={"name": name},
                                   body=json.dumps({"data": [{"age": 41}]}).encode(),
                                   headers={"content-type": "application/json"})
        response = asyncio.run(score_model(request))  # an async function, as the worker runs it
        return response.status_code, json.loads(response.get_body())["error"]

    assert answer("nothing")[0] == 404
    status, error = answer("bank")
    assert status == 503 and "no model is deployed" in error


def test_an_upload_older_than_one_already_training_starts_no_job_in_azure_either(stack: AzureStack):
    def dropped(name: str, modified: str, seed: int):
        return ingest(Upload(f"bank/{name}.csv", f"{URI}bank/{name}.csv", sample_csv(seed=seed), {}, f'"{name}"',
                             modified), stack.backend, stack.settings)

    february = dropped("feb", "2026-02-01T09:00:00+00:00", 11)
    january = dropped("jan", "2026-01-01T09:00:00+00:00", 12)  # delivered late: older data than February's
    assert february.state == "training" and january.state == "superseded"
    assert "newer upload of model bank was already trained" in (january.reason or "")
    assert jobs(stack) == 1  # February's job only
    stored = stack.backend.uploads.get('bank/jan.csv@"jan"')
    assert stored is not None and stored["state"] == "superseded"
    assert stack.backend.pipeline.get_run(january.run_id or "").state == "superseded"  # type: ignore[union-attr]
    march = dropped("mar", "2026-03-01T09:00:00+00:00", 13)
    assert march.state == "training" and jobs(stack) == 2  # newer data always trains


def listing(stack: AzureStack, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The prefixes the run records are listed by from now on (each listing reads every record it lists)."""
    listed: list[str] = []
    read_all = stack.records.list

    def recorded(prefix: str, limit: int) -> list[dict[str, Any]]:
        listed.append(prefix)
        return read_all(prefix, limit)

    monkeypatch.setattr(stack.records, "list", recorded)
    return listed


def test_an_upload_reads_only_its_own_models_runs(stack: AzureStack, monkeypatch: pytest.MonkeyPatch):
    """Each run record is filed under its model too: an upload's checks read that model's runs, not every run."""
    stack.records.create(FILED, {"filed_at": "2026-01-01T00:00:00+00:00"})  # earlier runs were filed already
    for number in range(30):  # another model's history
        stack.records.create(f"runs/other-{number}.json", {"run_id": f"other-{number}", "model": "churn"})
        stack.records.create(f"runs-of/churn/other-{number}.json", {"run_id": f"other-{number}", "model": "churn"})
    listed = listing(stack, monkeypatch)
    run_id = stack.upload(sample_csv())
    assert listed and set(listed) == {"runs-of/bank/"}
    by_id, by_model = stack.records.get(f"runs/{run_id}.json"), stack.records.get(f"runs-of/bank/{run_id}.json")
    assert by_id is not None and by_model is not None and by_id[0] == by_model[0]
    assert by_id[0]["model"] == "bank" and by_id[0]["upload_id"] == 'bank/jan.csv@"0x1"'
    assert [run.run_id for run in stack.backend.pipeline.list_runs("bank")] == [run_id]
    assert len(stack.backend.pipeline.list_runs()) == 31  # all models: the records by id


def test_runs_recorded_before_the_per_model_folders_still_count(stack: AzureStack, monkeypatch: pytest.MonkeyPatch):
    """A run recorded by id alone (as before runs were filed per model) is filed under its model by a one-time
    pass, and still supersedes an upload of older data."""
    old = {"run_id": "train-old", "model": "bank", "upload_id": "bank/mar.csv@\"mar\"",
           "data_time": "2026-03-01T09:00:00+00:00", "created_at": "2026-03-01T09:00:05+00:00"}
    stack.records.create("runs/train-old.json", old)
    stack.records.create("runs/train-churn.json", {"run_id": "train-churn", "model": "churn"})
    late = ingest(Upload("bank/feb.csv", f"{URI}bank/feb.csv", sample_csv(seed=3), {}, '"feb"',
                         "2026-02-01T09:00:00+00:00"), stack.backend, stack.settings)
    assert late.state == "superseded" and jobs(stack) == 0
    filed = stack.records.get("runs-of/bank/train-old.json")
    assert filed is not None and filed[0] == old
    assert stack.records.get("runs-of/churn/train-churn.json") is not None  # every model's, in the one pass
    assert stack.records.get(FILED) is not None
    assert {run.run_id for run in stack.backend.pipeline.list_runs("bank")} == {"train-old", late.run_id}
    listed = listing(stack, monkeypatch)
    first = stack.backend.pipeline
    assert isinstance(first, AzureTrainingPipeline)
    another = AzureTrainingPipeline(first.ml, first.store, first.records, first.settings, first.metrics)  # later
    assert [run.run_id for run in another.list_runs("churn")] == ["train-churn"]
    assert listed == ["runs-of/churn/"]  # the pass is not made twice


@pytest.mark.parametrize("metric", ["f1", "log_loss", "f1_score_weighted"])
def test_a_metric_azure_automl_cannot_optimise_is_rejected_at_ingest_before_anything_is_created(
        stack: AzureStack, metric: str):
    """Refused when the job is built, it would fail ingest on every try and poison the blob: ingest asks first."""
    outcome = again(stack, metadata={"metric": metric})
    assert outcome.state == "rejected"
    assert outcome.reason == (f"Azure AutoML classification cannot optimise {metric}: choose one of accuracy, "
                              "AUC_weighted, precision_score_weighted, average_precision_score_weighted, "
                              "norm_macro_recall")
    record = stack.backend.uploads.get('bank/jan.csv@"0x1"')
    assert record is not None and (record["state"], record["reason"]) == ("rejected", outcome.reason)
    assert stack.workspace.operations() == [] and stack.store.blobs == {}  # no dataset version, no job
    assert stack.backend.datasets.list() == [] and stack.backend.pipeline.list_runs("bank") == []
