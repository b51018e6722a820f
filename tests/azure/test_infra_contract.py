"""infra/ and the code agree: every setting the Azure backend reads is set, every container and function
an event points at exists, and nothing secret sits in app settings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shared.azure import config, entities
from tests.azure.conftest import declared_functions

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def app_settings() -> dict[str, str]:
    text = (INFRA / "modules" / "functionapp.bicep").read_text()
    return dict(re.findall(r"\{ name: '([^']+)', value: ([^}]+?) \}", text))


def test_every_setting_the_azure_backend_requires_is_set_by_infra():
    source = Path(config.__file__).read_text()
    required = set(re.findall(r'_required\("([A-Z_]+)"\)', source))
    assert required == {"AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE"}
    settings = app_settings()
    assert required <= settings.keys()
    assert settings["PIPELINE_BACKEND"] == "'azure'"
    for optional in ("AZUREML_COMPUTE", "AZUREML_DATASTORE", "DATASET_VERSIONS_CONTAINER", "STATE_CONTAINER",
                     "ENDPOINT_SUFFIX", "ENDPOINT_AUTH_MODE"):
        assert optional in settings and optional in source


def test_storage_is_identity_based_and_no_setting_holds_a_secret():
    settings = app_settings()
    assert settings["AzureWebJobsStorage__credential"] == "'managedidentity'"
    assert "AzureWebJobsStorage" not in settings  # no connection string
    assert settings["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "'true'"
    for name, value in settings.items():
        assert not re.search(r"(?i)accountkey|sharedaccesssignature|password|listkeys", name + value), name
    storage = (INFRA / "modules" / "storage.bicep").read_text()
    assert "allowSharedKeyAccess: false" in storage and "allowBlobPublicAccess: false" in storage


def test_containers_match_what_the_code_uses():
    resources = (INFRA / "modules" / "resources.bicep").read_text()
    containers = set(re.findall(r"^  '([a-z-]+)'$", resources, re.MULTILINE))
    example = config.AzureSettings.example()
    assert {"datasets", "scoring-input", "scoring-output", example.versions_container,
            example.state_container} <= containers
    ml = (INFRA / "modules" / "ml.bicep").read_text()
    assert f"containerName: '{example.versions_container}'" in ml
    assert f"name: '{example.datastore}'" in ml and f"name: '{example.compute}'" in ml


def test_batch_scoring_has_its_queues_containers_and_datastores():
    from shared.batch_flow import BATCH_QUEUE

    resources = (INFRA / "modules" / "resources.bicep").read_text()
    ml = (INFRA / "modules" / "ml.bicep").read_text()
    example = config.AzureSettings.example()
    assert f"'{BATCH_QUEUE}'" in resources and f"'{BATCH_QUEUE}-poison'" in resources
    assert f"  '{example.batch_output_container}'\n" in resources
    for name, container in ((example.batch_input_datastore, "scoring-input"),
                            (example.batch_output_datastore, example.batch_output_container)):
        block = re.search(rf"name: '{name}'\n  properties: \{{(.*?)\n  \}}", ml, re.DOTALL)
        assert block and f"containerName: '{container}'" in block.group(1)
        assert "credentialsType: 'None'" in block.group(1)  # by identity, as every datastore of the app
    settings = app_settings()
    assert settings["BATCH_OUTPUT_CONTAINER"] == f"'{example.batch_output_container}'"
    assert settings["BATCH_INPUT_DATASTORE"] == "batchInputDatastoreName"
    assert settings["BATCH_OUTPUT_DATASTORE"] == "batchOutputDatastoreName"
    functions = set(declared_functions())
    assert {"batch_score", "batch_job", "batch_job_poisoned"} <= functions


def test_event_subscriptions_point_at_functions_that_exist():
    events = (INFRA / "events.bicep").read_text()
    targets = set(re.findall(r"functionName=Host\.Functions\.(\w+)", events))
    targets |= set(re.findall(r"/functions/(\w+)'", events))
    declared = set(declared_functions())
    assert targets == {"ingest", "batch_score", "promote"} and targets <= declared
    assert "routing.eventTypes.completed" in events and "routing.eventTypes.statusChanged" in events
    assert "subjectBeginsWith: '/blobServices/default/containers/datasets/blobs/'" in events
    # Complete writes only, server-side copies included (azcopy, Storage Explorer): the data.api values of
    # Microsoft.Storage.BlobCreated. The account has no hierarchical namespace, so CopyBlob's event comes when the
    # copy is done. The blob trigger reads the blob the event names, whatever wrote it.
    values = re.search(r"var completeWrites = \{.*?values: \[([^\]]*)\]", events, re.DOTALL)
    assert values and set(re.findall(r"'(\w+)'", values.group(1))) == {
        "PutBlob", "PutBlockList", "FlushWithClose", "CopyBlob"}
    assert "isHnsEnabled" not in (INFRA / "modules" / "storage.bicep").read_text()
    assert entities.APP_TAG == "csv-to-endpoint"


def test_azd_wires_the_hook_and_the_outputs_it_reads():
    azure_yaml = (ROOT / "azure.yaml").read_text()
    assert "run: infra/hooks/postdeploy.sh" in azure_yaml and "host: function" in azure_yaml
    hook = (INFRA / "hooks" / "postdeploy.sh").read_text()
    outputs = set(re.findall(r"^output (\w+) ", (INFRA / "main.bicep").read_text(), re.MULTILINE))
    # azd keeps the subscription and the resource group in every environment; the rest are main.bicep's outputs.
    used = set(re.findall(r"\$\{?([A-Z][A-Z_]+)", hook)) - {"AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP"}
    assert used <= outputs, used - outputs


def test_the_function_app_imports_without_the_local_ml_engine():
    """What requirements.txt installs in Azure must be enough: no local engine module is imported."""
    env = {**os.environ, "PIPELINE_BACKEND": "azure", "AZURE_SUBSCRIPTION_ID": "0" * 8, "AZURE_RESOURCE_GROUP": "rg",
           "AZUREML_WORKSPACE": "mlw", "AzureWebJobsStorage": "",
           "AzureWebJobsStorage__blobServiceUri": "https://acct.blob.core.windows.net/"}
    code = ("import sys, function_app; from shared.backend import get_backend; get_backend(); "
            "print(','.join(m for m in ('onnxruntime', 'mlflow', 'flaml', 'lightgbm', 'sklearn', 'uvicorn', "
            "'devhost') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == ""
    local_only = (ROOT / "requirements-local.txt").read_text()
    azure = (ROOT / "requirements.txt").read_text()
    for package in ("flaml", "lightgbm", "mlflow", "onnxruntime", "uvicorn"):
        assert package in local_only and package not in azure


def test_the_deployment_queues_exist_and_the_app_may_use_them():
    from shared.deployment_flow import DEPLOYMENTS_QUEUE

    resources = (INFRA / "modules" / "resources.bicep").read_text()
    assert f"'{DEPLOYMENTS_QUEUE}'" in resources and f"'{DEPLOYMENTS_QUEUE}-poison'" in resources
    roles = (INFRA / "modules" / "roles.bicep").read_text()
    assert "queueDataContributor" in roles
    app = (INFRA / "modules" / "functionapp.bicep").read_text()
    assert "AzureWebJobsStorage__queueServiceUri" in app  # the queue trigger's identity-based connection
    declared = declared_functions()
    assert {"deploy", "deploy_poisoned"} <= set(declared)


# --- Bicep read as text: resources, their API versions and the property names they set ---------------------------

def bicep_resources(path: Path) -> dict[str, tuple[str, str]]:
    """Symbolic name -> (type@version, body) of every resource declared in one .bicep file."""
    found = {}
    lines = path.read_text().splitlines()
    for index, line in enumerate(lines):
        head = re.match(r"resource (\w+) '([^']+)'", line)
        if head:
            end = next(i for i in range(index, len(lines)) if lines[i] in ("}", "}]") or
                       (i == index and line.endswith("}")))
            found[head.group(1)] = (head.group(2), "\n".join(lines[index:end + 1]))
    return found


def property_names(body: str) -> set[str]:
    """The keys directly under a resource's ``properties: {`` block (two-space indentation, as written here)."""
    lines = body.splitlines()
    start = lines.index("  properties: {")
    names = set()
    for line in lines[start + 1:]:
        if line == "  }":
            break
        key = re.match(r"    (\w+):", line)
        if key:
            names.add(key.group(1))
    return names


