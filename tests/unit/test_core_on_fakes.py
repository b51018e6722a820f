"""Ingest, the promotion gate and batch scoring on in-memory ports: the core's rules, with no training."""

from __future__ import annotations

import logging

import pytest

from cli import sample_data
from shared import run_order
from shared.batch import score_drop
from shared.ingest import Upload, ingest
from shared.model_contract import ModelSignature
from shared.promotion import RUN_COMPLETED, handle_run_completed
from shared.schema import Column
from shared.settings import Settings
from tests.unit.fakes import ConstantModel, MemoryBatchOutputs, MemoryStack, memory_stack

CSV = sample_data.to_csv(sample_data.rows(120, seed=3))


@pytest.fixture()
def stack() -> MemoryStack:
    return memory_stack()


@pytest.fixture()
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Settings:
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MIN_ROWS", "50")
    return Settings.from_env()


def upload(content: bytes = CSV, path: str = "bank/jan.csv", etag: str = '"1"', **metadata: str) -> Upload:
    return Upload(path, f"memory://datasets/{path}", content, metadata, etag, "2026-11-01T10:00:00+00:00")


def completed(stack: MemoryStack, run_id: str, score: float) -> dict[str, object]:
    run = stack.pipeline.complete(run_id, score)
    return {"runId": run.run_id, "experimentName": run.model_name, "runTags": {"app": "csv-to-endpoint"}}


def test_a_good_upload_registers_a_dataset_and_submits_one_run(stack: MemoryStack, settings: Settings):
    outcome = ingest(upload(), stack.backend, settings)
    assert outcome.state == "training" and outcome.dataset_version == 1
    request = stack.pipeline.requests[outcome.run_id or ""]
    assert request.target == "y" and request.upload_id == 'bank/jan.csv@"1"'
    assert stack.backend.uploads.get('bank/jan.csv@"1"')["state"] == "training"  # type: ignore[index]


def test_a_replay_returns_the_current_outcome_even_after_promotion(stack: MemoryStack, settings: Settings):
    first = ingest(upload(), stack.backend, settings)
    handle_run_completed(RUN_COMPLETED, completed(stack, first.run_id or "", 0.9), stack.backend)
    assert stack.queue.drain(stack.backend)[-1] == "done"
    assert stack.backend.uploads.get(first_id := 'bank/jan.csv@"1"')["state"] == "promoted"  # type: ignore[index]
    again = ingest(upload(), stack.backend, settings)
    assert again.state == "promoted" and again.run_id == first.run_id
    assert len(stack.pipeline.runs) == 1 and stack.backend.uploads.get(first_id)["state"] == "promoted"  # type: ignore[index]


def test_the_same_bytes_under_another_name_are_a_duplicate_but_with_another_metric_they_train(
        stack: MemoryStack, settings: Settings):
    ingest(upload(), stack.backend, settings)
    assert ingest(upload(path="bank/copy.csv", etag='"2"'), stack.backend, settings).state == "duplicate"
    other_metric = ingest(upload(path="bank/auc.csv", etag='"3"', metric="AUC_weighted"), stack.backend, settings)
    excluded = ingest(upload(path="bank/ex.csv", etag='"4"', exclude="duration"), stack.backend, settings)
    assert other_metric.state == excluded.state == "training"
    assert other_metric.dataset_version == excluded.dataset_version == 1  # one dataset version, three runs
    assert len(stack.pipeline.runs) == 3


def test_a_broken_csv_is_rejected_with_its_reason_and_nothing_is_registered(stack: MemoryStack,
                                                                           settings: Settings):
    outcome = ingest(upload(b"a,b\n1\n"), stack.backend, settings)
    assert outcome.state == "rejected" and outcome.reason
    assert stack.datasets.list() == [] and stack.pipeline.runs == {}


def test_the_gate_deploys_a_better_model_and_keeps_production_for_a_worse_one(stack: MemoryStack,
                                                                              settings: Settings):
    first = ingest(upload(), stack.backend, settings).run_id or ""
    assert handle_run_completed(RUN_COMPLETED, completed(stack, first, 0.80), stack.backend).decision == "deploying"
    stack.queue.drain(stack.backend)
    worse = ingest(upload(sample_data.to_csv(sample_data.rows(120, seed=4)), "bank/feb.csv", '"2"'),
                   stack.backend, settings).run_id or ""
    outcome = handle_run_completed(RUN_COMPLETED, completed(stack, worse, 0.70), stack.backend)
    assert outcome.decision == "rejected" and "worse than production v1" in outcome.detail["reason"]
    assert stack.deployer.production("bank").version == "1"  # type: ignore[union-attr]
    assert stack.reports.pages[worse]["decision"] == "rejected"
    better = ingest(upload(sample_data.to_csv(sample_data.rows(120, seed=5)), "bank/mar.csv", '"3"'),
                    stack.backend, settings).run_id or ""
    assert handle_run_completed(RUN_COMPLETED, completed(stack, better, 0.85), stack.backend).decision == "deploying"
    stack.queue.drain(stack.backend)
    assert stack.deployer.production("bank").version == "3"  # type: ignore[union-attr]


