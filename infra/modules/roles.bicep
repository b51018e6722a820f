// Least privilege: each identity gets the data-plane roles its work needs, on the one resource it touches.
param identityName string
param identityPrincipalId string
param workspacePrincipalId string
param userPrincipalId string
@allowed([ 'User', 'ServicePrincipal' ])
param userPrincipalType string
param registryName string
param storageName string
param mlStorageName string
param workspaceName string
param insightsName string

var role = {
  blobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  blobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  blobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  azureMLDataScientist: 'f6c7c914-8db3-469d-8ca1-694a8f32e121'
  metricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
  contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c'
  managedIdentityOperator: 'f1a07417-d97a-45cb-824c-7a7467783830'
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageName
}

resource mlStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: mlStorageName
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource insights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: insightsName
}

// The Functions host keeps blob receipts and leases (Owner is what identity-based AzureWebJobsStorage needs);
// the app writes dataset copies and records; the AutoML cluster (same identity) reads dataset copies.
resource appBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, role.blobDataOwner)
  scope: storage
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.blobDataOwner)
  }
}

// Blob triggers keep their poison messages in queues; the deployments queue carries the deployment steps.
resource appQueues 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, role.queueDataContributor)
  scope: storage
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.queueDataContributor)
  }
}

// Submit jobs, register data and models, manage online endpoints: nothing above the workspace.
resource appWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, identityPrincipalId, role.azureMLDataScientist)
  scope: workspace
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.azureMLDataScientist)
  }
}

// Telemetry ingestion with Entra ID (Application Insights has local auth switched off).
resource appTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, identityPrincipalId, role.metricsPublisher)
  scope: insights
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.metricsPublisher)
  }
}

// The workspace reads dataset copies through the identity-based datastore (studio previews, validation).
resource workspaceReadsData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, workspacePrincipalId, role.blobDataReader)
  scope: storage
  properties: {
    principalId: workspacePrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.blobDataReader)
  }
}

// The workspace's own storage is reached without keys too.
resource workspaceOwnStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(mlStorage.id, workspacePrincipalId, role.blobDataContributor)
  scope: mlStorage
  properties: {
    principalId: workspacePrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.blobDataContributor)
  }
}

// Jobs write their outputs (the MLflow models) to the workspace storage with the cluster's identity.
resource computeOutputs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(mlStorage.id, identityPrincipalId, role.blobDataContributor)
  scope: mlStorage
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.blobDataContributor)
  }
}

// The person running azd may upload CSVs and look at the workspace.
resource userBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(storage.id, userPrincipalId, role.blobDataContributor)
  scope: storage
  properties: {
    principalId: userPrincipalId
    principalType: userPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.blobDataContributor)
  }
}

resource userWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(workspace.id, userPrincipalId, role.azureMLDataScientist)
  scope: workspace
  properties: {
    principalId: userPrincipalId
    principalType: userPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.azureMLDataScientist)
  }
}

// The workspace builds the deployment images in its registry (Azure ML asks for Contributor on it).
resource workspaceRegistry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, workspacePrincipalId, role.contributor)
  scope: registry
  properties: {
    principalId: workspacePrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.contributor)
  }
}

// The cluster and the online endpoints (same identity) pull their images.
resource identityPullsImages 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, identityPrincipalId, role.acrPull)
  scope: registry
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.acrPull)
  }
}

// The app creates each online endpoint with this same identity attached (ENDPOINT_IDENTITY_ID). Attaching a
// user-assigned identity takes Microsoft.ManagedIdentity/userAssignedIdentities/assign/action on it, which
// AzureML Data Scientist does not give: Managed Identity Operator, on this one identity and nothing else.
resource identityAttachesItself 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(identity.id, identityPrincipalId, role.managedIdentityOperator)
  scope: identity
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.managedIdentityOperator)
  }
}
