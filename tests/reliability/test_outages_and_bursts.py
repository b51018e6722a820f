"""Storage going away under the host, bursts of uploads, and run-completed events out of order."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta

import pytest
import requests

from cli import sample_data
from devhost.process import wait_for
from tests.integration.ml_stack import TERMINAL, features
from tests.reliability.harness import Node, clone_run, deliver_run_completed

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def test_storage_outage_loses_no_upload_and_is_reported(node: Node):
    stack = node.start()
    before = stack.upload("alpha/a.csv", sample_data.to_csv(sample_data.rows(300, seed=1)))
    node.emulator.stop()
    host = node.host
    assert host is not None
    wait_for(lambda: "Storage is unreachable" in host.log_text(), timeout=30, what="the outage in the host log")
    time.sleep(2)  # the host keeps polling a storage account that does not answer
    assert host.process.poll() is None, "the host must survive the outage"
    node.emulator.start()  # same ports, same data folder
    after = stack.upload("beta/b.csv", sample_data.to_csv(sample_data.rows(300, seed=2)))
    for upload_id in (before, after):
        assert stack.wait_final(upload_id)["state"] == "promoted"
    assert "Storage is reachable again" in host.log_text()


def test_twenty_uploads_to_three_models_in_a_second(node: Node):
    stack = node.start()
    uploads: dict[str, list[str]] = defaultdict(list)
    for index in range(20):  # back to back: Azurite on loopback takes a few ms per upload
        model = ("m1", "m2", "m3")[index % 3]
        content = sample_data.to_csv(sample_data.rows(200, seed=100 + index))
        uploads[model].append(stack.upload(f"{model}/part-{index:02d}.csv", content))
    running_at_once: list[int] = []
    failed: list[BaseException] = []
    done = threading.Event()

    def watch() -> None:  # how many runs train at the same moment, sampled all along
        try:
            while not done.is_set():
                running_at_once.append(sum(r["state"] == "running" for r in stack.get("runs")["runs"]))
                done.wait(0.2)  # a sampling interval, not a wait for a condition
        except BaseException as error:  # the main thread reports it
            failed.append(error)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    records = {u: stack.wait_final(u) for ups in uploads.values() for u in ups}
    done.set()
    watcher.join()
    if failed:
        raise failed[0]
    assert max(running_at_once) == 1  # trainings are serialised (one worker, one run at a time)
    assert set(r["state"] for r in records.values()) <= TERMINAL
    for model, ids in uploads.items():
        newest = records[ids[-1]]
        assert newest["state"] in ("promoted", "not_promoted"), newest  # the newest data is always trained
        runs = stack.get("runs", model=model)["runs"]
        trained = sorted((r for r in runs if r["state"] == "completed"), key=lambda r: r["created_at"])
        assert {r["upload_id"] for r in runs} == set(ids)  # one run per upload, none lost, none doubled
        for record in (records[i] for i in ids[:-1]):
            assert record["state"] in ("promoted", "not_promoted", "superseded"), (record["state"], record["reason"])
        versions = stack.model(model)["versions"]
        assert len({v["run_id"] for v in versions}) == len(versions) == len(trained)


def test_an_older_run_completing_late_never_replaces_the_newer_champion(node: Node):
    stack = node.start()
    first = stack.wait_final(stack.upload("bank/a.csv", sample_data.to_csv(sample_data.rows(400, seed=7))))
    assert first["state"] == "promoted"
    production = stack.model("bank")["production"]
    created = stack.get(f"runs/{production['run_id']}")["created_at"]
    # The same model from a run that started a minute earlier but reports only now.
    earlier = (datetime.fromisoformat(created) - timedelta(minutes=1)).isoformat(timespec="milliseconds")
    late_id = clone_run(node, production["run_id"], created_at=earlier)
    for _ in range(3):  # delivered three times, as an at-least-once channel may
        assert deliver_run_completed(stack, late_id) == 202
    versions = stack.model("bank")["versions"]
    late = [v for v in versions if v["run_id"] == late_id]
    assert len(late) == 1 and late[0]["decision"] == "rejected" and "older run" in late[0]["reason"]
    assert stack.model("bank")["production"]["run_id"] == production["run_id"]
    assert stack.score(features(sample_data.rows(1))).json()["model"]["version"] == production["version"]


def test_every_route_but_health_needs_a_key_and_keys_never_leak(node: Node):
    from tests.azure.conftest import declared_functions

    stack = node.start()
    http = [f for f in declared_functions().values() if f.is_http_function()]
    key = stack.host.function_key
    for function in http:
        trigger = json.loads(function.get_function_json())["bindings"][0]
        route = "/api/" + trigger["route"].replace("{name}", "bank").replace("{version}", "1") \
            .replace("{run_id}", "r1").replace("{*path}", "x").replace("{path}", "x")
        for method in trigger.get("methods") or ["GET"]:
            response = requests.request(method, f"{stack.host.url}{route}", timeout=30)
            expected_open = function.get_function_name() == "health"
            assert (response.status_code != 401) == expected_open, (method, route, response.status_code)
            wrong = requests.request(method, f"{stack.host.url}{route}", headers={"x-functions-key": key[:-1] + "x"},
                                     timeout=30)
            assert expected_open or wrong.status_code == 401
            assert key not in response.text and key not in wrong.text
    requests.get(f"{stack.host.url}/api/status", params={"code": key}, timeout=30)
    requests.post(f"{stack.host.url}/api/score", params={"code": key}, data=b"{", timeout=30)
    assert key not in stack.host.log_text()
