#!/bin/sh
# After `azd deploy`: the functions exist and the host has created its blobs_extension system key, which the
# Event Grid webhook for the blob triggers needs. Wire the Event Grid subscriptions with infra/events.bicep.
# infra/hooks/postdeploy.ps1 does the same on Windows: change both together.
set -eu
: "${AZURE_SUBSCRIPTION_ID:?run through azd}"
: "${AZURE_RESOURCE_GROUP:?run through azd}"
: "${AZURE_FUNCTION_APP_NAME:?run through azd}"
: "${AZURE_FUNCTION_APP_URL:?run through azd}"
: "${AZURE_STORAGE_ACCOUNT:?run through azd}"
: "${STORAGE_SYSTEM_TOPIC:?run through azd}"
: "${WORKSPACE_SYSTEM_TOPIC:?run through azd}"

attempts=30 # the host may take minutes to start after a deployment
pause=10
rerun="then run 'azd hooks run postdeploy'"

errors=$(mktemp)
trap 'rm -f "$errors"' EXIT

if ! command -v az >/dev/null 2>&1; then
  echo "The Azure CLI (az) is not installed; install it, $rerun." >&2
  exit 1
fi

# Signed in, to the subscription azd deployed to: said at once, in az's own words.
if ! az account show --subscription "$AZURE_SUBSCRIPTION_ID" -o none 2>"$errors"; then
  cat "$errors" >&2
  echo "az cannot use subscription $AZURE_SUBSCRIPTION_ID: sign in with 'az login', $rerun." >&2
  exit 1
fi

key=""
last=""
attempt=1
while :; do
  if key=$(az functionapp keys list --subscription "$AZURE_SUBSCRIPTION_ID" -g "$AZURE_RESOURCE_GROUP" \
           -n "$AZURE_FUNCTION_APP_NAME" --query "systemKeys.blobs_extension" -o tsv 2>"$errors"); then
    [ -n "$key" ] && break
  else
    key=""
    error=$(cat "$errors")
    if [ "$error" != "$last" ]; then
      printf '%s\n' "$error" >&2
      last=$error
    fi
    # Errors that waiting cannot fix stop here; others (the host still starting) are tried again.
    case $error in
      *AuthorizationFailed*|*ResourceNotFound*|*ResourceGroupNotFound*|*SubscriptionNotFound*|*"az login"*)
        echo "az could not read the Function App's keys (above); fix that, $rerun." >&2
        exit 1 ;;
    esac
  fi
  if [ "$attempt" -ge "$attempts" ]; then
    echo "The blobs_extension key did not appear in $((attempts * pause)) s; check the Function App's logs, $rerun." >&2
    exit 1
  fi
  # The key appears once the host has started with a blob trigger: wake it and wait.
  curl -s -o /dev/null --max-time 30 "${AZURE_FUNCTION_APP_URL}/api/health" || true
  attempt=$((attempt + 1))
  sleep "$pause"
done

if ! az deployment group create --only-show-errors -o none --subscription "$AZURE_SUBSCRIPTION_ID" \
       -g "$AZURE_RESOURCE_GROUP" --name "event-subscriptions" --template-file infra/events.bicep \
       --parameters functionAppName="$AZURE_FUNCTION_APP_NAME" storageName="$AZURE_STORAGE_ACCOUNT" \
                    storageTopicName="$STORAGE_SYSTEM_TOPIC" workspaceTopicName="$WORKSPACE_SYSTEM_TOPIC" \
                    blobsExtensionKey="$key"; then
  echo "The Event Grid subscriptions were not deployed (az's error above); $rerun." >&2
  exit 1
fi
echo "Event Grid subscriptions are in place: upload a CSV to the datasets container of $AZURE_STORAGE_ACCOUNT."