def test_the_app_identity_may_attach_itself_to_the_endpoints_it_creates():
    """Creating an endpoint with a user-assigned identity takes .../userAssignedIdentities/assign/action on that
    identity (without it Azure answers LinkedAuthorizationFailed); AzureML Data Scientist on the workspace has no
    right on the identity. Managed Identity Operator, scoped to the identity alone, grants exactly that action."""
    assert app_settings()["ENDPOINT_IDENTITY_ID"] == "identityId"
    assert "settings.endpoint_identity_id" in Path(entities.__file__).read_text()
    roles = bicep_resources(INFRA / "modules" / "roles.bicep")
    roles_text = (INFRA / "modules" / "roles.bicep").read_text()
    assert "managedIdentityOperator: 'f1a07417-d97a-45cb-824c-7a7467783830'" in roles_text
    identity = [name for name, (kind, body) in roles.items()
                if kind.startswith("Microsoft.ManagedIdentity/userAssignedIdentities@") and " existing " in body]
    assert len(identity) == 1
    grants = [body for kind, body in roles.values()
              if kind.startswith("Microsoft.Authorization/roleAssignments@") and "role.managedIdentityOperator" in body]
    assert len(grants) == 1
    assert f"scope: {identity[0]}\n" in grants[0] and "principalId: identityPrincipalId" in grants[0]
    resources = (INFRA / "modules" / "resources.bicep").read_text()
    assert "identityName: identity.name" in resources


