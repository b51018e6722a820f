// Azure ML: the workspace (with its Key Vault, storage and container registry), a CPU cluster that scales to
// zero, and an identity-based datastore over the app's dataset-versions container.
param location string
param tags object
param workspaceName string
param storageName string
param vaultName string
param registryName string
param appInsightsId string
param identityId string
param dataStorageName string
param computeVmSize string
param computeMaxNodes int

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_189:The firewall denies everything but trusted Azure services (the workspace is one); disabling the public endpoint outright needs a private endpoint and VNet.
  // checkov:skip=CKV_AZURE_110:Purge protection would keep a deleted vault's name for the retention period, so `azd down --purge` then `azd up` in the same environment would fail; the vault holds only the workspace's own connection secrets.
  // checkov:skip=CKV_AZURE_42:The same reason as CKV_AZURE_110: soft delete is on (7 days), purge protection is off on purpose.
  name: vaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    // No purge protection: `azd down --purge` must be able to purge the vault, so that `azd up` can
    // create it again under the same name in the same environment.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Deny'
    }
  }
}

resource mlStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35:The workspace, its compute and the studio reach it over the public endpoint with Entra ID (shared keys are off); a managed VNet would close it.
  // checkov:skip=CKV_AZURE_43:The name is 'stml' plus a 13-character uniqueString: lowercase letters and digits, 17 characters; checkov cannot evaluate it.
  name: storageName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_GRS' } // job outputs hold the registered models
  properties: {
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// The workspace's own registry: the first MLflow (no-code) deployment builds its image here. Created with the
// workspace, so no image build depends on a registry made on demand under a caller with too few rights.
// 2025-04-01: the first stable version whose schema has anonymousPullEnabled (kept off, explicitly).
resource registry 'Microsoft.ContainerRegistry/registries@2025-04-01' = {
  // checkov:skip=CKV_AZURE_139:The workspace, its compute and the online endpoints pull over the public endpoint with Entra ID; closing it needs a private endpoint and a VNet.
  // checkov:skip=CKV_AZURE_163:Vulnerability scanning is Microsoft Defender for Containers, a subscription-level plan.
  // checkov:skip=CKV_AZURE_164:Content trust is a Premium feature; images here are built by Azure ML from the registered model.
  // checkov:skip=CKV_AZURE_165:Geo-replication is a Premium feature and a cost choice.
  // checkov:skip=CKV_AZURE_166:Quarantine is a Premium feature; only Azure ML pushes to this registry.
  // checkov:skip=CKV_AZURE_167:Retention of untagged manifests is a Premium feature.
  // checkov:skip=CKV_AZURE_233:Zone redundancy is a Premium feature and a cost choice.
  // checkov:skip=CKV_AZURE_237:Dedicated data endpoints are a Premium feature.
  name: registryName
  location: location
  tags: tags
  sku: { name: 'Standard' }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: 'Enabled'
  }
}

// 2025-06-01: the first stable version whose schema has systemDatastoresAuthMode.
resource workspace 'Microsoft.MachineLearningServices/workspaces@2025-06-01' = {
  // checkov:skip=CKV_AZURE_243:A private endpoint needs a VNet the Function App (Flex Consumption) would have to join; access is by Entra ID and role assignments.
  name: workspaceName
  location: location
  tags: tags
  identity: { type: 'SystemAssigned' }
  sku: { name: 'Basic', tier: 'Basic' }
  properties: {
    friendlyName: 'csv-to-endpoint'
    storageAccount: mlStorage.id
    keyVault: vault.id
    containerRegistry: registry.id
    applicationInsights: appInsightsId
    // The workspace's own datastores are reached by identity: the account has no shared keys, so with keys
    // jobs could not write their outputs.
    systemDatastoresAuthMode: 'Identity'
    publicNetworkAccess: 'Enabled'
    v1LegacyMode: false
  }
}

resource cluster 'Microsoft.MachineLearningServices/workspaces/computes@2024-10-01' = {
  parent: workspace
  name: 'cpu-cluster'
  location: location
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    computeType: 'AmlCompute'
    disableLocalAuth: true
    properties: {
      vmSize: computeVmSize
      vmPriority: 'Dedicated'
      osType: 'Linux'
      remoteLoginPortPublicAccess: 'Disabled'
      scaleSettings: {
        minNodeCount: 0
        maxNodeCount: computeMaxNodes
        nodeIdleTimeBeforeScaleDown: 'PT5M'
      }
    }
  }
}

resource datastore 'Microsoft.MachineLearningServices/workspaces/datastores@2024-10-01' = {
  parent: workspace
  name: 'datasetversions'
  properties: {
    datastoreType: 'AzureBlob'
    accountName: dataStorageName
    containerName: 'dataset-versions'
    endpoint: environment().suffixes.storage
    protocol: 'https'
    // No credentials: jobs read with the compute's identity, the studio with the signed-in user's.
    credentials: { credentialsType: 'None' }
    serviceDataAccessAuthIdentity: 'WorkspaceSystemAssignedIdentity'
  }
}

// Batch scoring: jobs read drops from scoring-input and write into scoring-jobs, by identity as above (the cluster
// runs as the app's identity, which has Storage Blob Data Owner on the app's storage).
resource scoringInput 'Microsoft.MachineLearningServices/workspaces/datastores@2024-10-01' = {
  parent: workspace
  name: 'scoringinput'
  properties: {
    datastoreType: 'AzureBlob'
    accountName: dataStorageName
    containerName: 'scoring-input'
    endpoint: environment().suffixes.storage
    protocol: 'https'
    credentials: { credentialsType: 'None' }
    serviceDataAccessAuthIdentity: 'WorkspaceSystemAssignedIdentity'
  }
}

resource scoringJobs 'Microsoft.MachineLearningServices/workspaces/datastores@2024-10-01' = {
  parent: workspace
  name: 'scoringjobs'
  properties: {
    datastoreType: 'AzureBlob'
    accountName: dataStorageName
    containerName: 'scoring-jobs'
    endpoint: environment().suffixes.storage
    protocol: 'https'
    credentials: { credentialsType: 'None' }
    serviceDataAccessAuthIdentity: 'WorkspaceSystemAssignedIdentity'
  }
}

output registryName string = registry.name
output workspaceName string = workspace.name
output workspaceId string = workspace.id
output workspacePrincipalId string = workspace.identity.principalId
output computeName string = cluster.name
output datastoreName string = datastore.name
output batchInputDatastoreName string = scoringInput.name
output batchOutputDatastoreName string = scoringJobs.name
