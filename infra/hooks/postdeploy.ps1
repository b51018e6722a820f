# After `azd deploy` on Windows: the functions exist and the host has created its blobs_extension system key, which
# the Event Grid webhook for the blob triggers needs. Wire the Event Grid subscriptions with infra/events.bicep.
# The twin of infra/hooks/postdeploy.sh: change both together.
$ErrorActionPreference = 'Stop'
# az's exit codes are checked after each call, so that az's own message is what the user reads.
$PSNativeCommandUseErrorActionPreference = $false

foreach ($name in 'AZURE_SUBSCRIPTION_ID', 'AZURE_RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME', 'AZURE_FUNCTION_APP_URL',
                  'AZURE_STORAGE_ACCOUNT', 'STORAGE_SYSTEM_TOPIC', 'WORKSPACE_SYSTEM_TOPIC') {
    if (-not [Environment]::GetEnvironmentVariable($name)) {
        [Console]::Error.WriteLine("${name}: run through azd")
        exit 1
    }
}

$attempts = 30 # the host may take minutes to start after a deployment
$pause = 10
$rerun = "then run 'azd hooks run postdeploy'"
$stderrFile = [System.IO.Path]::GetTempFileName()

function Stop-Hook([string] $message) {
    [Console]::Error.WriteLine($message)
    Remove-Item -Force -ErrorAction SilentlyContinue $stderrFile
    exit 1
}

function Get-AzError {
    $text = Get-Content -Raw -ErrorAction SilentlyContinue $stderrFile
    if ($text) { return $text.Trim() } else { return '' }
}

if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    Stop-Hook "The Azure CLI (az) is not installed; install it, $rerun."
}

# Signed in, to the subscription azd deployed to: said at once, in az's own words.
az account show --subscription $env:AZURE_SUBSCRIPTION_ID -o none 2>$stderrFile
if ($LASTEXITCODE -ne 0) {
    [Console]::Error.WriteLine((Get-AzError))
    Stop-Hook "az cannot use subscription ${env:AZURE_SUBSCRIPTION_ID}: sign in with 'az login', $rerun."
}

$key = ''
$last = ''
for ($attempt = 1; ; $attempt++) {
    $out = az functionapp keys list --subscription $env:AZURE_SUBSCRIPTION_ID -g $env:AZURE_RESOURCE_GROUP `
        -n $env:AZURE_FUNCTION_APP_NAME --query "systemKeys.blobs_extension" -o tsv 2>$stderrFile
    if ($LASTEXITCODE -ne 0) {
        $key = ''
        $azError = Get-AzError
        if ($azError -ne $last) {
            [Console]::Error.WriteLine($azError)
            $last = $azError
        }
        # Errors that waiting cannot fix stop here; others (the host still starting) are tried again.
        if ($azError -match 'AuthorizationFailed|ResourceNotFound|ResourceGroupNotFound|SubscriptionNotFound|az login') {
            Stop-Hook "az could not read the Function App's keys (above); fix that, $rerun."
        }
    }
    else {
        $key = "$out".Trim()
        if ($key) { break }
    }
    if ($attempt -ge $attempts) {
        Stop-Hook "The blobs_extension key did not appear in $($attempts * $pause) s; check the Function App's logs, $rerun."
    }
    # The key appears once the host has started with a blob trigger: wake it and wait.
    try {
        Invoke-WebRequest -Uri "${env:AZURE_FUNCTION_APP_URL}/api/health" -TimeoutSec 30 -UseBasicParsing | Out-Null
    }
    catch {
        # Only a wake-up call: its answer does not matter.
    }
    Start-Sleep -Seconds $pause
}
Remove-Item -Force -ErrorAction SilentlyContinue $stderrFile

az deployment group create --only-show-errors -o none --subscription $env:AZURE_SUBSCRIPTION_ID `
    -g $env:AZURE_RESOURCE_GROUP --name "event-subscriptions" --template-file infra/events.bicep `
    --parameters "functionAppName=${env:AZURE_FUNCTION_APP_NAME}" "storageName=${env:AZURE_STORAGE_ACCOUNT}" `
    "storageTopicName=${env:STORAGE_SYSTEM_TOPIC}" "workspaceTopicName=${env:WORKSPACE_SYSTEM_TOPIC}" `
    "blobsExtensionKey=$key"
if ($LASTEXITCODE -ne 0) {
    [Console]::Error.WriteLine("The Event Grid subscriptions were not deployed (az's error above); $rerun.")
    exit 1
}
Write-Output "Event Grid subscriptions are in place: upload a CSV to the datasets container of ${env:AZURE_STORAGE_ACCOUNT}."
