// The meeting-cancel service on Azure Functions Flex Consumption, deployable with `azd up`.
// One user-assigned managed identity reaches storage, Application Insights and Microsoft Graph;
// no key, secret or connection string with a key is stored anywhere.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; used to name and tag every resource.')
param environmentName string

@minLength(1)
@description('Azure region for every resource (one that offers Flex Consumption).')
param location string

@description('Mailboxes whose meetings the service may cancel: domains (@contoso.com), addresses, object ids, or *. Empty allows nothing.')
param allowedOrganizers string = ''

@allowed([
  'functionKey'
  'entra'
])
@description('How callers authenticate: function keys, or Microsoft Entra ID through App Service Authentication.')
param callerAuth string = 'functionKey'

@description('Client id of the Entra app registration that callers get tokens for (callerAuth = entra only).')
param apiClientId string = ''

@allowed([
  'global'
  'usGovL4'
  'usGovL5'
  'china'
])
@description('The Microsoft Graph national cloud; sets GRAPH_BASE_URL (and so the token scope).')
param graphCloud string = 'global'

@description('Grant the identity the Graph application permission Calendars.ReadWrite here. The deployer then needs AppRoleAssignment.ReadWrite.All; otherwise an administrator grants it (see README).')
param grantGraphPermission bool = false

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var graphBaseUrls = {
  global: 'https://graph.microsoft.com/v1.0'
  usGovL4: 'https://graph.microsoft.us/v1.0'
  usGovL5: 'https://dod-graph.microsoft.us/v1.0'
  china: 'https://microsoftgraph.chinacloudapi.cn/v1.0'
}
var functionAppName = '${abbrs.webSitesFunctions}${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    principalId: identity.outputs.principalId
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: union(tags, { 'azd-service-name': 'api' })
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
    queueName: storage.outputs.queueName
    tableName: storage.outputs.tableName
    graphBaseUrl: graphBaseUrls[graphCloud]
    allowedOrganizers: allowedOrganizers
    callerAuth: callerAuth
    apiClientId: apiClientId
  }
  dependsOn: [
    rbac
  ]
}

module graphPermission 'app/graph-permission.bicep' = if (grantGraphPermission) {
  name: 'graph-permission'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = api.outputs.uri
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output STORAGE_ACCOUNT_NAME string = storage.outputs.name
output GRAPH_BASE_URL string = graphBaseUrls[graphCloud]
