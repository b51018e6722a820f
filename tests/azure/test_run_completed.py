"""The RunCompleted handler fed real-shaped Azure ML events: exactly the right calls, nothing twice."""

from __future__ import annotations

import pytest

from shared.promotion import RUN_COMPLETED, RUN_STATUS_CHANGED, handle_run_completed
from tests.azure.conftest import AzureStack, declared_functions, sample_csv

# Register, tag "deploying", then the queued steps: endpoint, deployment at 0%, smoke test, traffic, tag "deployed",
# and the run report, which asks the live deployment for its answers on the held-out rows.
DEPLOY = ["models.create_or_update", "models.create_or_update", "online_endpoints.begin_create_or_update",
          "online_deployments.begin_create_or_update", "online_endpoints.invoke",
          "online_endpoints.begin_create_or_update", "models.create_or_update", "online_endpoints.invoke"]
# Beside a model in production: no endpoint to create, and after the smoke test both colours score the same
# held-out rows (one call each for a small dataset) before traffic moves.
REDEPLOY = [*DEPLOY[:2], *DEPLOY[3:5], "online_endpoints.invoke", "online_endpoints.invoke", *DEPLOY[5:]]
# A model that loses that comparison: its deployment is made, compared, reported on, then deleted; traffic never
# moves.
LOST = [*DEPLOY[:2], *DEPLOY[3:5], "online_endpoints.invoke", "online_endpoints.invoke", "models.create_or_update",
        "online_endpoints.invoke", "online_deployments.begin_delete"]


def train(stack: AzureStack, score: float, seed: int, etag: str) -> tuple[str, dict]:
    run_id = stack.upload(sample_csv(seed=seed), etag=etag)
    return run_id, stack.workspace.complete_run(run_id, score=score)


def after(stack: AzureStack, event_type: str, data: dict) -> tuple[str, list[str]]:
    """Deliver the event, then run the deployment queue it filled; the decision is the final one."""
    before = len(stack.workspace.calls)
    outcome = handle_run_completed(event_type, data, stack.backend)
    decision = outcome.decision
    if decision == "deploying":
        stack.queue.drain(stack.backend)
        final = stack.backend.promotions.decision(outcome.detail["run_id"])
        assert final is not None
        decision = final["decision"]
    return decision, [c.operation for c in stack.workspace.calls[before:]]


def traffic(stack: AzureStack) -> dict[str, int]:
    return dict(stack.workspace.endpoint_views["bank-x7k2"].traffic)


def upload_state(stack: AzureStack, etag: str) -> dict:
    record = stack.backend.uploads.get(f'bank/jan.csv@{etag}')
    assert record is not None
    return record


def production_of(stack: AzureStack):
    model = stack.backend.deployer.production("bank")
    assert model is not None
    return model


def run_of(stack: AzureStack, run_id: str):
    run = stack.backend.pipeline.get_run(run_id)
    assert run is not None
    return run


def test_the_automl_parent_registers_and_deploys_blue_green_with_a_smoke_test(stack: AzureStack):
    run_id, event = train(stack, 0.91, 1, '"a"')
    decision, calls = after(stack, RUN_COMPLETED, event)
    assert decision == "deployed" and calls == DEPLOY
    model = stack.workspace.calls[-8].args["model"]
    assert model.path == f"azureml://jobs/{run_id}_automl_3/outputs/artifacts/outputs/mlflow-model/"
    assert model.tags["pipeline_run_id"] == run_id and model.tags["metric.accuracy"] == "0.91"
    smoke = stack.workspace.calls[-4].args
    assert smoke["deployment_name"] == "blue" and len(smoke["request"]["input_data"]["data"]) == 1
    # The new deployment took traffic only after the smoke test: created at 0% (no traffic), then 100%.
    assert stack.workspace.calls[-6].args["endpoint"].traffic == {}
    assert traffic(stack) == {"blue": 100}
    assert upload_state(stack, '"a"')["state"] == "promoted"


