// Everything in the resource group. Identity-based throughout: no account keys, no connection strings with secrets.
param location string
param tags object
param token string
param principalId string
param principalType string
param computeVmSize string
param computeMaxNodes int
param endpointInstanceType string

var names = {
  identity: 'id-${token}'
  storage: 'st${token}'
  mlStorage: 'stml${token}'
  logs: 'log-${token}'
  insights: 'appi-${token}'
  vault: 'kv-${token}'
  registry: 'cr${token}'
  workspace: 'mlw-${token}'
  plan: 'plan-${token}'
  functionApp: 'func-${token}'
}
// Containers of the app's storage account: uploads, batch scoring (drops, results, the batch jobs' own output),
// immutable dataset copies, records, code.
var containers = [
  'datasets'
  'scoring-input'
  'scoring-output'
  'scoring-jobs'
  'dataset-versions'
  'pipeline-state'
  'eventgrid-deadletter'
  'deployment-package'
]

// The deployment steps' queue, the batch scoring jobs' steps, and the queues the Functions host moves them to after
// 5 failed tries.
var queueNames = [
  'deployments'
  'deployments-poison'
  'batch-jobs'
  'batch-jobs-poison'
]

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.identity
  location: location
  tags: tags
}

module storage 'storage.bicep' = {
  name: 'storage'
  params: {
    name: names.storage
    location: location
    tags: tags
    containers: containers
    queueNames: queueNames
  }
}

module monitoring 'monitoring.bicep' = {
  name: 'monitoring'
  params: {
    logsName: names.logs
    insightsName: names.insights
    location: location
    tags: tags
  }
}

module ml 'ml.bicep' = {
  name: 'ml'
  params: {
    location: location
    tags: tags
    workspaceName: names.workspace
    storageName: names.mlStorage
    vaultName: names.vault
    registryName: names.registry
    appInsightsId: monitoring.outputs.insightsId
    identityId: identity.id
    dataStorageName: storage.outputs.name
    computeVmSize: computeVmSize
    computeMaxNodes: computeMaxNodes
  }
}

module functionApp 'functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    tags: tags
    planName: names.plan
    appName: names.functionApp
    identityId: identity.id
    identityClientId: identity.properties.clientId
    storageName: storage.outputs.name
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    appInsightsConnectionString: monitoring.outputs.connectionString
    workspaceName: ml.outputs.workspaceName
    computeName: ml.outputs.computeName
    datastoreName: ml.outputs.datastoreName
    batchInputDatastoreName: ml.outputs.batchInputDatastoreName
    batchOutputDatastoreName: ml.outputs.batchOutputDatastoreName
    endpointSuffix: substring(token, 0, 6)
    endpointInstanceType: endpointInstanceType
  }
}

module roles 'roles.bicep' = {
  name: 'roles'
  params: {
    identityName: identity.name
    identityPrincipalId: identity.properties.principalId
    workspacePrincipalId: ml.outputs.workspacePrincipalId
    userPrincipalId: principalId
    userPrincipalType: principalType
    registryName: ml.outputs.registryName
    storageName: storage.outputs.name
    mlStorageName: names.mlStorage
    workspaceName: ml.outputs.workspaceName
    insightsName: monitoring.outputs.insightsName
  }
}

module topics 'topics.bicep' = {
  name: 'topics'
  params: {
    location: location
    tags: tags
    storageName: storage.outputs.name
    workspaceName: ml.outputs.workspaceName
  }
}

output functionAppName string = functionApp.outputs.name
output functionAppUrl string = functionApp.outputs.url
output storageAccountName string = storage.outputs.name
output workspaceName string = ml.outputs.workspaceName
output appInsightsName string = monitoring.outputs.insightsName
output storageTopicName string = topics.outputs.storageTopicName
output workspaceTopicName string = topics.outputs.workspaceTopicName
