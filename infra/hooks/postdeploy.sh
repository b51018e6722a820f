#!/bin/sh
# After `azd deploy`: the functions exist and the host has created its blobs_extension system key, which the
# Event Grid webhook for the blob triggers needs. Wire the Event Grid subscriptions with infra/events.bicep.
set -eu
: "${AZURE_RESOURCE_GROUP:?run through azd}"
: "${AZURE_FUNCTION_APP_NAME:?run through azd}"

key=""
attempt=0
while [ -z "$key" ] && [ "$attempt" -lt 30 ]; do
  key=$(az functionapp keys list -g "$AZURE_RESOURCE_GROUP" -n "$AZURE_FUNCTION_APP_NAME" \
        --query "systemKeys.blobs_extension" -o tsv 2>/dev/null || true)
  if [ -z "$key" ]; then
    # The key appears once the host has started with a blob trigger: wake it and wait.
    curl -s -o /dev/null "${AZURE_FUNCTION_APP_URL}/api/health" || true
    attempt=$((attempt + 1))
    sleep 10
  fi
done
if [ -z "$key" ]; then
  echo "The blobs_extension key did not appear; check the Function App's logs, then run 'azd hooks run postdeploy'." >&2
  exit 1
fi

az deployment group create --only-show-errors -g "$AZURE_RESOURCE_GROUP" \
  --name "event-subscriptions" --template-file infra/events.bicep \
  --parameters functionAppName="$AZURE_FUNCTION_APP_NAME" storageName="$AZURE_STORAGE_ACCOUNT" \
               storageTopicName="$STORAGE_SYSTEM_TOPIC" workspaceTopicName="$WORKSPACE_SYSTEM_TOPIC" \
               blobsExtensionKey="$key" >/dev/null
echo "Event Grid subscriptions are in place: upload a CSV to the datasets container of $AZURE_STORAGE_ACCOUNT."