# Property names each created resource sets, checked against the bicep-types-az type definition of the exact API
# version it declares (Azure/bicep-types-az, generated/<provider>/<namespace>/<version>/types.md). Changing a
# version, or setting a property not listed here, means checking that file again and updating this table.
SCHEMA_CHECKED = {
    # generated/machinelearningservices/microsoft.machinelearningservices/2025-06-01/types.md, WorkspaceProperties:
    # systemDatastoresAuthMode ('AccessKey' | 'Identity' | 'UserDelegationSAS') is there; 2024-10-01 lacks it.
    "Microsoft.MachineLearningServices/workspaces@2025-06-01": {
        "friendlyName", "storageAccount", "keyVault", "containerRegistry", "applicationInsights",
        "systemDatastoresAuthMode", "publicNetworkAccess", "v1LegacyMode"},
    # generated/containerregistry_0/microsoft.containerregistry/2025-04-01/types.md, RegistryProperties:
    # anonymousPullEnabled is there; 2023-07-01 lacks it.
    "Microsoft.ContainerRegistry/registries@2025-04-01": {
        "adminUserEnabled", "anonymousPullEnabled", "publicNetworkAccess"},
}


def test_resources_set_only_properties_their_api_version_defines():
    created: dict[str, list[tuple[str, str]]] = {}
    for path in INFRA.rglob("*.bicep"):
        for kind, body in bicep_resources(path).values():
            if " existing " not in body.splitlines()[0]:
                created.setdefault(kind.split("@")[0], []).append((kind, body))
    for checked, names in SCHEMA_CHECKED.items():
        declared = created[checked.split("@")[0]]
        assert [kind for kind, _ in declared] == [checked]
        assert property_names(declared[0][1]) <= names, property_names(declared[0][1]) - names


def test_the_workspace_reaches_its_storage_by_identity():
    """Shared keys are off on the workspace storage: without the identity mode, jobs could not write outputs."""
    ml = (INFRA / "modules" / "ml.bicep").read_text()
    assert "allowSharedKeyAccess: false" in ml
    assert "systemDatastoresAuthMode: 'Identity'" in ml  # the schema's own spelling


def test_the_registry_refuses_anonymous_pulls():
    ml = (INFRA / "modules" / "ml.bicep").read_text()
    assert "anonymousPullEnabled: false" in ml and "adminUserEnabled: false" in ml


def test_no_setting_flex_consumption_ignores():
    """Flex Consumption has no platform health check: healthCheckPath would promise a probe that never runs."""
    app = (INFRA / "modules" / "functionapp.bicep").read_text()
    assert "tier: 'FlexConsumption'" in app and "healthCheckPath" not in app
    readme = (ROOT / "README.md").read_text() + (INFRA / "README.md").read_text()
    assert not re.search(r"(?i)health ?check", readme)


# --- The postdeploy hook: the .sh runs with a fake az on PATH; the .ps1 twin runs too where pwsh is installed ------

HOOKS = INFRA / "hooks"
AZD_ENV = {"AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000", "AZURE_RESOURCE_GROUP": "rg-dev",
           "AZURE_FUNCTION_APP_NAME": "func-x", "AZURE_FUNCTION_APP_URL": "https://func-x.example",
           "AZURE_STORAGE_ACCOUNT": "stx", "STORAGE_SYSTEM_TOPIC": "st-topic", "WORKSPACE_SYSTEM_TOPIC": "mlw-topic"}
