// Provisions everything except the Event Grid event subscriptions, which need the function
// code to exist first (azure-facts §7.2): scripts/postdeploy.* deploys infra/subscriptions.bicep
// after `azd deploy`. See docs/deploy.md.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; seeds the resource names.')
param environmentName string

@minLength(1)
@description('Region of the app, its storage, monitoring and Key Vault.')
@metadata({ azd: { type: 'location' } })
param location string

@description('Resource id of the existing Azure ML workspace whose events drive the app.')
param mlWorkspaceId string

@description('Name of the workspace\'s existing Event Grid system topic, to reuse it (a workspace can have only one). Empty: create one.')
param existingSystemTopicName string = ''

@description('Resource group of that existing system topic. Empty: the workspace\'s resource group.')
param existingSystemTopicResourceGroup string = ''

@description('Resource id of an existing Azure Communication Services resource to send from. Empty: create ACS + Email with an Azure-managed domain.')
param existingAcsResourceId string = ''

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

@description('Assign the built-in Azure ML policy definitions, audit only, on the workspace\'s resource group.')
param assignMlPolicies bool = false

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

// /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{name}
var workspaceIdParts = split(mlWorkspaceId, '/')
var workspaceSubscriptionId = workspaceIdParts[2]
var workspaceResourceGroup = workspaceIdParts[4]
var workspaceName = workspaceIdParts[8]
var systemTopicName = empty(existingSystemTopicName) ? '${abbrs.eventGridSystemTopics}${workspaceName}' : existingSystemTopicName
var systemTopicResourceGroup = empty(existingSystemTopicResourceGroup) ? workspaceResourceGroup : existingSystemTopicResourceGroup

var createEmail = empty(existingAcsResourceId)
// The ACS resource the app sends through: the one created here, or the existing one.
var acsSubscriptionId = createEmail ? subscription().subscriptionId : split(existingAcsResourceId, '/')[2]
var acsResourceGroup = createEmail ? rg.name : split(existingAcsResourceId, '/')[4]
var acsName = createEmail ? '${abbrs.communicationCommunicationServices}${resourceToken}' : last(split(existingAcsResourceId, '/'))

// justify: resource groups are not in azure-facts §6.1; 2024-03-01 is the version the azd Functions templates use.
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
    communicationServiceName: acsName
    emailServiceName: '${abbrs.communicationEmailServices}${resourceToken}'
    dataLocation: emailDataLocation
    tags: tags
  }
}

// The sender role goes on whichever ACS resource the app sends through.
module emailSender 'app/acs-sender-role.bicep' = {
  name: 'email-sender-role'
  scope: resourceGroup(acsSubscriptionId, acsResourceGroup)
  params: {
    communicationServiceName: acsName
    appIdentityPrincipalId: identity.outputs.principalId
  }
  dependsOn: [rg, email]
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
    acsEndpoint: emailSender.outputs.endpoint
    emailSender: createEmail ? email!.outputs.senderAddress : existingEmailSender
    routesFile: routesFile
    invocationBudgetSeconds: invocationBudgetSeconds
    keyVaultReferenceSettings: keyVault.outputs.appSettings
  }
  // The host starts as soon as the app exists: let its identity reach storage first.
  dependsOn: [appRbac]
}

module workspaceAccess 'app/workspace-access.bicep' = {
  name: 'workspace-access'
  scope: resourceGroup(workspaceSubscriptionId, workspaceResourceGroup)
  params: {
    workspaceName: workspaceName
    appIdentityPrincipalId: identity.outputs.principalId
  }
}

module systemTopic 'app/system-topic.bicep' = {
  name: 'system-topic'
  scope: resourceGroup(workspaceSubscriptionId, systemTopicResourceGroup)
  params: {
    name: systemTopicName
    workspaceId: mlWorkspaceId
    workspaceLocation: workspaceAccess.outputs.location
    tags: tags
  }
}

module deadLetterRbac 'app/deadletter-rbac.bicep' = {
  name: 'deadletter-rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    topicIdentityPrincipalId: systemTopic.outputs.principalId
  }
}

module mlPolicies 'app/ml-policies.bicep' = if (assignMlPolicies) {
  name: 'ml-policies'
  scope: resourceGroup(workspaceSubscriptionId, workspaceResourceGroup)
  params: {
    workspaceName: workspaceName
  }
}

// azd stores these in the environment; scripts/postdeploy.* reads them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.id
output AZURE_STORAGE_ACCOUNT_ID string = storage.outputs.id
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output DEAD_LETTER_CONTAINER string = deadLetterContainerName
output SYSTEM_TOPIC_NAME string = systemTopic.outputs.name
output SYSTEM_TOPIC_RESOURCE_GROUP string = systemTopicResourceGroup
output SYSTEM_TOPIC_SUBSCRIPTION_ID string = workspaceSubscriptionId
output ACS_ENDPOINT string = emailSender.outputs.endpoint
