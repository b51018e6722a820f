// The Azure side of csv-to-endpoint: storage, Functions (Flex Consumption), Azure ML, monitoring, identity.
// Deployed by `azd up`; the Event Grid subscriptions follow in the postdeploy hook (events.bicep),
// because they point at functions that exist only once the code is deployed.
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('azd environment name; names and tags derive from it.')
param environmentName string

// Regions that offer both Flex Consumption and Azure ML (as published when this was written).
@allowed([
  'australiaeast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'westeurope'
  'westus2'
  'westus3'
])
@description('Region of every resource.')
param location string

@description('Object id of whoever runs azd: gets data access to inspect uploads and models. Empty to skip.')
param principalId string = ''

@allowed([ 'User', 'ServicePrincipal' ])
@description('User for a person; ServicePrincipal when azd runs from CI.')
param principalType string = 'User'

@description('VM size of the AutoML compute cluster (scales to zero when idle).')
param computeVmSize string = 'Standard_DS3_v2'

@description('Most nodes the cluster may scale out to.')
param computeMaxNodes int = 2

@description('VM size of the online endpoint deployments.')
param endpointInstanceType string = 'Standard_DS3_v2'

var token = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName, app: 'csv-to-endpoint' }

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module resources 'modules/resources.bicep' = {
  name: 'resources'
  scope: group
  params: {
    location: location
    tags: tags
    token: token
    principalId: principalId
    principalType: principalType
    computeVmSize: computeVmSize
    computeMaxNodes: computeMaxNodes
    endpointInstanceType: endpointInstanceType
  }
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = group.name
output AZURE_FUNCTION_APP_NAME string = resources.outputs.functionAppName
output AZURE_FUNCTION_APP_URL string = resources.outputs.functionAppUrl
output AZURE_STORAGE_ACCOUNT string = resources.outputs.storageAccountName
output AZUREML_WORKSPACE string = resources.outputs.workspaceName
output APPLICATIONINSIGHTS_NAME string = resources.outputs.appInsightsName
output STORAGE_SYSTEM_TOPIC string = resources.outputs.storageTopicName
output WORKSPACE_SYSTEM_TOPIC string = resources.outputs.workspaceTopicName