NOT_SIGNED_IN = "ERROR: Please run 'az login' to setup account."
FORBIDDEN = "ERROR: (AuthorizationFailed) The client 'u@x' does not have authorization to perform action 'listkeys'."
HOST_STARTING = "ERROR: Encountered an error (ServiceUnavailable) from host runtime."

# Logs each call; `account show` fails when FAKE_ACCOUNT says so; each `functionapp keys list` answers the next
# step of FAKE_KEYS ("error:<message>", "empty" or "key:<value>"; the last step repeats).
FAKE_AZ = """#!/bin/sh
echo "$*" >> "$FAKE_LOG"
case "$*" in
  "account show"*)
    [ "$FAKE_ACCOUNT" = ok ] && exit 0
    echo "$FAKE_ACCOUNT" >&2; exit 1 ;;
  "functionapp keys list"*)
    calls=$(grep -c "^functionapp keys list" "$FAKE_LOG")
    step=$(printf '%s\\n' "$FAKE_KEYS" | tr '|' '\\n' | sed -n "${calls}p")
    [ -n "$step" ] || step=$(printf '%s\\n' "$FAKE_KEYS" | tr '|' '\\n' | tail -n 1)
    case "$step" in
      error:*) echo "${step#error:}" >&2; exit 1 ;;
      key:*) echo "${step#key:}" ;;
    esac
    exit 0 ;;
  "deployment group create"*) exit 0 ;;
esac
echo "unexpected: $*" >&2; exit 2
"""


def run_hook(tmp_path: Path, shell: str, account: str = "ok", keys: str = "key:k3y==",
             env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], list[str], float]:
    import shutil
    import time

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("az", FAKE_AZ), ("curl", "#!/bin/sh\nexit 0\n"), ("sleep", "#!/bin/sh\nexit 0\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "az.log"
    log.write_text("")
    hook = ["sh", str(HOOKS / "postdeploy.sh")] if shell == "sh" else [
        str(shutil.which("pwsh")), "-NoProfile", "-NonInteractive", "-File", str(HOOKS / "postdeploy.ps1")]
    started = time.monotonic()
    done = subprocess.run(hook, cwd=ROOT, capture_output=True, text=True, timeout=60, env={
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path), "FAKE_LOG": str(log),
        "FAKE_ACCOUNT": account, "FAKE_KEYS": keys, **(AZD_ENV if env is None else env)})
    return done, log.read_text().splitlines(), time.monotonic() - started


def hook_shells() -> list[str]:
    import shutil

    return ["sh", *(["pwsh"] if shutil.which("pwsh") else [])]


@pytest.mark.parametrize("shell", hook_shells())
def test_the_hook_stops_at_once_with_azs_words_when_az_is_not_signed_in(tmp_path, shell):
    done, calls, seconds = run_hook(tmp_path, shell, account=NOT_SIGNED_IN)
    assert done.returncode != 0 and NOT_SIGNED_IN in done.stderr and "az login" in done.stderr
    assert calls == [f"account show --subscription {AZD_ENV['AZURE_SUBSCRIPTION_ID']} -o none"]
    assert seconds < 20


@pytest.mark.parametrize("shell", hook_shells())
def test_the_hook_stops_with_azs_words_when_the_keys_cannot_be_read(tmp_path, shell):
    done, calls, _ = run_hook(tmp_path, shell, keys=f"error:{FORBIDDEN}")
    assert done.returncode != 0 and FORBIDDEN in done.stderr
    assert [call.split(" --")[0] for call in calls] == ["account show", "functionapp keys list"]


@pytest.mark.parametrize("shell", hook_shells())
def test_the_hook_deploys_the_subscriptions_with_the_key(tmp_path, shell):
    done, calls, _ = run_hook(tmp_path, shell)
    assert done.returncode == 0, done.stderr
    assert "Event Grid subscriptions are in place" in done.stdout and "stx" in done.stdout
    deployment = calls[-1].split()
    assert deployment[:3] == ["deployment", "group", "create"]
    assert {"blobsExtensionKey=k3y==", "functionAppName=func-x", "storageName=stx", "storageTopicName=st-topic",
            "workspaceTopicName=mlw-topic", "infra/events.bicep", AZD_ENV["AZURE_SUBSCRIPTION_ID"]} <= set(deployment)


