"""SIGKILL mid-flow, then restart: every upload ends in exactly one terminal state, nothing is registered or
deployed twice, and a half-written deployment never serves."""

from __future__ import annotations

import json
import sqlite3

import pytest

from cli import sample_data
from devhost.process import wait_for
from tests.integration.ml_stack import Stack, features
from tests.reliability.harness import Node, clone_run, deliver_run_completed, kill_workers, runs_of

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
CSV = sample_data.to_csv(sample_data.rows(400, seed=5))


def assert_done_exactly_once(stack: Stack, upload_id: str) -> None:
    record = stack.wait_final(upload_id)
    assert record["state"] == "promoted", record
    (run,) = runs_of(stack, upload_id)  # one run for the upload, however often it was delivered
    assert run["state"] == "completed"
    versions = stack.model("bank")["versions"]
    assert [v["run_id"] for v in versions] == [run["run_id"]]  # registered once
    production = stack.model("bank")["production"]
    assert production["run_id"] == run["run_id"]
    answer = stack.score(features(sample_data.rows(2, seed=9)))
    assert answer.status_code == 200 and answer.json()["model"]["version"] == versions[0]["version"]


def wait_until_training(stack: Stack, upload_id: str) -> None:
    def training() -> bool:
        runs = runs_of(stack, upload_id)
        return bool(runs) and runs[0]["state"] == "running" and runs[0]["progress"].get("step") == "automl"

    wait_for(training, timeout=120, what="training to start")


def test_killed_during_ingest(node: Node):
    stack = node.start(faults="ingest.registered")
    upload_id = stack.upload("bank/a.csv", CSV)
    node.wait_crashed()  # after the dataset version was registered, before training was submitted
    stack = node.start()
    assert_done_exactly_once(stack, upload_id)  # the blob message came back after its visibility timeout
    datasets = sqlite3.connect(node.localstack / "state.db").execute("SELECT COUNT(*) FROM datasets").fetchone()
    assert datasets == (1,)


def test_killed_during_training(node: Node):
    stack = node.start(AUTOML_TIME_BUDGET_S="20")
    upload_id = stack.upload("bank/a.csv", CSV)
    wait_until_training(stack, upload_id)
    node.kill()  # the machine goes down: host, worker and the training process together
    assert kill_workers(node.localstack) >= 1
    stack = node.start()
    assert_done_exactly_once(stack, upload_id)  # the first use after restart starts a worker, which re-queues it


# Every point where a promotion or a deployment step can be cut short, in the order the flow reaches them: in the
# Event Grid handler, right after the deployment was queued, and after each recorded step of the queue-driven
# state machine (deploy.staged is inside the create step, before it is recorded).
DEPLOY_POINTS = ["promote.registered", "deploy.queued", "deploy.endpoint", "deploy.staged", "deploy.create",
                 "deploy.wait", "deploy.smoke", "deploy.switch", "deploy.cleanup"]


def test_killed_at_every_promotion_and_deployment_step_in_turn(node: Node):
    """One upload's promotion and deployment, with the host SIGKILLed at each step and restarted each time
    with the next point armed: it resumes from the recorded step every time and ends promoted once."""
    pointer = node.localstack / "deployments" / "bank.json"
    stack = node.start(faults=DEPLOY_POINTS[0])
    upload_id = stack.upload("bank/a.csv", CSV)
    for point, following in zip(DEPLOY_POINTS, [*DEPLOY_POINTS[1:], ""], strict=True):
        try:
            node.wait_crashed(timeout=60)
        except TimeoutError:
            print(stack.host.log_text()[-8000:])
            raise
        assert stack.host.log_text().count(f"Fault injected at {point}:") == 1
        if pointer.exists():  # only once the switch happened, and then whole: the pointer moves in one rename
            assert json.loads(pointer.read_text())["version"] == "1"
            assert DEPLOY_POINTS.index(point) >= DEPLOY_POINTS.index("deploy.switch"), point
        # The dead handler's claim and lease are taken over; the queue message comes back.
        stack = node.start(faults=following)
    assert_done_exactly_once(stack, upload_id)
    assert json.loads(pointer.read_text())["name"] == "bank"


def test_a_deployment_step_failing_five_times_is_poisoned_and_never_serves(node: Node):
    stack = node.start(faults="fail:deploy.smoke.start")
    upload_id = stack.upload("bank/a.csv", CSV)
    record = stack.wait_final(upload_id)
    assert record["state"] == "failed" and "after 5 tries" in record["reason"], record
    log = stack.host.log_text()
    assert log.count("fault injected at deploy.smoke.start") == 5
    assert "moved to deployments-poison" in log
    assert not (node.localstack / "deployments" / "bank.json").exists()
    assert stack.score(features(sample_data.rows(1, seed=2))).status_code == 503  # nothing half-deployed serves
    versions = stack.model("bank")["versions"]
    assert [v["decision"] for v in versions] == ["failed"]


def test_a_corrupt_model_is_refused_and_production_keeps_serving(node: Node):
    stack = node.start()
    first = stack.wait_final(stack.upload("bank/a.csv", CSV))
    assert first["state"] == "promoted"
    # A second run whose model file is damaged on disk (a full disk, a bad copy).
    original = stack.model("bank")["production"]
    run = stack.get(f"runs/{original['run_id']}")
    source = node.localstack / run["result"]["artifact_dir"]  # the API shows it relative to the state folder
    target = source.parent / f"{source.name}-damaged"
    target.mkdir()
    for item in source.iterdir():
        if item.is_file():
            data = item.read_bytes()
            (target / item.name).write_bytes(data[: len(data) // 3] if item.suffix == ".onnx" else data)
    broken_id = clone_run(node, original["run_id"], created_at=run["created_at"] + "Z",
                          result_json=json.dumps({**run["result"], "artifact_dir": str(target)}))
    assert deliver_run_completed(stack, broken_id) == 202  # handled: a broken model is a decision, not a retry
    versions = {v["run_id"]: v for v in stack.model("bank")["versions"]}
    assert versions[broken_id]["decision"] == "refused" and "cannot be loaded" in versions[broken_id]["reason"]
    assert stack.model("bank")["production"]["run_id"] == original["run_id"]
    assert stack.score(features(sample_data.rows(1, seed=2))).status_code == 200


def test_stopping_the_host_stops_its_training_worker_and_the_run_resumes_at_the_next_start(node: Node):
    import signal

    from tests.reliability.harness import processes_of

    stack = node.start(AUTOML_TIME_BUDGET_S="20")
    upload_id = stack.upload("bank/a.csv", CSV)
    wait_until_training(stack, upload_id)
    assert processes_of(node.localstack)
    assert stack.host.stop(signal.SIGINT) in (0, -signal.SIGINT)  # Ctrl-C: a clean stop, not a kill
    wait_for(lambda: not processes_of(node.localstack), timeout=30, what="the worker to stop with the host")
    stack = node.start()
    assert_done_exactly_once(stack, upload_id)
