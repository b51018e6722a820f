"""Which run events the app acts on, read from the one definition the Event Grid filter uses too."""

from __future__ import annotations

import json
from pathlib import Path

from shared.azure import entities
from shared.run_events import APP_TAG, APP_TAG_KEY, FILTER_KEY, RUN_COMPLETED, RUN_STATUS_CHANGED, RunEvent

ROOT = Path(__file__).resolve().parents[2]


def test_the_filter_key_reads_the_tag_the_app_sets_on_its_jobs():
    definition = json.loads((ROOT / "shared" / "run_events.json").read_text())
    assert FILTER_KEY == f"data.runTags.{APP_TAG_KEY}" == definition["filterKey"]
    assert entities.APP_TAG == APP_TAG == definition["tagValue"]
    assert definition["eventTypes"] == {"completed": RUN_COMPLETED, "statusChanged": RUN_STATUS_CHANGED}


def test_fields_are_read_in_either_case_and_null_run_types_are_fine():
    camel = RunEvent.of(RUN_COMPLETED, {"runId": "r1", "runType": None, "runTags": {"app": APP_TAG, "n": 1}})
    pascal = RunEvent.of(RUN_COMPLETED, {"RunId": "r1", "RunType": None, "RunTags": {"app": APP_TAG, "n": 1}})
    assert camel == pascal
    assert camel.run_type is None and camel.tags == {"app": APP_TAG, "n": "1"} and camel.not_for_us() is None


def test_what_is_not_for_the_app_says_why():
    ours = {"runId": "r1", "runTags": {"app": APP_TAG}}
    assert "does not carry the tag" in str(RunEvent.of(RUN_COMPLETED, {"runId": "r1", "runTags": {}}).not_for_us())
    assert "does not carry the tag" in str(RunEvent.of(RUN_COMPLETED, {"runId": "r1", "runTags": None}).not_for_us())
    assert RunEvent.of(RUN_STATUS_CHANGED, {**ours, "runStatus": "Running"}
                                                     ).not_for_us() == "status change to Running"
    assert RunEvent.of(RUN_STATUS_CHANGED, {**ours, "runStatus": "Failed"}).not_for_us() is None
    assert "event type" in str(RunEvent.of("Microsoft.MachineLearningServices.ModelRegistered", ours).not_for_us())
    assert RunEvent.of(RUN_COMPLETED, {"runTags": {"app": APP_TAG}}).not_for_us() == "no runId"


def test_an_ignored_event_is_described_with_what_arrived():
    event = RunEvent.of(RUN_COMPLETED, {"runId": "t1", "runType": "automl", "runTags": {"b": "2", "a": "1"},
                                        "experimentName": "bank"})
    described = event.describe()
    assert described["run_type"] == "automl" and described["run_tags"] == '{"a": "1", "b": "2"}'
    assert described["experiment"] == "bank"