def test_a_repeated_event_does_nothing_twice_and_a_broken_model_is_refused(stack: MemoryStack,
                                                                          settings: Settings):
    run_id = ingest(upload(), stack.backend, settings).run_id or ""
    event = completed(stack, run_id, 0.8)
    stack.evaluator.broken.add("1")
    assert handle_run_completed(RUN_COMPLETED, event, stack.backend).decision == "refused"
    assert handle_run_completed(RUN_COMPLETED, event, stack.backend).decision == "duplicate"
    assert stack.queue.messages == [] and stack.deployer.production("bank") is None
    assert stack.backend.uploads.get('bank/jan.csv@"1"')["state"] == "not_promoted"  # type: ignore[index]


SIGNATURE = ModelSignature((Column("age", "integer"), Column("job", "string", categories=("admin.", "student"))),
                           "y", ("no", "yes"), threshold=0.4, ignored=frozenset({"id"}))


def test_batch_scoring_a_drop_writes_labels_and_a_summary_and_says_why_when_it_cannot(stack: MemoryStack):
    server = stack.backend.server
    outputs = MemoryBatchOutputs()
    missing = score_drop(server, "bank/a.csv", b"age,job\n30,admin.\n", 100, outputs)
    assert missing == {"error": "no model is deployed for bank"} and not outputs.committed
    server.models["bank"] = ConstantModel(SIGNATURE, [0.55, 0.45])  # type: ignore[attr-defined]
    summary = score_drop(server, "bank/a.csv", b"age,job\n30,admin.\n41,cook\n", 100, outputs)
    assert summary["rows"] == 2 and summary["predictions"] == {"yes": 2}  # 0.45 passes the 0.4 threshold
    assert outputs.committed["bank/a.scored.csv"].decode().splitlines()[0] == \
        "age,job,prediction,probability_no,probability_yes"
    bad = score_drop(server, "bank/b.csv", b"age\n30\n", 100, outputs)
    assert "job" in str(bad["error"]) and "bank/b.scored.csv" not in outputs.committed


def test_the_signature_reads_what_a_trained_model_stores():
    features = [{"name": c.name, "kind": c.kind, "categories": list(c.categories)} for c in SIGNATURE.features]
    meta = {"target": "y", "classes": ["no", "yes"], "threshold": 0.4, "ignored_columns": ["id"],
            "example": {"age": 30, "job": "admin."}, "features": features}
    signature = ModelSignature.from_meta(meta)
    assert signature == SIGNATURE.__class__(SIGNATURE.features, "y", ("no", "yes"), 0.4, frozenset({"id"}),
                                            signature.example)
    assert signature.numeric == ("age",) and signature.features[1].known == frozenset({"admin.", "student"})
    assert dict(signature.example) == {"age": 30, "job": "admin."}
    with pytest.raises(TypeError):
        signature.example["age"] = 1  # type: ignore[index]


def candidate(run_id: str, data_time: str, seq: int, upload: bool = True) -> run_order.Candidate:
    return run_order.Candidate(run_id, f"u-{run_id}" if upload else None, data_time, seq)


def test_the_newest_data_wins_whatever_the_arrival_order():
    feb, jan = candidate("feb", "2026-02", 1), candidate("jan", "2026-01", 2)  # February arrived first
    choice = run_order.choose("bank", [feb, jan], [])
    assert choice.run == feb and [(c.run_id, "arrived before" in why) for c, why in choice.superseded] == [
        ("jan", True)]
    # January alone, after February already trained: it is stale and nothing trains.
    late = run_order.choose("bank", [jan], [feb])
    assert late.run is None and late.superseded[0][0] == jan and "already trained" in late.superseded[0][1]
    # A REST-started run (no upload) on older data still runs: someone asked for it.
    rest = candidate("rest", "2026-01", 3, upload=False)
    assert run_order.choose("bank", [rest], [feb]).run == rest
    assert run_order.choose("bank", [], [feb]) == run_order.NextRun(None, ())


def test_a_row_name_column_is_reported_with_the_guardrails_of_the_dataset_version(stack: MemoryStack,
                                                                                 settings: Settings):
    rows = sample_data.rows(120, seed=3)
    content = sample_data.to_csv([{"": index + 1, **row} for index, row in enumerate(rows)])  # R's write.csv
    assert ingest(upload(content), stack.backend, settings).state == "training"
    dataset = stack.datasets.get("bank")
    assert dataset is not None and "" not in {c.name for c in dataset.schema.columns}
    assert dataset.guardrails[0]["check"] == "row_names" and dataset.guardrails[0]["severity"] == "info"