def test_the_hook_waits_for_the_host_and_shows_what_az_said_meanwhile(tmp_path):
    done, calls, _ = run_hook(tmp_path, "sh", keys=f"error:{HOST_STARTING}|empty|key:k3y==")
    assert done.returncode == 0, done.stderr
    assert HOST_STARTING in done.stderr
    assert sum(call.startswith("functionapp keys list") for call in calls) == 3
    assert "blobsExtensionKey=k3y==" in calls[-1]


def test_the_hook_gives_up_when_the_key_never_appears(tmp_path):
    done, calls, _ = run_hook(tmp_path, "sh", keys="empty")
    assert done.returncode != 0 and "did not appear" in done.stderr
    assert sum(call.startswith("functionapp keys list") for call in calls) == 30
    assert not any(call.startswith("deployment") for call in calls)


def test_the_hook_needs_the_azd_environment(tmp_path):
    env = {k: v for k, v in AZD_ENV.items() if k != "WORKSPACE_SYSTEM_TOPIC"}
    done, calls, _ = run_hook(tmp_path, "sh", env=env)
    assert done.returncode != 0 and "WORKSPACE_SYSTEM_TOPIC" in done.stderr and calls == []


def test_windows_runs_the_same_hook_in_powershell():
    """azd runs hooks per platform: without a windows entry, `azd up` on Windows wires no Event Grid at all.
    Where pwsh is installed the tests above run the .ps1 too; here its structure is held to the .sh."""
    postdeploy = yaml_section(yaml_section((ROOT / "azure.yaml").read_text(), "hooks"), "postdeploy")
    assert yaml_values(yaml_section(postdeploy, "posix")) == {
        "shell": "sh", "run": "infra/hooks/postdeploy.sh", "continueOnError": "false", "interactive": "false"}
    assert yaml_values(yaml_section(postdeploy, "windows")) == {
        "shell": "pwsh", "run": "infra/hooks/postdeploy.ps1", "continueOnError": "false", "interactive": "false"}
    sh = (HOOKS / "postdeploy.sh").read_text()
    ps1 = (HOOKS / "postdeploy.ps1").read_text()
    # The same azd settings, required before anything runs.
    sh_env = re.findall(r': "\$\{(\w+):\?', sh)
    ps1_env = re.findall(r"'(\w+)'", found(r"foreach \(\$name in ([^)]*)\)", ps1))
    assert sh_env == ps1_env and set(sh_env) == set(AZD_ENV)
    # The same az calls, in the same order, each on azd's subscription, each one's failure checked.
    steps = ["az account show", "az functionapp keys list", "az deployment group create"]
    for text in (sh, ps1):
        at = [text.index(step) for step in steps]
        assert at == sorted(at) and text.count("--subscription") == 3
    assert ps1.count("$LASTEXITCODE -ne 0") == 3
    # The same patience, the same errors that stop at once, the same wake-up call and deployment parameters.
    assert re.search(r"^attempts=30 ", sh, re.M) and re.search(r"^pause=10$", sh, re.M)
    assert re.search(r"^\$attempts = 30\b", ps1, re.M) and re.search(r"^\$pause = 10$", ps1, re.M)
    fatal_sh = set(re.findall(r"\*\"?([\w ]+?)\"?\*", found(r"(?m)^ +(\*Authorization.*)\)$", sh)))
    fatal_ps1 = set(found(r"-match '([^']+)'", ps1).split("|"))
    assert fatal_sh == fatal_ps1 and "az login" in fatal_sh
    for text in (sh, ps1):
        assert '--query "systemKeys.blobs_extension"' in text and "/api/health" in text
        assert "'azd hooks run postdeploy'" in text and "did not appear" in text
        assert "Event Grid subscriptions are in place: upload a CSV to the datasets container of" in text
    for name in ("functionAppName", "storageName", "storageTopicName", "workspaceTopicName", "blobsExtensionKey"):
        assert f"{name}=" in sh and f"{name}=" in ps1


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, pattern
    return match.group(1)


def yaml_section(text: str, key: str) -> str:
    """The lines nested under the first ``key:`` of a plain YAML mapping (as azure.yaml is written)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^\s*{key}:\s*$", line))
    indent = len(lines[start]) - len(lines[start].lstrip())
    body = []
    for line in lines[start + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        body.append(line)
    return "\n".join(body)


def yaml_values(text: str) -> dict[str, str]:
    return dict(re.findall(r"^\s*(\w+):[ \t]*(\S[^\n]*?)\s*$", text, re.MULTILINE))
