"""The Azure backend through the real azure-ai-ml MLClient, against REST answers shaped as Azure publishes them.

Here the SDK's own serializers build every request and its deserializers read
every answer, so a wrong assumption about an entity's type or attribute fails
(the service itself is played by ``rest_workspace``; no machine here reaches
Azure). Each test names the published document its payloads follow; request
bodies are checked against the spec's schema (``spec_schemas``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from cli import sample_data
from shared import telemetry
from shared.azure import entities
from shared.promotion import RUN_COMPLETED, RUN_STATUS_CHANGED, handle_run_completed
from shared.run_events import APP_TAG, FILTER_KEY
from tests.azure.conftest import IDENTITY_ID, SdkStack, sample_csv
from tests.azure.spec_schemas import check

ENDPOINT = "bank-x7k2"


def pipeline_event(stack: SdkStack, run_id: str, **changes: Any) -> dict[str, Any]:
    """RunCompleted ``data`` for our pipeline job, per the Event Grid system event schema
    (specification/eventgrid/data-plane/EventGridSystemEvents/Microsoft.MachineLearningServices,
    MachineLearningServicesRunCompletedEventData): runType is null, as the published example shows."""
    job = stack.service.jobs[run_id]
    return {"experimentId": "0fa9dfaa-cba3-4fa7-b590-23e48548f5c1", "experimentName": "bank", "runId": run_id,
            "runType": None, "runTags": dict(job["properties"]["tags"]),
            "runProperties": {"azureml.runsource": "azureml.PipelineRun"}, **changes}


def run_event(stack: SdkStack, run_id: str) -> dict[str, Any]:
    """The RunCompleted data Azure ML would send for a run history run (node or trial)."""
    run = stack.service.runs[run_id]
    return {"experimentId": run["experimentId"], "experimentName": "bank", "runId": run_id,
            "runType": run["runType"], "runTags": dict(run["tags"]), "runProperties": dict(run["properties"])}


def trained(stack: SdkStack, seed: int = 1, etag: str = '"a"', score: float = 0.91, **finish: Any) -> str:
    run_id = stack.upload(sample_csv(seed=seed), etag=etag)
    stack.service.finish_pipeline(run_id, score=score, **finish)
    return run_id


def promoted(stack: SdkStack, seed: int, etag: str, score: float) -> str:
    run_id = trained(stack, seed, etag, score)
    assert handle_run_completed(RUN_COMPLETED, pipeline_event(stack, run_id), stack.backend).decision == "deploying"
    assert stack.deploy_until_done()[-1] == "done"
    return run_id


def traffic(stack: SdkStack) -> dict[str, int]:
    return dict(stack.service.endpoints[ENDPOINT]["properties"]["traffic"])


def test_data_asset_create_sends_a_uri_file_version_over_the_datastore(sdk_stack: SdkStack):
    """Workspace/DataVersionBase/createOrUpdate.json; DataVersionBaseResource."""
    sdk_stack.upload(sample_csv())
    [body] = sdk_stack.service.bodies("PUT data/{}/versions/{}")
    check("DataVersionBaseResource", body)
    properties = body["properties"]
    assert properties["dataType"] == "uri_file"
    assert properties["dataUri"].startswith("azureml://datastores/datasetversions/paths/bank/")
    assert properties["tags"]["app"] == APP_TAG and properties["tags"]["sequence"] == "1"
    again = sdk_stack.backend.datasets.get("bank")
    assert again is not None and again.version == 1 and again.rows == 200  # read back through the SDK


def test_pipeline_job_create_has_one_automl_node_carrying_our_marks(sdk_stack: SdkStack):
    """Job/PipelineJob/createOrUpdate.json; JobBaseResource with jobType Pipeline."""
    run_id = sdk_stack.upload(sample_csv(), metadata={"metric": "AUC_weighted"})
    [body] = sdk_stack.service.bodies("PUT jobs/{}")
    check("JobBaseResource/PipelineJob", body)
    properties = body["properties"]
    assert properties["jobType"] == "Pipeline" and properties["experimentName"] == "bank"
    assert properties["tags"]["app"] == APP_TAG and properties["tags"]["pipeline_job"] == run_id
    assert properties["inputs"]["training_data"] == {
        "uri": f"azureml://datastores/datasetversions/paths/runs/{run_id}/", "jobInputType": "mltable"}
    [(name, node)] = properties["jobs"].items()
    assert name == node["name"] == entities.AUTOML_NODE
    # The SDK writes the node's metric in its own snake case; the service maps it back.
    assert (node["type"], node["task"], node["primary_metric"]) == ("automl", "classification", "auc_weighted")
    assert node["tags"]["node"] == entities.AUTOML_NODE and node["tags"]["pipeline_job"] == run_id
    assert node["limits"]["timeout_minutes"] >= 15  # AutoML's minimum experiment timeout


def test_a_numeric_target_submits_an_automl_regression_node_with_its_default_metric(sdk_stack: SdkStack):
    """Job/PipelineJob/createOrUpdate.json with the AutoML node of a regression (the SDK's RegressionJob)."""
    run_id = sdk_stack.upload(sample_data.to_csv(sample_data.home_rows(200)), path="homes/jan.csv",
                              metadata={"target": "price"})
    [body] = sdk_stack.service.bodies("PUT jobs/{}")
    check("JobBaseResource/PipelineJob", body)
    [(_, node)] = body["properties"]["jobs"].items()
    assert (node["type"], node["task"], node["target_column_name"]) == ("automl", "regression", "price")
    assert node["primary_metric"] == "normalized_root_mean_squared_error"
    assert body["properties"]["tags"]["metric"] == "normalized_root_mean_squared_error"
    [schema] = [v["properties"]["properties"]["schema"] for v in sdk_stack.service.bodies("PUT data/{}/versions/{}")]
    assert '"task":"regression"' in schema  # the dataset version records how its target was read
    assert body["properties"]["tags"]["pipeline_job"] == run_id


def test_children_come_back_as_base_jobs_and_the_automl_node_is_still_found(sdk_stack: SdkStack):
    """Run history children (runhistory Run / PaginatedRunList): the SDK types every child 'base'."""
    run_id = trained(sdk_stack)
    children = list(sdk_stack.ml.jobs.list(parent_job_name=run_id))
    assert [c.type for c in children] == ["base"]  # a check on type == "automl" never matches
    node = sdk_stack.backend.pipeline.automl_node(run_id)  # type: ignore[attr-defined]
    assert node is not None and node.name == f"{run_id}_automl_0"


def test_the_node_is_found_by_its_name_when_the_service_drops_its_tags(sdk_stack: SdkStack):
    run_id = trained(sdk_stack, node_tags=False)
    node = sdk_stack.backend.pipeline.automl_node(run_id)  # type: ignore[attr-defined]
    assert node is not None and node.display_name == entities.AUTOML_NODE


def test_best_child_lookup_reads_score_and_algorithm_through_run_history(sdk_stack: SdkStack):
    """jobs/{best} answers properties:null for a pipeline child, so the SDK reads the run from run history."""
    run_id = trained(sdk_stack, score=0.917, algorithm="XGBoostClassifier")
    run = sdk_stack.backend.pipeline.get_run(run_id)
    assert run is not None and run.state == "completed"
    assert run.result["best_child_run_id"] == f"AutoML_{run_id[-8:]}_3"
    assert run.result["primary_metric"] == {"name": "accuracy", "value": 0.917}
    assert run.result["best_learner"] == "XGBoostClassifier"
    assert any(s.operation == "GET history/runs/{}" for s in sdk_stack.service.sent)


def test_the_pipeline_run_completed_event_registers_from_the_job_output_and_only_enqueues(sdk_stack: SdkStack):
    """RunCompleted (Event Grid schema) -> Workspace/ModelVersion/createOrUpdate.json; ModelVersionResource."""
    run_id = trained(sdk_stack)
    before = len(sdk_stack.service.sent)
    outcome = handle_run_completed(RUN_COMPLETED, pipeline_event(sdk_stack, run_id), sdk_stack.backend)
    assert outcome.decision == "deploying"
    writes = [s.operation for s in sdk_stack.service.sent[before:] if s.method != "GET"]
    # Registered and tagged; nothing long-running inside the Event Grid call: the queue has the deployment.
    assert writes == ["PUT models/{}/versions/{}", "PUT models/{}/versions/{}"]
    assert len(sdk_stack.queue.messages) == 1
    register = sdk_stack.service.bodies("PUT models/{}/versions/{}")[0]
    check("ModelVersionResource", register)
    assert register["properties"]["modelType"] == "mlflow_model"
    assert register["properties"]["modelUri"] == (
        f"azureml://jobs/AutoML_{run_id[-8:]}_3/outputs/artifacts/{entities.MLFLOW_MODEL_OUTPUT}/")
    assert register["properties"]["tags"]["pipeline_run_id"] == run_id


@pytest.mark.parametrize("casing", ["camelCase", "PascalCase"])
def test_both_casings_of_the_event_data_are_read(sdk_stack: SdkStack, casing: str):
    """The schema names the fields in camelCase; the published docs example shows them in PascalCase."""
    run_id = trained(sdk_stack)
    data = pipeline_event(sdk_stack, run_id)
    if casing == "PascalCase":
        data = {key[0].upper() + key[1:]: value for key, value in data.items()}
    assert handle_run_completed(RUN_COMPLETED, data, sdk_stack.backend).decision == "deploying"


def test_the_automl_node_event_counts_and_the_later_pipeline_event_is_a_duplicate(sdk_stack: SdkStack):
    run_id = trained(sdk_stack)
    node = run_event(sdk_stack, f"{run_id}_automl_0")
    assert handle_run_completed(RUN_COMPLETED, node, sdk_stack.backend).decision == "deploying"
    assert handle_run_completed(RUN_COMPLETED, pipeline_event(sdk_stack, run_id), sdk_stack.backend
                                ).decision == "duplicate"


def test_trials_foreign_runs_and_status_changes_are_ignored_and_reported(sdk_stack: SdkStack,
                                                                         monkeypatch: pytest.MonkeyPatch):
    events: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(telemetry, "event", lambda name, **props: events.append((name, props)))
    run_id = trained(sdk_stack)
    trial = {**run_event(sdk_stack, f"AutoML_{run_id[-8:]}_2"), "runTags": {"app": APP_TAG}}  # even if tagged
    foreign = {"experimentId": "e", "experimentName": "other", "runId": "someone-elses", "runType": "automl",
               "runTags": {}, "runProperties": {}}
    running = {**pipeline_event(sdk_stack, run_id), "runStatus": "Running"}
    before = len(sdk_stack.service.sent)
    for event_type, data in ((RUN_COMPLETED, trial), (RUN_COMPLETED, foreign), (RUN_STATUS_CHANGED, running)):
        assert handle_run_completed(event_type, data, sdk_stack.backend).decision == "ignored"
    assert [s.method for s in sdk_stack.service.sent[before:] if s.method != "GET"] == []
    ignored = [props for name, props in events if name == "RunEventIgnored"]
    assert [p["run_id"] for p in ignored] == [trial["runId"], "someone-elses", run_id]
    assert ignored[1]["run_type"] == "automl" and ignored[1]["run_tags"] == "{}"
    assert "does not carry the tag" in ignored[1]["reason"]


def test_a_failed_pipeline_marks_the_upload_and_registers_nothing(sdk_stack: SdkStack):
    run_id = trained(sdk_stack, status="Failed")
    sdk_stack.service.jobs[run_id]["properties"]["status"] = "Failed"
    data = {**pipeline_event(sdk_stack, run_id), "runStatus": "Failed"}
    outcome = handle_run_completed(RUN_STATUS_CHANGED, data, sdk_stack.backend)
    assert outcome.decision == "failed" and "no trial finished" in outcome.detail["reason"]
    assert sdk_stack.service.models == {}
    record = sdk_stack.backend.uploads.get('bank/jan.csv@"a"')
    assert record is not None and record["state"] == "failed"


def test_deployment_steps_create_poll_smoke_test_and_switch_through_the_sdk(sdk_stack: SdkStack):
    """Workspace/OnlineEndpoint/createOrUpdate.json, OnlineDeployment/ManagedOnlineDeployment/createOrUpdate.json,
    get.json (provisioningState), the scoring URI, and the traffic update."""
    run_id = trained(sdk_stack)
    handle_run_completed(RUN_COMPLETED, pipeline_event(sdk_stack, run_id), sdk_stack.backend)
    service = sdk_stack.service
    assert sdk_stack.run_until_waiting() == ["polling"]  # endpoint created, still Creating
    assert sdk_stack.run_until_waiting() == ["polling"]  # looked again: no second create
    assert service.writes().count("PUT onlineEndpoints/{}") == 1
    create = service.bodies("PUT onlineEndpoints/{}")[0]
    check("OnlineEndpointTrackedResource", create)
    assert create["properties"]["authMode"] == "AADToken" and create["properties"]["traffic"] == {}
    assert create["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY_ID: {}}}
    service.provision_all()
    assert sdk_stack.run_until_waiting() == ["endpoint -> create", "create -> wait", "polling"]  # blue Creating
    [deployment] = service.bodies("PUT onlineEndpoints/{}/deployments/{}")
    check("OnlineDeploymentTrackedResource/ManagedOnlineDeployment", deployment)
    assert deployment["properties"]["endpointComputeType"] == "Managed"
    assert deployment["properties"]["model"].endswith("/models/bank/versions/1")
    assert deployment["properties"]["appInsightsEnabled"] is False  # no instrumentation key telemetry
    # The app's scoring script (probabilities), found again by its content hash, in the curated environment the
    # AutoML run named: the SDK passes the curated short form on for the service to expand.
    assert deployment["properties"]["environmentId"] == "azureml:AzureML-ai-ml-automl:7"
    code = deployment["properties"]["codeConfiguration"]
    assert code["scoringScript"] == "score.py" and re.search(r"/workspaces/[^/]+/codes/[^/]+/versions/1$",
                                                             code["codeId"])
    assert not [s for s in service.sent if "startPendingUpload" in s.path]  # stored already: no upload
    assert traffic(sdk_stack) == {}  # no traffic while it is not tested
    service.provision_all()
    assert sdk_stack.run_until_waiting() == ["wait -> smoke", "smoke -> switch", "polling"]  # traffic sent
    [smoke] = [s for s in service.sent if s.operation == "POST score/{}"]
    assert smoke.headers["azureml-model-deployment"] == "blue"
    assert len(smoke.body["input_data"]["data"]) == 1
    switch = service.bodies("PUT onlineEndpoints/{}")[-1]
    check("OnlineEndpointTrackedResource", switch)
    assert switch["properties"]["traffic"] == {"blue": 100}
    service.provision_all()
    assert sdk_stack.run_until_waiting() == ["switch -> cleanup", "done"]
    production = sdk_stack.backend.deployer.production("bank")
    assert production is not None and production.version == "1"
    record = sdk_stack.backend.uploads.get('bank/jan.csv@"a"')
    assert record is not None and record["state"] == "promoted"


def test_the_scoring_script_is_uploaded_once_where_the_service_says_then_registered(sdk_stack: SdkStack,
                                                                                   blob_service: Any):
    """The first deployment of the script: the SDK asks for an upload location (PendingUploadResponseDto of the
    spec's startPendingUpload), writes the folder there with the SAS it got (a real blob service: Azurite), then
    registers the Code version over it (Workspace/CodeVersion/createOrUpdate.json)."""
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    container = blob_service.create_container("code-uploads")
    sas = generate_container_sas(blob_service.account_name, "code-uploads",
                                 account_key=blob_service.credential.account_key,
                                 permission=ContainerSasPermissions(read=True, write=True, create=True, list=True),
                                 expiry=datetime.now(UTC) + timedelta(hours=1))
    service = sdk_stack.service
    service.code_stored, service.upload_sas = False, f"{container.url}?{sas}"
    promoted(sdk_stack, 1, '"a"', 0.91)
    uploaded = {b.name.rsplit("/", 1)[-1]: container.download_blob(b.name).readall() for b in container.list_blobs()}
    # The whole folder: the online script, and the batch script that imports it.
    assert uploaded == {name: (entities.SCORING_CODE / name).read_bytes()
                        for name in (entities.SCORING_SCRIPT, entities.BATCH_SCORING_SCRIPT)}
    [code] = service.bodies("PUT codes/{}/versions/{}")
    assert code["properties"]["codeUri"].startswith(container.url)
    [deployment] = service.bodies("PUT onlineEndpoints/{}/deployments/{}")
    assert deployment["properties"]["codeConfiguration"]["codeId"].endswith(
        f"/codes/{service.codes and next(iter(service.codes))[0]}/versions/{next(iter(service.codes))[1]}")


def test_a_better_model_goes_to_the_idle_colour_and_takes_all_traffic_in_one_update(sdk_stack: SdkStack):
    promoted(sdk_stack, 1, '"a"', 0.90)
    promoted(sdk_stack, 2, '"b"', 0.95)
    # The SDK strips 0% entries from the request: the kept colour is simply not named, and takes nothing.
    assert traffic(sdk_stack) == {"green": 100}
    switches = [b["properties"]["traffic"] for b in sdk_stack.service.bodies("PUT onlineEndpoints/{}")]
    assert switches == [{}, {"blue": 100}, {"green": 100}]  # never two live colours
    versions = {name: d["properties"]["model"].rsplit("/", 1)[-1]
                for (_e, name), d in sdk_stack.service.deployments.items()}
    assert versions == {"blue": "1", "green": "2"}


def test_a_deployment_that_ends_failed_leaves_production_serving(sdk_stack: SdkStack):
    promoted(sdk_stack, 1, '"a"', 0.90)
    run_id = trained(sdk_stack, 2, '"b"', 0.95)
    handle_run_completed(RUN_COMPLETED, pipeline_event(sdk_stack, run_id), sdk_stack.backend)
    assert sdk_stack.run_until_waiting()[-1] == "polling"  # green Creating
    sdk_stack.service.provision_all("Failed")
    assert sdk_stack.run_until_waiting() == ["failed"]
    assert traffic(sdk_stack) == {"blue": 100}
    record = sdk_stack.backend.uploads.get('bank/jan.csv@"b"')
    assert record is not None and record["state"] == "failed" and "ended failed" in record["reason"]


def test_cancel_posts_to_the_job(sdk_stack: SdkStack):
    """Job/cancel.json."""
    run_id = sdk_stack.upload(sample_csv())
    cancelled = sdk_stack.backend.pipeline.cancel(run_id)
    assert cancelled is not None and cancelled.state == "cancelled"
    assert "POST jobs/{}/cancel" in sdk_stack.service.writes()
    assert sdk_stack.service.jobs[run_id]["properties"]["status"] == "CancelRequested"


def test_the_event_grid_filter_and_the_handler_read_one_definition():
    from pathlib import Path

    bicep = (Path(__file__).resolve().parents[2] / "infra" / "events.bicep").read_text()
    assert "loadJsonContent('../shared/run_events.json')" in bicep
    assert "routing.filterKey" in bicep and "routing.tagValue" in bicep
    assert "data.runType" not in bicep  # the service leaves it null for many run kinds
    assert FILTER_KEY == "data.runTags.app"


def test_traffic_moves_only_once_the_endpoint_is_idle(sdk_stack: SdkStack):
    """A traffic update sent while the endpoint applies another change is refused (409) by the service."""
    run_id = trained(sdk_stack)
    handle_run_completed(RUN_COMPLETED, pipeline_event(sdk_stack, run_id), sdk_stack.backend)
    for _ in range(2):  # the endpoint, then blue, each provisioned by Azure in between
        sdk_stack.run_until_waiting()
        sdk_stack.service.provision_all()
    sdk_stack.service.endpoints[ENDPOINT]["properties"]["provisioningState"] = "Updating"
    puts = sdk_stack.service.writes().count("PUT onlineEndpoints/{}")
    assert sdk_stack.run_until_waiting() == ["wait -> smoke", "smoke -> switch", "polling"]  # switch waits
    assert sdk_stack.service.writes().count("PUT onlineEndpoints/{}") == puts
    sdk_stack.service.provision_all()
    assert sdk_stack.deploy_until_done()[-1] == "done"
    assert traffic(sdk_stack) == {"blue": 100}


@pytest.mark.parametrize("status", [424, 500])
def test_a_smoke_test_answered_with_an_error_refuses_the_model_at_once(sdk_stack: SdkStack, status: int):
    """An online endpoint's scoring route answering an error (the managed endpoint's 424 "model's scoring
    failed", or 500) raises HttpResponseError from ``online_endpoints.invoke``: the model cannot answer its
    example row, so it is refused at once instead of burning the queue's tries and ending "failed"."""
    run_id = trained(sdk_stack)
    handle_run_completed(RUN_COMPLETED, pipeline_event(sdk_stack, run_id), sdk_stack.backend)
    sdk_stack.service.scoring_status = status
    sdk_stack.service.scoring_answer = '{"message": "An unexpected error occurred in scoring script."}'
    outcomes = sdk_stack.deploy_until_done()
    assert outcomes[-1] == "refused" and not [o for o in outcomes if o.startswith("error")], outcomes
    record = sdk_stack.backend.uploads.get('bank/jan.csv@"a"')
    assert record is not None and record["state"] == "not_promoted"
    assert f"HTTP {status}" in record["reason"] and "scoring script" in record["reason"]
    assert traffic(sdk_stack) == {}


def test_a_smoke_test_the_endpoint_is_too_busy_for_is_tried_again_later(sdk_stack: SdkStack):
    """429: the endpoint throttles; the step fails, so the queue delivers it again after host.json's
    visibility timeout (30 s), and the model is not judged on it."""
    from azure.core.exceptions import HttpResponseError

    from shared import deployment_flow
    from shared.deployment_flow import DeployMessage

    run_id = trained(sdk_stack)
    handle_run_completed(RUN_COMPLETED, pipeline_event(sdk_stack, run_id), sdk_stack.backend)
    sdk_stack.service.scoring_status = 429
    sdk_stack.service.scoring_answer = '{"message": "Too many requests"}'
    while (record := deployment_flow.status(sdk_stack.backend, run_id)) is not None and record.step != "smoke":
        sdk_stack.service.provision_all()
        deployment_flow.advance(sdk_stack.backend, DeployMessage.decode(sdk_stack.queue.messages.pop(0)[0]))
    with pytest.raises(HttpResponseError):
        deployment_flow.advance(sdk_stack.backend, DeployMessage.decode(sdk_stack.queue.messages[0][0]))
    record = deployment_flow.status(sdk_stack.backend, run_id)
    assert record is not None and record.step == "smoke"


def test_failed_queue_messages_wait_before_their_next_try_in_azure():
    import json
    from pathlib import Path

    host = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text())
    assert host["extensions"]["queues"]["visibilityTimeout"] == "00:00:30"


def test_the_primary_metric_is_read_from_the_workspace_mlflow_tracking_server(sdk_stack: SdkStack):
    """MLflow REST ``GET api/2.0/mlflow/runs/get`` under the workspace's mlFlowTrackingUri (azureml-examples:
    sdk/python/using-mlflow/using-rest-api/using_mlflow_rest_api.ipynb), with an Azure Resource Manager token;
    the answer is MLflow's own GetRun.Response (mlflow/protos/service.proto)."""
    import json as json_module

    import jwt
    from google.protobuf import json_format
    from mlflow.protos.service_pb2 import GetRun

    run_id = trained(sdk_stack, score=0.917)
    run = sdk_stack.backend.pipeline.get_run(run_id)
    assert run is not None and run.result["primary_metric"] == {"name": "accuracy", "value": 0.917}
    [read] = [s for s in sdk_stack.service.sent if s.path.endswith("/api/2.0/mlflow/runs/get")]
    assert read.path.startswith("/mlflow/v1.0/subscriptions/") and read.query == f"run_id=AutoML_{run_id[-8:]}_3"
    token = read.headers["authorization"].removeprefix("Bearer ")
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == "https://management.azure.com"
    status, answer, _ = sdk_stack.service._mlflow_run(None)
    parsed = json_format.Parse(json_module.dumps(answer), GetRun.Response())  # the published message, exactly
    assert status == 200 and {m.key for m in parsed.run.data.metrics} == {"accuracy", "log_loss"}


def test_the_best_child_is_registered_from_the_node_tag_even_when_its_lookup_fails(sdk_stack: SdkStack):
    run_id = trained(sdk_stack)
    best = f"AutoML_{run_id[-8:]}_3"
    del sdk_stack.service.runs[best]  # run history answers 404 for it
    assert handle_run_completed(RUN_COMPLETED, pipeline_event(sdk_stack, run_id), sdk_stack.backend
                                ).decision == "deploying"
    [model] = [b for b in sdk_stack.service.bodies("PUT models/{}/versions/{}")][:1]
    assert model["properties"]["tags"]["best_child_run_id"] == best
    assert best in model["properties"]["modelUri"]


def scored_rows(stack: SdkStack, color: str, since: int = 0) -> list[list[Any]]:
    """The rows each scoring call to ``color`` carried (from request ``since`` on), the smoke test's row left out."""
    return [row for s in stack.service.sent[since:] if s.operation == "POST score/{}"
            and s.headers.get("azureml-model-deployment") == color and len(s.body["input_data"]["data"]) > 1
            for row in s.body["input_data"]["data"]]


def test_a_worse_model_loses_on_the_same_held_out_rows_and_nothing_of_it_keeps_running(sdk_stack: SdkStack):
    """The challenger is deployed beside production with no traffic; both answer the rows ingest held out of
    training (through the scoring URI, ManagedOnlineDeployment/createOrUpdate.json's deployment); it loses, its
    deployment is deleted (DELETE of the deployment, an ARM long-running operation) and traffic never moves."""
    promoted(sdk_stack, 1, '"a"', 0.95)
    since = len(sdk_stack.service.sent)
    run_id = trained(sdk_stack, seed=2, etag='"b"', score=0.70)
    outcome = handle_run_completed(RUN_COMPLETED, pipeline_event(sdk_stack, run_id), sdk_stack.backend)
    assert outcome.decision == "deploying" and outcome.detail["compare_with"] == "1"
    assert sdk_stack.deploy_until_done()[-1] == "rejected"
    blue, green = scored_rows(sdk_stack, "blue", since), scored_rows(sdk_stack, "green", since)
    assert blue and green[:len(blue)] == blue  # the same rows, in the same order, for both models
    assert green[len(blue):] == blue  # and once more for the run report, before the deployment is deleted
    assert sdk_stack.service.writes().count("DELETE onlineEndpoints/{}/deployments/{}") == 1
    assert ("bank-x7k2", "green") not in sdk_stack.service.deployments and traffic(sdk_stack) == {"blue": 100}
    record = sdk_stack.backend.uploads.get('bank/jan.csv@"b"')
    assert record is not None and record["state"] == "not_promoted"
    assert "does not beat production v1" in record["reason"]
    assert f"on the same {len(blue)} rows of dataset bank v2 held out of training" in record["reason"]
    decision = record["details"]["decision"]
    assert decision["compared_rows"] == len(blue) and decision["champion"] > decision["challenger"]


def test_the_run_report_of_a_rejected_model_shows_its_held_out_answers_before_its_deployment_goes(
        sdk_stack: SdkStack):
    """The report is the local page from Azure's sources: the gate's numbers, the model's answers on the held-out
    rows (asked of its deployment before it is deleted), AutoML's trials with the metric each logged (run history
    children, MLflow ``runs/get`` per trial) and the best trial's logged metrics."""
    from shared.azure.reports import report_path

    promoted(sdk_stack, 1, '"a"', 0.95)
    run_id = trained(sdk_stack, seed=2, etag='"b"', score=0.70)
    handle_run_completed(RUN_COMPLETED, pipeline_event(sdk_stack, run_id), sdk_stack.backend)
    assert sdk_stack.deploy_until_done()[-1] == "rejected"
    page = sdk_stack.backend.reports.html(run_id)
    assert page is not None and report_path(run_id) in sdk_stack.service.store.blobs
    assert "does not beat production v1" in page and "held out of training" in page
    assert "ROC curve" in page and "Confusion matrix" in page and "<svg" in page
    assert "LightGBM" in page and "4 trials" in page  # the leaderboard: AutoML's trials with their logged metric
    assert "Logged metrics of the best trial" in page and "log_loss" in page
    assert "https://ml.azure.com/runs/" in page
    from tests.browser import chromium

    with chromium() as browser:  # as a person sees it
        tab = browser.new_page()
        tab.set_content(page)
        text = tab.inner_text("body")
        assert tab.locator("svg").count() >= 5  # four charts of the held-out answers and the leaderboard
    assert text.startswith("bank v2 · run ") and "Rejected: accuracy" in text
    assert "rows held out of training" in text and "LightGBM" in text and "Data guardrails" in text
    # The report asked the challenger's deployment (green) before it was deleted: nothing of it keeps running.
    green = [s for s in sdk_stack.service.sent if s.headers.get("azureml-model-deployment") == "green"]
    deleted = [i for i, s in enumerate(sdk_stack.service.sent) if s.method == "DELETE"]
    assert green and deleted and max(sdk_stack.service.sent.index(s) for s in green) < deleted[-1]


def test_a_better_model_wins_on_the_same_rows_and_neither_trained_on_them(sdk_stack: SdkStack):
    promoted(sdk_stack, 1, '"a"', 0.70)
    run_id = promoted(sdk_stack, 2, '"b"', 0.97)
    assert traffic(sdk_stack)["green"] == 100 and not traffic(sdk_stack).get("blue")
    decision = sdk_stack.backend.promotions.decision(run_id)
    assert decision is not None and decision["decision"] == "deployed"
    assert decision["challenger"] > decision["champion"] and "held out of training" in decision["reason"]
    page = sdk_stack.backend.reports.html(run_id)
    assert page is not None and "Deployed" in page and "Calibration" in page  # answered by the live deployment
    # Training reads train.csv, which shares no row with holdout.csv; together they are the dataset version.
    blobs = sdk_stack.service.store.blobs
    folder = next(p.rsplit("/", 1)[0] for p in blobs if p.endswith("/holdout.csv") and "/" in p)
    train, held, whole = (blobs[f"{folder}/{f}"].decode().splitlines() for f in ("train.csv", "holdout.csv",
                                                                                  "data.csv"))
    assert not set(train[1:]) & set(held[1:]) and sorted(train[1:] + held[1:]) == sorted(whole[1:])
    [table] = [b for p, b in blobs.items() if p.endswith("MLTable")][-1:]
    assert b"/train.csv" in table


def test_an_unreachable_tracking_server_is_metrics_unavailable_not_a_crash(sdk_stack: SdkStack):
    from azure.core.exceptions import ServiceRequestError

    from shared.azure.run_metrics import MlflowRunMetrics, RunMetricsUnavailable
    from tests.azure.rest_workspace import FakeCredential, RestTransport

    class Offline(RestTransport):
        def send(self, request: Any, **kwargs: Any) -> Any:
            raise ServiceRequestError("Name or service not known")

        def sleep(self, duration: float) -> None:
            return None  # the retry policy's back-off

    metrics = MlflowRunMetrics(sdk_stack.ml, FakeCredential(), transport=Offline(sdk_stack.service))
    with pytest.raises(RunMetricsUnavailable, match="ServiceRequestError"):
        metrics.of("AutoML_x_3")