def test_a_better_model_goes_to_green_and_blue_stays_for_rollback(stack: AzureStack):
    after(stack, RUN_COMPLETED, train(stack, 0.90, 1, '"a"')[1])
    decision, calls = after(stack, RUN_COMPLETED, train(stack, 0.93, 2, '"b"')[1])
    assert decision == "deployed" and calls == REDEPLOY
    assert traffic(stack) == {"green": 100, "blue": 0}
    assert stack.workspace.deployment_views[("bank-x7k2", "green")].model == "azureml:bank:2"
    assert stack.workspace.deployment_views[("bank-x7k2", "blue")].model == "azureml:bank:1"
    assert production_of(stack).version == "2"
    # A third model replaces the rollback colour (blue), never the live one.
    after(stack, RUN_COMPLETED, train(stack, 0.95, 3, '"c"')[1])
    assert traffic(stack) == {"blue": 100, "green": 0}
    assert stack.workspace.deployment_views[("bank-x7k2", "blue")].model == "azureml:bank:3"


def test_a_worse_model_is_registered_but_not_deployed(stack: AzureStack):
    after(stack, RUN_COMPLETED, train(stack, 0.93, 1, '"a"')[1])
    decision, calls = after(stack, RUN_COMPLETED, train(stack, 0.90, 2, '"b"')[1])
    assert decision == "rejected" and calls == LOST
    assert stack.workspace.last("models.create_or_update")["model"].tags["decision"] == "rejected"
    assert traffic(stack) == {"blue": 100}
    assert ("bank-x7k2", "green") not in stack.workspace.deployment_views  # nothing of the loser keeps running
    state = upload_state(stack, '"b"')
    assert state["state"] == "not_promoted"
    assert "held out of training" in state["reason"] and "production (v1) keeps serving" in state["reason"]
    compared = [c.args["request"]["input_data"]["data"] for c in stack.workspace.calls
                if c.operation == "online_endpoints.invoke" and len(c.args["request"]["input_data"]["data"]) > 1]
    # both models, the same rows; then the report asks the challenger again, before its deployment goes
    assert len(compared) >= 3 and compared[-3] == compared[-2] == compared[-1]


def test_trials_and_other_experiments_are_ignored_and_say_why(stack: AzureStack):
    run_id, pipeline = train(stack, 0.91, 1, '"a"')
    node = stack.workspace.node_events[run_id]
    trial = {**node, "runId": f"{run_id}_automl_3", "runProperties": {"azureml.pipelinerunid": run_id}}
    untagged_trial = {**trial, "runTags": {}}
    foreign = {"runId": "someone-elses-run", "runType": "automl", "runTags": {"app": "another-app"},
               "runProperties": {}}
    for data in (trial, untagged_trial, foreign):
        assert after(stack, RUN_COMPLETED, data) == ("ignored", [])
    assert after(stack, "Microsoft.MachineLearningServices.ModelRegistered", pipeline) == ("ignored", [])


def test_replayed_and_duplicated_events_do_nothing_twice(stack: AzureStack):
    _, event = train(stack, 0.91, 1, '"a"')
    assert after(stack, RUN_COMPLETED, event)[0] == "deployed"
    for _ in range(3):
        assert after(stack, RUN_COMPLETED, event) == ("duplicate", [])
    assert stack.workspace.operations("models.create_or_update") == ["models.create_or_update"] * 3


def test_an_older_run_finishing_after_a_newer_one_never_replaces_it(stack: AzureStack):
    old_run, _ = train(stack, 0.99, 1, '"a"')
    new_run, new_event = train(stack, 0.90, 2, '"b"')
    assert after(stack, RUN_COMPLETED, new_event)[0] == "deployed"
    old_event = stack.workspace.complete_run(old_run, score=0.99)
    decision, calls = after(stack, RUN_COMPLETED, old_event)
    assert decision == "rejected" and "online_deployments.begin_create_or_update" not in calls
    assert production_of(stack).run_id == new_run


