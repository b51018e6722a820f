// Event Grid subscriptions, deployed by infra/hooks/postdeploy.sh once the functions exist:
// - BlobCreated in datasets/ (complete writes only) -> the ingest blob trigger (source=EventGrid);
// - BlobCreated in scoring-input/ -> the batch_score blob trigger;
// - RunCompleted / RunStatusChanged of this app's runs -> the promote Event Grid function.
// Undeliverable events go to the eventgrid-deadletter container.
param functionAppName string
param storageName string
param storageTopicName string
param workspaceTopicName string

@secure()
@description('The blobs_extension system key: the blob trigger webhook accepts Event Grid calls only with it.')
param blobsExtensionKey string

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageName
}

resource storageTopic 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' existing = {
  name: storageTopicName
}

resource workspaceTopic 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' existing = {
  name: workspaceTopicName
}

// The event types and the tag the app sets on its jobs: one file, read by the promote handler too.
var routing = loadJsonContent('../shared/run_events.json')

var webhookBase = 'https://${app.properties.defaultHostName}/runtime/webhooks/blobs'
var retry = { maxDeliveryAttempts: 30, eventTimeToLiveInMinutes: 1440 }
var deadLetter = {
  identity: { type: 'SystemAssigned' }
  deadLetterDestination: {
    endpointType: 'StorageBlob'
    properties: { resourceId: storage.id, blobContainerName: 'eventgrid-deadletter' }
  }
}
// Only writes that leave a complete blob: a single put, a committed block list, a flushed ADLS file, or a
// server-side copy (azcopy, Storage Explorer); without hierarchical namespace, CopyBlob's event comes once the
// copy is complete.
var completeWrites = {
  operatorType: 'StringIn'
  key: 'data.api'
  values: [ 'PutBlob', 'PutBlockList', 'FlushWithClose', 'CopyBlob' ]
}

resource uploads 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2024-06-01-preview' = {
  parent: storageTopic
  name: 'datasets-to-ingest'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: '${webhookBase}?functionName=Host.Functions.ingest&code=${blobsExtensionKey}'
        maxEventsPerBatch: 1
      }
    }
    filter: {
      includedEventTypes: [ 'Microsoft.Storage.BlobCreated' ]
      subjectBeginsWith: '/blobServices/default/containers/datasets/blobs/'
      advancedFilters: [ completeWrites ]
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: retry
    deadLetterWithResourceIdentity: deadLetter
  }
}

resource batchInputs 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2024-06-01-preview' = {
  parent: storageTopic
  name: 'scoring-input-to-batch'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: '${webhookBase}?functionName=Host.Functions.batch_score&code=${blobsExtensionKey}'
        maxEventsPerBatch: 1
      }
    }
    filter: {
      includedEventTypes: [ 'Microsoft.Storage.BlobCreated' ]
      subjectBeginsWith: '/blobServices/default/containers/scoring-input/blobs/'
      advancedFilters: [ completeWrites ]
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: retry
    deadLetterWithResourceIdentity: deadLetter
  }
}

resource runs 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2024-06-01-preview' = {
  parent: workspaceTopic
  name: 'runs-to-promote'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${app.id}/functions/promote'
        maxEventsPerBatch: 1
      }
    }
    filter: {
      includedEventTypes: [
        routing.eventTypes.completed
        routing.eventTypes.statusChanged
      ]
      // Only runs carrying the app's tag (its pipeline jobs, and their AutoML node when the service copies the
      // node's tags): runType is null for many run kinds, so it is not used. The function checks the rest.
      advancedFilters: [ { operatorType: 'StringIn', key: routing.filterKey, values: [ routing.tagValue ] } ]
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: retry
    deadLetterWithResourceIdentity: deadLetter
  }
}
