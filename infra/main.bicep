// Provisions the app's own resource group and everything in it, and nothing outside it: `azd
// down` deletes every resource group this deployment puts a resource into, and the workspace's
// (or an existing ACS resource's) group must survive that. What the app needs outside its group
// (system topic, workspace role, event subscriptions, ACS sender role, policy assignments) is
// deployed by the azd hooks in deploy/ from infra/hooks/. See docs/deploy.md.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; seeds the resource names.')
param environmentName string

// Regions that offer Flex Consumption, as listed by Microsoft's Flex Consumption azd template
// (Azure-Samples/functions-quickstart-python-http-azd, infra/main.bicep) without its canary
// region; `az functionapp list-flexconsumption-locations` shows the current list.
@minLength(1)
@description('Region of the app, its storage, monitoring and Key Vault (one that offers Flex Consumption).')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({ azd: { type: 'location' } })
param location string

@description('Create an Event Grid custom topic for the `eventgrid` action to forward events to (docs/cicd.md), with EventGrid Data Sender for the app; sets FORWARD_TOPIC_ENDPOINT.')
param createForwardTopic bool = false

// Set by the preprovision hook before every deployment. The default only lets azd validate the
// parameters before hooks run (azd up checks them first); the postprovision hook fails if it is empty.
@description('Principal id of the workspace\'s system topic identity (set by the preprovision hook), which writes dead letters.')
param systemTopicPrincipalId string = ''

@description('Resource id of an existing Azure Communication Services resource to send from. Empty: create ACS + Email with an Azure-managed domain.')
param existingAcsResourceId string = ''

@description('Endpoint of that existing ACS resource (looked up by the preprovision hook).')
param existingAcsEndpoint string = ''

@description('Sender address on that existing ACS resource\'s linked domain (required with existingAcsResourceId).')
param existingEmailSender string = ''

@description('Where ACS stores email data at rest (only when ACS is created here).')
param emailDataLocation string = 'United States'

@allowed(['3.11', '3.12'])
param pythonVersion string = '3.12'

@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Routes file the app loads, relative to the app root.')
param routesFile string = 'routes.yaml'

@minValue(1)
@maxValue(600)
@description('Seconds an invocation may spend on actions before it defers the rest.')
param invocationBudgetSeconds int = 20

@secure()
@description('Optional webhook URL for generic alerts (stored in Key Vault).')
param alertWebhookUrl string = ''
@secure()
@description('Optional Teams incoming-webhook URL (stored in Key Vault).')
param teamsWebhookUrl string = ''
@secure()
@description('Optional Slack incoming-webhook URL (stored in Key Vault).')
param slackWebhookUrl string = ''
@secure()
@description('Optional HMAC secret to sign outgoing webhook bodies (stored in Key Vault).')
param webhookSigningSecret string = ''

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var serviceName = 'functions' // must match the service in azure.yaml
var functionAppName = '${abbrs.webSitesFunctions}${resourceToken}'
var deploymentContainerName = 'app-package-${take(resourceToken, 7)}'
var deadLetterContainerName = 'deadletter'
var createEmail = empty(existingAcsResourceId)

// justify: resource groups are not among the checked versions; 2024-03-01 is the version the azd Functions templates use.
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

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
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

module email 'app/email.bicep' = if (createEmail) {
  name: 'email'
  scope: rg
  params: {
    communicationServiceName: '${abbrs.communicationCommunicationServices}${resourceToken}'
    emailServiceName: '${abbrs.communicationEmailServices}${resourceToken}'
    dataLocation: emailDataLocation
    tags: tags
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    appIdentityPrincipalId: identity.outputs.principalId
    alertWebhookUrl: alertWebhookUrl
    teamsWebhookUrl: teamsWebhookUrl
    slackWebhookUrl: slackWebhookUrl
    webhookSigningSecret: webhookSigningSecret
  }
}

module appRbac 'app/app-rbac.bicep' = {
  name: 'app-rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    appIdentityPrincipalId: identity.outputs.principalId
  }
}

module functionApp 'app/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    planName: '${abbrs.webServerFarms}${resourceToken}'
    appName: functionAppName
    location: location
    tags: tags
    serviceName: serviceName
    pythonVersion: pythonVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    acsEndpoint: createEmail ? email!.outputs.endpoint : existingAcsEndpoint
    emailSender: createEmail ? email!.outputs.senderAddress : existingEmailSender
    routesFile: routesFile
    invocationBudgetSeconds: invocationBudgetSeconds
    // Settings merged into the app's own: Key Vault references, and the forwarding topic's endpoint (not a secret).
    keyVaultReferenceSettings: union(keyVault.outputs.appSettings, createForwardTopic ? { FORWARD_TOPIC_ENDPOINT: forwardTopic!.outputs.endpoint } : {})
  }
  // The host starts as soon as the app exists: let its identity reach storage first.
  dependsOn: [appRbac]
}

module forwardTopic 'app/forward-topic.bicep' = if (createForwardTopic) {
  name: 'forward-topic'
  scope: rg
  params: {
    name: 'evgt-fwd-${resourceToken}'
    location: location
    tags: tags
    appIdentityPrincipalId: identity.outputs.principalId
  }
}

module deadLetterRbac 'app/deadletter-rbac.bicep' = if (!empty(systemTopicPrincipalId)) {
  name: 'deadletter-rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    topicIdentityPrincipalId: systemTopicPrincipalId
  }
}

// azd stores these in the environment; the hooks (deploy/) read them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.id
output AZURE_STORAGE_ACCOUNT_ID string = storage.outputs.id
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output DEAD_LETTER_CONTAINER string = deadLetterContainerName
output APP_PRINCIPAL_ID string = identity.outputs.principalId
output ACS_RESOURCE_ID string = createEmail ? email!.outputs.communicationServiceId : existingAcsResourceId
output FORWARD_TOPIC_ENDPOINT string = createForwardTopic ? forwardTopic!.outputs.endpoint : ''
output ACS_ENDPOINT string = createEmail ? email!.outputs.endpoint : existingAcsEndpoint