def test_a_failed_run_marks_the_upload_and_registers_nothing(stack: AzureStack):
    run_id = stack.upload(sample_csv(), etag='"a"')
    event = stack.workspace.complete_run(run_id, status="Failed")
    assert after(stack, RUN_COMPLETED.replace("RunCompleted", "RunStatusChanged"),
                 {**event, "runStatus": "Running"}) == ("ignored", [])
    decision, calls = after(stack, RUN_STATUS_CHANGED, {**event, "runStatus": "Failed"})
    assert decision == "failed" and calls == []
    upload = upload_state(stack, '"a"')
    assert upload["state"] == "failed" and "no trial finished" in upload["reason"]


def test_a_failed_smoke_test_refuses_the_model_and_production_keeps_serving(stack: AzureStack):
    after(stack, RUN_COMPLETED, train(stack, 0.90, 1, '"a"')[1])
    _, event = train(stack, 0.95, 2, '"b"')
    stack.workspace.invoke_answer = "<html>upstream error</html>"
    decision, calls = after(stack, RUN_COMPLETED, event)
    assert decision == "refused" and "online_endpoints.invoke" in calls
    assert traffic(stack) == {"blue": 100}  # green was created but never took traffic
    assert production_of(stack).version == "1"
    assert upload_state(stack, '"b"')["state"] == "not_promoted"
    assert stack.workspace.model_versions[("bank", "2")].tags["decision"] == "refused"


def test_a_transient_error_is_retried_by_the_queue_and_the_deployment_resumes(stack: AzureStack):
    after(stack, RUN_COMPLETED, train(stack, 0.90, 1, '"a"')[1])
    _, event = train(stack, 0.95, 2, '"b"')
    invoke = stack.workspace.online_endpoints.invoke
    failures = iter([ConnectionError("endpoint unreachable")])

    def flaky(endpoint_name: str, **kwargs):
        error = next(failures, None)
        if error is not None:
            raise error
        return invoke(endpoint_name, **kwargs)

    stack.workspace.online_endpoints.invoke = flaky  # type: ignore[method-assign]
    assert after(stack, RUN_COMPLETED, event)[0] == "deployed"
    assert traffic(stack) == {"green": 100, "blue": 0}
    # The retried message resumed at the smoke test: one deployment create, no second endpoint update.
    assert stack.workspace.operations("online_deployments.begin_create_or_update") == [
        "online_deployments.begin_create_or_update"] * 2
    assert stack.queue.poison == []


def test_a_message_failing_five_times_is_poisoned_and_the_upload_says_so(stack: AzureStack):
    after(stack, RUN_COMPLETED, train(stack, 0.90, 1, '"a"')[1])
    _, event = train(stack, 0.95, 2, '"b"')

    def down(endpoint_name: str, **kwargs):
        raise ConnectionError("endpoint unreachable")

    stack.workspace.online_endpoints.invoke = down  # type: ignore[method-assign]
    decision, _ = after(stack, RUN_COMPLETED, event)
    assert decision == "failed" and len(stack.queue.poison) == 1
    assert traffic(stack) == {"blue": 100}
    state = upload_state(stack, '"b"')
    assert state["state"] == "failed" and "after 5 tries" in state["reason"]


def test_runs_are_idempotent_cancellable_and_show_azure_progress(stack: AzureStack):
    from shared import pipelines

    stack.upload(sample_csv())
    params = pipelines.RunParameters("bank", metric="AUC_weighted")
    first, created = pipelines.start("automl-classification", params, stack.backend, stack.settings,
                                     idempotency_key="k1")
    again, created_again = pipelines.start("automl-classification", params, stack.backend, stack.settings,
                                           idempotency_key="k1")
    assert created and not created_again and again.run_id == first.run_id
    assert stack.workspace.operations("jobs.create_or_update") == ["jobs.create_or_update"] * 2
    run = run_of(stack, first.run_id)
    assert run.state == "queued" and run.progress["azure_status"] == "NotStarted" and run.metric == "AUC_weighted"
    cancelled = stack.backend.pipeline.cancel(first.run_id)
    assert cancelled is not None and cancelled.state == "cancelled"
    assert stack.workspace.operations("jobs.begin_cancel") == ["jobs.begin_cancel"]
    assert next(r.run_id for r in stack.backend.pipeline.list_runs("bank")) == first.run_id


