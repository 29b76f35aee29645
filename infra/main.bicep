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

@description('E-mail address for alerts (poisoned message, failure rate, sustained Graph throttling). Empty: no action group and no alert rules.')
param alertEmailAddress string = ''

@minValue(1)
@maxValue(100)
@description('Alert when failed final outcomes exceed this percentage of all final outcomes over 15 minutes.')
param alertFailureRatePercent int = 10

// The Graph permission (GRANT_GRAPH_PERMISSION=true) is granted after provisioning by
// infra/scripts/postprovision.sh, not here: a grant to an identity created in the same deployment
// fails with "Not a valid reference update" until Entra ID replicates the new service principal
// (microsoftgraph/msgraph-bicep-types#193, open), and the Microsoft Graph Bicep extension deploys in
// the public cloud only (learn.microsoft.com/graph/templates/limitations). See README, "Deploy".

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

// Entra mode without a client id would deploy an authentication config that accepts no token:
// app/checks.bicep stops the deployment with a message instead.
module checks 'app/checks.bicep' = {
  name: 'checks'
  scope: rg
  params: {
    callerAuth: callerAuth
    apiClientId: apiClientId
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    serviceName: 'api'
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
    apiClientId: checks.outputs.apiClientId
  }
  dependsOn: [
    rbac
  ]
}

module dashboard 'app/dashboard.bicep' = {
  name: 'dashboard'
  scope: rg
  params: {
    logAnalyticsId: monitoring.outputs.logAnalyticsId
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    location: location
    tags: tags
  }
}

module alerts 'app/alerts.bicep' = if (!empty(alertEmailAddress)) {
  name: 'alerts'
  scope: rg
  params: {
    emailAddress: alertEmailAddress
    failureRatePercent: alertFailureRatePercent
    logAnalyticsId: monitoring.outputs.logAnalyticsId
    location: location
    tags: tags
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