def test_a_queued_run_cancelled_before_it_started_ends_its_upload_cancelled(stack: MemoryStack, settings: Settings,
                                                                           caplog: pytest.LogCaptureFixture):
    import logging

    from shared import pipelines

    caplog.set_level(logging.INFO, logger="pipeline.events")
    outcome = ingest(upload(), stack.backend, settings)
    run = pipelines.cancel(stack.backend, outcome.run_id or "")
    assert run is not None and run.state == "cancelled"
    assert stack.backend.uploads.get('bank/jan.csv@"1"')["state"] == "cancelled"  # type: ignore[index]
    assert [getattr(r, "microsoft.custom_event.name", "") for r in caplog.records].count("RunCancelled") == 1


def test_no_log_line_carries_a_control_character_from_a_blob_or_column_name(stack: MemoryStack, settings: Settings,
                                                                            caplog: pytest.LogCaptureFixture):
    """A newline in a name would forge a log line, an escape sequence would drive the terminal reading it."""
    caplog.set_level(logging.INFO)
    hostile = "c\x1b]0;owned\x07\nWARNING forged line"
    content = sample_data.to_csv([{**row, hostile: 1} for row in sample_data.rows(120, seed=3)])  # a constant column
    assert ingest(upload(content), stack.backend, settings).state == "training"
    assert ingest(upload(path="bank/x\nERROR forged.csv", etag='"2"'), stack.backend, settings).state == "rejected"
    lines = [record.getMessage() for record in caplog.records]
    assert any("forged line" in line for line in lines) and any("forged.csv" in line for line in lines)
    assert all(line.isprintable() for line in lines), [line for line in lines if not line.isprintable()]


@pytest.mark.parametrize("metadata", [{"metric": "speed"}, {"task": "forecasting"}, {"target": "nope"},
                                      {"exclude": "nope"}])
def test_a_rejected_upload_keeps_the_model_name_its_path_gives(stack: MemoryStack, settings: Settings,
                                                               metadata: dict[str, str]):
    """So that a client finds its own upload in /api/status, whatever was wrong with it."""
    outcome = ingest(upload(CSV, **metadata), stack.backend, settings)
    assert outcome.state == "rejected"
    record = stack.backend.uploads.get('bank/jan.csv@"1"')
    assert record is not None and record["model_name"] == "bank" and record["reason"] == outcome.reason


def small_csv(columns: dict[str, list[object]], rows: int = 60) -> bytes:
    labels = ["yes" if i % 3 else "no" for i in range(rows)]
    return sample_data.to_csv([{**{name: values[i % len(values)] for name, values in columns.items()},
                                "y": labels[i]} for i in range(rows)])


@pytest.mark.parametrize(("columns", "exclude", "says"), [
    ({"a": [1, 2, 3, 4], "b": ["x", "z"]}, "a,b", "no features remain after excluding a, b: the file has no other "
                                                  "column than the target 'y'"),
    ({"a": [1, 2, 3, 4], "b": ["same"]}, "a", "no features remain after excluding a: the other columns are constant "
                                              "(b)"),
    ({"b": ["same"], "key": list(range(60))}, "", "no features remain: the other columns are constant (b) and "
                                                  "ID-like (key)"),
])
def test_an_upload_that_leaves_no_feature_to_learn_from_is_rejected_naming_what_left_each_out(
        stack: MemoryStack, settings: Settings, columns: dict[str, list[object]], exclude: str, says: str):
    outcome = ingest(upload(small_csv(columns), **({"exclude": exclude} if exclude else {})), stack.backend, settings)
    assert outcome.state == "rejected" and outcome.reason is not None and outcome.reason.startswith(says)
    assert stack.datasets.list() == [] and stack.pipeline.runs == {}
    kept = ingest(upload(small_csv({**columns, "c": [1.5, 2.5, 0.5]}), etag='"2"',
                         **({"exclude": exclude} if exclude else {})), stack.backend, settings)
    assert kept.state == "training"  # one column with information is enough


def test_a_duplicate_names_the_upload_and_run_that_train_its_data(stack: MemoryStack, settings: Settings):
    """What its uploader waits for is that run's outcome, so the duplicate says where to follow it."""
    first = ingest(upload(), stack.backend, settings)
    copy = ingest(upload(path="bank/copy.csv", etag='"2"'), stack.backend, settings)
    assert copy.state == "duplicate"
    record = stack.backend.uploads.get('bank/copy.csv@"2"')
    assert record is not None and record["model_name"] == "bank"
    assert record["details"]["duplicate_of"] == {"run_id": first.run_id, "upload_id": 'bank/jan.csv@"1"'}


def test_an_upload_refused_for_a_control_character_in_its_file_name_keeps_its_model_name(stack: MemoryStack,
                                                                                         settings: Settings):
    outcome = ingest(upload(path="bank/jan\n.csv"), stack.backend, settings)
    assert outcome.state == "rejected" and outcome.reason is not None and "control character" in outcome.reason
    record = stack.backend.uploads.get('bank/jan\n.csv@"1"')
    assert record is not None and record["model_name"] == "bank"