def test_a_completed_run_reports_the_best_child_and_its_score(stack: AzureStack):
    run_id = stack.upload(sample_csv())
    stack.workspace.complete_run(run_id, score=0.917, algorithm="XGBoostClassifier")
    run = run_of(stack, run_id)
    assert run.state == "completed"
    assert run.result["best_child_run_id"] == f"{run_id}_automl_3"
    assert run.result["primary_metric"] == {"name": "accuracy", "value": 0.917}
    assert run.result["best_learner"] == "XGBoostClassifier"


def test_the_batch_endpoint_carrying_the_published_pipeline_is_invoked_when_configured(stack: AzureStack):
    from dataclasses import replace

    from shared.azure.dry_run import InMemoryRunMetrics
    from shared.azure.pipeline import AzureTrainingPipeline

    azure = replace(stack.azure, pipeline_endpoint="automl-classification")
    pipeline = AzureTrainingPipeline(stack.workspace, stack.store, stack.records, azure,
                                     InMemoryRunMetrics(stack.workspace))
    stack.upload(sample_csv())  # registers the dataset (and runs once through jobs)
    from shared.ports import TrainingRequest

    dataset = stack.backend.datasets.get("bank")
    assert dataset is not None
    run, created = pipeline.submit(TrainingRequest("bank", dataset, "y", "accuracy", 60), idempotency_key="x")
    call = stack.workspace.last("batch_endpoints.invoke")
    assert created and call["endpoint_name"] == "automl-classification" and call["job_name"] == run.run_id
    assert call["inputs"]["training_data"].type == "mltable"
    assert call["inputs"]["training_data"].path.endswith(f"/paths/runs/{run.run_id}/")


def test_registering_the_same_bytes_twice_creates_one_data_asset(stack: AzureStack):
    stack.upload(sample_csv(), etag='"a"')
    outcome_state = None
    from shared.ingest import Upload, ingest

    outcome_state = ingest(Upload("bank/again.csv", "u", sample_csv(), {}, '"b"'), stack.backend,
                           stack.settings).state
    assert outcome_state == "duplicate"
    assert stack.workspace.operations("data.") == ["data.create_or_update"]


