// One storage account for the Functions host, the deployment package, the app's action ledger
// table and the Event Grid dead-letter container. Keys are disabled: every client (host, app,
// Event Grid) authenticates with Entra ID.
param name string
param location string
param tags object
param deploymentContainerName string
param deadLetterContainerName string = 'deadletter'
param ledgerTableName string = 'actionledger'

resource storage 'Microsoft.Storage/storageAccounts@2025-01-01' = {
  //checkov:skip=CKV_AZURE_35: Event Grid dead-lettering and the Flex deployment need the public endpoint; access is Entra-only (no shared keys), see docs/deploy.md for the VNet variant
  //checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: public endpoint, identity-only access
  //checkov:skip=CKV_AZURE_206: LRS is enough: the account holds a rebuildable package, a dedupe ledger and dead letters; GRS doubles the idle cost
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false // identity-based AzureWebJobsStorage; no keys anywhere
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    isLocalUserEnabled: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-01-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: 7 }
    containerDeleteRetentionPolicy: { enabled: true, days: 7 }
  }
}

// Flex Consumption reads the app's zip package from this container.
resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: { publicAccess: 'None' }
}

// Event Grid writes undeliverable events here (the container must exist before a subscription uses it).
resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: { publicAccess: 'None' }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2025-01-01' = {
  parent: storage
  name: 'default'
}

// The app's idempotency ledger (one row per event id and action), the record of rejected
// (poison) events, the pipeline guardrails' counters, digest groups, silences and open expectations
// (route `expect:`). The app also creates a missing one on use.
resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2025-01-01' = [
  for tableName in [ledgerTableName, 'rejectedevents', 'actionguardrails', 'digestgroups', 'silences', 'expectations']: {
    parent: tableService
    name: tableName
  }
]

// Full payloads of rejected events too large for a table row.
resource rejectedContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = {
  parent: blobService
  name: 'rejected'
  properties: { publicAccess: 'None' }
}

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
output deadLetterContainerName string = deadLetterContainer.name
