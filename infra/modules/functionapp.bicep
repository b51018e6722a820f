// The Function App on Flex Consumption (Linux, Python 3.11). Storage, telemetry and Azure ML are all reached
// with the user-assigned identity; no app setting holds a key.
param location string
param tags object
param planName string
param appName string
param identityId string
param identityClientId string
param storageName string
param blobEndpoint string
param queueEndpoint string
param appInsightsConnectionString string
param workspaceName string
param computeName string
param datastoreName string
param batchInputDatastoreName string
param batchOutputDatastoreName string
param endpointSuffix string
param endpointInstanceType string

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:Flex Consumption places instances per execution and scales to zero; zone redundancy is a per-region option with always-ready instances, a cost choice.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222:Event Grid webhooks and scoring clients call the app over its public endpoint; every route but /api/health needs a function key.
  // checkov:skip=CKV_AZURE_17:Callers authenticate with function keys or Entra ID tokens; Event Grid cannot present client certificates.
  // checkov:skip=CKV_AZURE_212:Scaling to zero is the point of Flex Consumption; add always-ready instances for latency-critical scoring.
  // checkov:skip=CKV_AZURE_213:Flex Consumption has no platform health check: the site setting would do nothing; /api/health answers callers and monitors.
  name: appName
  location: location
  tags: union(tags, { 'azd-service-name': 'app' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertMode: 'Optional'
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}deployment-package'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: 40
        instanceMemoryMB: 2048
      }
      runtime: { name: 'python', version: '3.11' }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        // The Functions host's own storage, by identity.
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
        { name: 'AzureWebJobsStorage__blobServiceUri', value: blobEndpoint }
        { name: 'AzureWebJobsStorage__queueServiceUri', value: queueEndpoint }
        // DefaultAzureCredential in the app picks the user-assigned identity.
        { name: 'AZURE_CLIENT_ID', value: identityClientId }
        // The Python worker exports OpenTelemetry to Application Insights itself (host.json telemetryMode).
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsightsConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
        { name: 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY', value: 'true' }
        { name: 'PIPELINE_BACKEND', value: 'azure' }
        { name: 'AZURE_SUBSCRIPTION_ID', value: subscription().subscriptionId }
        { name: 'AZURE_RESOURCE_GROUP', value: resourceGroup().name }
        { name: 'AZUREML_WORKSPACE', value: workspaceName }
        { name: 'AZUREML_COMPUTE', value: computeName }
        { name: 'AZUREML_DATASTORE', value: datastoreName }
        { name: 'DATASET_VERSIONS_CONTAINER', value: 'dataset-versions' }
        { name: 'STATE_CONTAINER', value: 'pipeline-state' }
        // Batch scoring by drop: a batch endpoint job reads the drop and writes into scoring-jobs, then the app
        // copies its output to scoring-output.
        { name: 'BATCH_INPUT_DATASTORE', value: batchInputDatastoreName }
        { name: 'BATCH_OUTPUT_DATASTORE', value: batchOutputDatastoreName }
        { name: 'BATCH_OUTPUT_CONTAINER', value: 'scoring-jobs' }
        { name: 'BATCH_POLL_S', value: '30' }
        { name: 'ENDPOINT_SUFFIX', value: endpointSuffix }
        { name: 'ENDPOINT_INSTANCE_TYPE', value: endpointInstanceType }
        { name: 'ENDPOINT_AUTH_MODE', value: 'aad_token' }
        // Endpoints pull their image and model with this identity (AcrPull and blob roles in roles.bicep),
        // rather than a system identity whose roles the service would have to assign.
        { name: 'ENDPOINT_IDENTITY_ID', value: identityId }
        { name: 'DEPLOY_POLL_S', value: '20' }
        // Uploads stream through the function a range at a time (SDK-type blob binding), so the limit is what Azure
        // AutoML trains on, not what the instance's memory holds.
        { name: 'MAX_UPLOAD_MB', value: '10240' }
        { name: 'STORAGE_ACCOUNT_NAME', value: storageName }
      ]
    }
  }
}

output name string = app.name
output id string = app.id
output url string = 'https://${app.properties.defaultHostName}'