def test_the_promote_function_hands_azure_events_to_the_core(stack: AzureStack, monkeypatch: pytest.MonkeyPatch):
    import azure.functions as func

    from functions import promote as module

    monkeypatch.setattr(module, "get_backend", lambda: stack.backend)
    monkeypatch.setenv("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "true")
    _, data = train(stack, 0.91, 1, '"a"')
    data["runTags"]["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    promote = declared_functions()["promote"]
    event = func.EventGridEvent(id="e1", data=data, topic="/subscriptions/s/resourceGroups/rg/providers/"
                                "Microsoft.MachineLearningServices/workspaces/mlw",
                                subject=f"experiments/x/runs/{data['runId']}", event_type=RUN_COMPLETED,
                                event_time=None, data_version="2")
    promote.get_user_function()(event)
    assert stack.queue.drain(stack.backend)[-1] == "done"
    assert traffic(stack) == {"blue": 100}
    assert upload_state(stack, '"a"')["state"] == "promoted"


def test_without_rollback_the_previous_deployment_is_deleted_after_the_swap(stack: AzureStack):
    from dataclasses import replace

    from shared.azure.deployment import AzureDeployer

    deployer = stack.backend.deployer
    assert isinstance(deployer, AzureDeployer)
    deployer.settings = replace(deployer.settings, keep_rollback=False)
    after(stack, RUN_COMPLETED, train(stack, 0.90, 1, '"a"')[1])
    decision, calls = after(stack, RUN_COMPLETED, train(stack, 0.93, 2, '"b"')[1])
    assert decision == "deployed"
    assert calls[-3:] == ["online_deployments.begin_delete", "models.create_or_update", "online_endpoints.invoke"]
    assert stack.workspace.last("online_deployments.begin_delete") == {"name": "blue", "endpoint_name": "bank-x7k2"}
    assert traffic(stack) == {"green": 100}
    assert set(stack.workspace.deployment_views) == {("bank-x7k2", "green")}


def test_one_deployment_per_model_at_a_time_and_an_expired_lease_is_taken_over(stack: AzureStack):
    import time

    from shared import deployment_flow
    from shared.deployment_flow import LEASE_WAIT_S, DeployMessage

    after(stack, RUN_COMPLETED, train(stack, 0.90, 1, '"a"')[1])
    run_b, event_b = train(stack, 0.93, 2, '"b"')
    run_c, event_c = train(stack, 0.95, 3, '"c"')
    assert handle_run_completed(RUN_COMPLETED, event_b, stack.backend).decision == "deploying"
    assert handle_run_completed(RUN_COMPLETED, event_c, stack.backend).decision == "deploying"
    # Run b's deployment is under way on another machine: its lease is live and its record not final.
    lease = {"run_id": run_b, "until": time.time() + 600}
    stack.records.records["deployment-leases/bank.json"] = (lease, '"lease"')
    stack.queue.messages.clear()
    assert deployment_flow.advance(stack.backend, DeployMessage(run_c, 0)) == \
        "waiting for another deployment of the model"
    assert stack.queue.messages == [(DeployMessage(run_c, 0).encode(), LEASE_WAIT_S, 0)]  # looks again later
    record_c = deployment_flow.status(stack.backend, run_c)
    assert record_c is not None and record_c.step == "endpoint"  # nothing done meanwhile
    # That machine died: its lease ran out. Run c takes it over and deploys.
    stack.records.records["deployment-leases/bank.json"] = ({**lease, "until": time.time() - 1}, '"lease"')
    assert stack.queue.drain(stack.backend)[-1] == "done"
    assert production_of(stack).run_id == run_c
    assert "deployment-leases/bank.json" not in stack.records.records  # released when done


def test_a_step_recorded_but_never_handed_over_is_handed_over_by_the_old_message(stack: AzureStack):
    """A crash between recording a step and queueing its message: the old message, back from the queue,
    queues the successor; once queued, older copies are dropped."""
    from shared import deployment_flow
    from shared.deployment_flow import DeployMessage

    run_id, event = train(stack, 0.91, 1, '"a"')
    handle_run_completed(RUN_COMPLETED, event, stack.backend)
    outcomes = []
    while "endpoint -> create" not in outcomes:  # the endpoint is created, then found ready
        first = stack.queue.messages.pop(0)[0]
        outcomes.append(deployment_flow.advance(stack.backend, DeployMessage.decode(first)))
    assert outcomes == ["polling", "endpoint -> create"]
    stack.queue.messages.clear()  # as if the process died before queueing the successor...
    path = f"deployments/{run_id}.json"
    body, etag = stack.records.records[path]
    stack.records.records[path] = ({**body, "sent": False}, etag)  # ...and before marking it queued
    assert deployment_flow.advance(stack.backend, DeployMessage.decode(first)) == "resent"
    assert [DeployMessage.decode(m).seq for m, _d, _t in stack.queue.messages] == [body["seq"]]
    assert deployment_flow.advance(stack.backend, DeployMessage.decode(first)) == "stale"  # now it is a copy
    assert stack.queue.drain(stack.backend)[-1] == "done"
    assert production_of(stack).run_id == run_id


def test_a_live_lease_is_never_handed_over_because_its_process_is_gone(stack: AzureStack):
    """Between two queue messages no process holds a deployment: a lease names its run, and only its expiry or
    the end of that run's deployment frees it, whatever became of the process that last renewed it."""
    import os
    import socket
    import subprocess
    import sys
    import time

    from shared import deployment_flow
    from shared.deployment_flow import DeployMessage

    after(stack, RUN_COMPLETED, train(stack, 0.90, 1, '"a"')[1])
    run_b, event_b = train(stack, 0.93, 2, '"b"')
    run_c, event_c = train(stack, 0.95, 3, '"c"')
    handle_run_completed(RUN_COMPLETED, event_b, stack.backend)
    handle_run_completed(RUN_COMPLETED, event_c, stack.backend)
    gone = subprocess.Popen([sys.executable, "-c", ""])  # a process of this machine that has certainly exited
    gone.wait()
    lease = {"run_id": run_b, "owner": f"{socket.gethostname()}:{gone.pid}", "until": time.time() + 600}
    assert gone.pid != os.getpid()
    stack.records.records["deployment-leases/bank.json"] = (lease, '"lease"')
    stack.queue.messages.clear()
    assert deployment_flow.advance(stack.backend, DeployMessage(run_c, 0)) == \
        "waiting for another deployment of the model"


def test_traffic_never_moves_to_a_colour_that_holds_another_version(stack: AzureStack):
    from shared import deployment_flow
    from shared.deployment_flow import DeployMessage

    after(stack, RUN_COMPLETED, train(stack, 0.90, 1, '"a"')[1])
    run_b, event_b = train(stack, 0.93, 2, '"b"')
    handle_run_completed(RUN_COMPLETED, event_b, stack.backend)
    while (record := deployment_flow.status(stack.backend, run_b)) is not None and record.step != "switch":
        deployment_flow.advance(stack.backend, DeployMessage.decode(stack.queue.messages.pop(0)[0]))
    assert record is not None and record.slot == "green"
    # Meanwhile green was redeployed with another version (another run's deployment on another instance).
    stack.workspace.deployment_views[("bank-x7k2", "green")].model = "azureml:bank:7"
    stack.queue.drain(stack.backend)
    record = deployment_flow.status(stack.backend, run_b)
    assert record is not None and record.step == "failed"
    assert "holds version 7, not version 2" in record.reason
    assert traffic(stack) == {"blue": 100}  # production untouched
    assert production_of(stack).version == "1"


def test_the_smoke_test_reads_mlflow_answers_as_scoring_does(stack: AzureStack):
    stack.workspace.invoke_answer = '{"predictions": ["no"]}'
    decision, _ = after(stack, RUN_COMPLETED, train(stack, 0.91, 1, '"a"')[1])
    assert decision == "deployed"
    stack.workspace.invoke_answer = '{"predictions": ["no", "yes"]}'  # two answers for one row: refused
    decision, _ = after(stack, RUN_COMPLETED, train(stack, 0.95, 2, '"b"')[1])
    assert decision == "refused"


def test_a_cancelled_azure_run_ends_its_upload_cancelled_with_one_event(stack: AzureStack, caplog):
    import logging

    from shared import pipelines

    caplog.set_level(logging.INFO, logger="pipeline.events")
    run_id = stack.upload(sample_csv(seed=1), etag='"a"')
    run = pipelines.cancel(stack.backend, run_id)
    assert run is not None and run.state == "cancelled"
    assert upload_state(stack, '"a"')["state"] == "cancelled"
    # The platform then reports the job as it ended: still cancelled, never failed, and not told twice.
    event = {**stack.workspace.complete_run(run_id, status="Canceled"), "runStatus": "Canceled"}
    assert handle_run_completed(RUN_STATUS_CHANGED, event, stack.backend).decision == "cancelled"
    assert upload_state(stack, '"a"')["state"] == "cancelled"
    told = [r for r in caplog.records if getattr(r, "microsoft.custom_event.name", "") == "RunCancelled"]
    assert len(told) == 1 and told[0].run_id == run_id


def test_a_redelivery_while_the_first_delivery_holds_the_run_fails_so_event_grid_retries(stack: AzureStack):
    from shared.errors import InProgress

    run_id, event = train(stack, 0.91, 1, '"a"')
    assert stack.backend.promotions.claim(run_id)  # the first delivery is still at work (a cold start, say)
    with pytest.raises(InProgress):  # a 2xx here would drop the event for good if that delivery then failed
        handle_run_completed(RUN_COMPLETED, event, stack.backend)
    stack.backend.promotions.release(run_id)  # ...and it failed, releasing the run
    decision, _ = after(stack, RUN_COMPLETED, event)  # Event Grid's retry finishes the work
    assert decision == "deployed" and upload_state(stack, '"a"')["state"] == "promoted"
    assert after(stack, RUN_COMPLETED, event) == ("duplicate", [])  # once done, a replay is a duplicate (2xx)
