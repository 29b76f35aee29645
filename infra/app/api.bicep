// The function app on Flex Consumption (FC1, Linux), Python 3.11, reaching everything with the
// user-assigned identity: deployment package, AzureWebJobsStorage, Application Insights, Graph.
param name string
param planName string
param location string
@description('Tags for every resource; the app alone also gets azd-service-name (azd wants one host resource per service).')
param tags object
@description('The azd service this app hosts (the services key in azure.yaml).')
param serviceName string = 'api'
param identityId string
param identityClientId string
param storageBlobEndpoint string
param storageQueueEndpoint string
param storageTableEndpoint string
param deploymentContainerName string
param applicationInsightsConnectionString string
param queueName string
param tableName string
param graphBaseUrl string
param allowedOrganizers string
param callerAuth string
param apiClientId string
@description('The tenant whose callers entra mode accepts (their tid claim must match).')
param tenantId string = tenant().tenantId
@description('Largest request body in bytes: the host refuses larger ones with 413 before they reach the worker.')
param requestBodyLimitBytes int = 65536
param maximumInstanceCount int = 40
param instanceMemoryMB int = 2048

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_211: Flex Consumption (FC1) has no SKU tiers to choose from
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero; a minimum instance count would bill an idle service
  // checkov:skip=CKV_AZURE_225: zone redundancy for Flex Consumption is a regional preview, left off by default
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

// Only the app carries azd-service-name: azd looks the service's host up by that tag and, before
// 1.23.4, failed when the plan carried it too ("expecting only '1' resource tagged",
// Azure/azure-dev cli/azd/pkg/project/resource_manager.go).
resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: callers and Power Automate reach the API over the internet; function keys or Entra ID guard it
  // checkov:skip=CKV_AZURE_17: callers authenticate with function keys or Entra ID tokens, not client certificates
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero; a minimum instance count would bill an idle service
  // checkov:skip=CKV_AZURE_213: /api/health exists; Flex Consumption does not take siteConfig.healthCheckPath
  // checkov:skip=CKV_AZURE_70: httpsOnly is set; the check does not follow Flex Consumption's property layout
  // checkov:skip=CKV_AZURE_145: minTlsVersion 1.2 is set in siteConfig
  // checkov:skip=CKV_AZURE_67: HTTP/2 is a siteConfig setting; Flex Consumption gets only minTlsVersion (see siteConfig below)
  // checkov:skip=CKV_AZURE_18: HTTP/2 is a siteConfig setting; Flex Consumption gets only minTlsVersion (see siteConfig below)
  // checkov:skip=CKV_AZURE_78: FTP is off through the ftp basicPublishingCredentialsPolicies below; Flex Consumption rejects siteConfig.ftpsState
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    // Only minTlsVersion, as in Microsoft's Flex Consumption samples: Flex Consumption refuses
    // several siteConfig properties with ARM error 51021 (ftpsState among them; FTP is off through
    // the basicPublishingCredentialsPolicies 'ftp' below), and which ones it enforces varies by
    // region (Azure/terraform-azurerm-avm-res-web-site#283, #353).
    siteConfig: {
      minTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: authentication is the authsettingsV2 resource below (entra) or function keys; the check reads app settings as a site config
  // checkov:skip=CKV_AZURE_222: not a site: public network access is decided on the function app
  // checkov:skip=CKV_AZURE_63: HTTP logging is a Windows App Service log; Flex Consumption sends request telemetry to Application Insights
  // checkov:skip=CKV_AZURE_65: detailed error pages are a Windows App Service feature; not applicable to Flex Consumption
  // checkov:skip=CKV_AZURE_66: failed request tracing is a Windows App Service feature; not applicable to Flex Consumption
  // checkov:skip=CKV_AZURE_80: the app runs Python, not .NET Framework
  // checkov:skip=CKV_AZURE_88: the app keeps no files; state lives in queues and tables
  parent: functionApp
  name: 'appsettings'
  properties: {
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
    AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
    AzureWebJobsStorage__tableServiceUri: storageTableEndpoint
    APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
    // Local authentication is off, so the host sends its telemetry with the identity (which holds
    // Monitoring Metrics Publisher, rbac.bicep); format from the Functions app settings reference.
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identityClientId}'
    AZURE_CLIENT_ID: identityClientId
    CANCEL_QUEUE_NAME: queueName
    STATUS_TABLE_NAME: tableName
    GRAPH_BASE_URL: graphBaseUrl
    ALLOWED_ORGANIZERS: allowedOrganizers
    CALLER_AUTH: callerAuth
    ENTRA_TENANT_ID: tenantId
    // Read by the host's HttpRequestBodySizeMiddleware (Azure/azure-functions-host,
    // EnvironmentSettingNames.FunctionsRequestBodySizeLimit): Kestrel answers 413 to a larger body.
    FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: string(requestBodyLimitBytes)
    // host.json lets 32 + 8 queue messages run at once per instance (batchSize + newBatchThreshold);
    // the Python worker runs synchronous functions on this many threads (azure-functions-python-worker
    // constants: at most sys.maxsize on Python 3.9+), so fewer would queue invocations in the worker.
    PYTHON_THREADPOOL_THREAD_COUNT: '40'
  }
}

// Publishing with user names and passwords (FTP, SCM basic auth) is off: azd deploys with Entra ID.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

// App Service Authentication (Microsoft Entra ID) when callerAuth is 'entra'; the platform then
// sets WEBSITE_AUTH_ENABLED=True and passes the caller's claims in X-MS-CLIENT-PRINCIPAL.
resource authentication 'Microsoft.Web/sites/config@2024-04-01' = if (callerAuth == 'entra') {
  // checkov:skip=CKV_AZURE_13: this resource is the App Service Authentication; the check reads it as a generic site config
  // checkov:skip=CKV_AZURE_222: not a site: public network access is decided on the function app
  // checkov:skip=CKV_AZURE_63: HTTP logging is a Windows App Service log; Flex Consumption sends request telemetry to Application Insights
  // checkov:skip=CKV_AZURE_65: detailed error pages are a Windows App Service feature; not applicable to Flex Consumption
  // checkov:skip=CKV_AZURE_66: failed request tracing is a Windows App Service feature; not applicable to Flex Consumption
  // checkov:skip=CKV_AZURE_80: the app runs Python, not .NET Framework
  // checkov:skip=CKV_AZURE_88: the app keeps no files; state lives in queues and tables
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: [
        '/api/health'
      ]
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: apiClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${apiClientId}'
            apiClientId
          ]
        }
      }
    }
  }
}

output name string = functionApp.name
output uri string = 'https://${functionApp.properties.defaultHostName}'
