// The Flex Consumption (FC1) plan and the Python function app. The app runs as the
// user-assigned identity for everything: host storage, deployment package, App Insights,
// Key Vault references, ACS and the ML workspace. No keys or connection strings in settings,
// and none of the app settings that Flex Consumption deprecates (Functions app settings reference): the runtime
// is declared in functionAppConfig.runtime only.
param planName string
param appName string
param location string
param tags object
param serviceName string

@allowed(['3.11', '3.12'])
param pythonVersion string
@allowed([512, 2048, 4096])
param instanceMemoryMB int
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int

param identityId string
param identityClientId string

param storageBlobEndpoint string
param storageQueueEndpoint string
param storageTableEndpoint string
param deploymentContainerName string
param deadLetterContainerName string
param applicationInsightsConnectionString string
param acsEndpoint string
param emailSender string
param routesFile string
param invocationBudgetSeconds int
@description('Key Vault reference settings (name -> @Microsoft.KeyVault(...)) for the webhook channels that are configured.')
param keyVaultReferenceSettings object = {}

// What the app reads (see README "Deploy to Azure" and docs/deploy.md). Storage, App Insights,
// ACS and Key Vault are all reached with the user-assigned identity.
var appSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
  AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
  AzureWebJobsStorage__tableServiceUri: storageTableEndpoint
  AZURE_CLIENT_ID: identityClientId // DefaultAzureCredential picks the user-assigned identity
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // The Python worker exports logs through OpenTelemetry, so each outcome's fields become customDimensions.
  PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: 'true'
  ACS_ENDPOINT: acsEndpoint
  EMAIL_SENDER: emailSender
  ROUTES_FILE: routesFile
  INVOCATION_BUDGET_SECONDS: string(invocationBudgetSeconds)
  DEAD_LETTER_CONTAINER: deadLetterContainerName
  // Sync functions run on this many worker threads (the worker's default, min(32, cores + 4), is 6 on
  // 2 cores). With webhooks answering in 200 ms, 6 reach ~0.35x the CPU-bound throughput, 32 ~1x; 64
  // was no faster. ~0.1 MiB a thread (docs/performance.md, bench/storm.py).
  PYTHON_THREADPOOL_THREAD_COUNT: '32'
}

resource plan 'Microsoft.Web/serverfarms@2024-11-01' = {
  //checkov:skip=CKV_AZURE_225: zone redundancy on Flex needs always-ready instances, which end scale-to-zero (idle cost > 0); event delivery already retries for 24 h
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: {
    reserved: true // Linux
  }
}

resource functionApp 'Microsoft.Web/sites@2024-11-01' = {
  //checkov:skip=CKV_AZURE_17: client certificates would break Event Grid's AzureFunction delivery, which authenticates with the system key
  //checkov:skip=CKV_AZURE_212: Flex Consumption scales to zero by design; Event Grid retries (up to 24 h) cover a cold or failed instance
  //checkov:skip=CKV_AZURE_213: the app has no HTTP endpoint to probe (Event Grid triggers only); failures surface as Event Grid retries and dead letters
  //checkov:skip=CKV_AZURE_222: Event Grid push delivery needs a publicly reachable HTTPS endpoint
  //checkov:skip=CKV_AZURE_78: Flex Consumption apps have no FTP endpoint, and ftpsState on FC1 makes some regions reject the site (ARM error 51021)
  name: appName
  location: location
  tags: union(tags, { 'azd-service-name': serviceName }) // azd deploy finds the app by this tag
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with this identity (the app has no system-assigned one).
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      // No ftpsState (or other keys Flex does not take): some regions reject the whole site with
      // it on FC1, and Flex apps have no FTP endpoint anyway.
      minTlsVersion: '1.2'
      http20Enabled: true
      appSettings: [for setting in items(union(appSettings, keyVaultReferenceSettings)): {
        name: setting.key
        value: setting.value
      }]
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
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

output id string = functionApp.id
output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
