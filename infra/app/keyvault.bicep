// Key Vault (RBAC mode) for the webhook URLs and the webhook signing secret. A secret is created
// only when its value is given (azd env / pipeline secret), and the app gets a Key Vault
// reference only for those: an unset channel is simply absent from the app settings, never a
// dangling reference. Values never appear in outputs; only the references do.
param name string
param location string
param tags object
param appIdentityPrincipalId string

@secure()
param alertWebhookUrl string = ''
@secure()
param teamsWebhookUrl string = ''
@secure()
param slackWebhookUrl string = ''
@secure()
param webhookSigningSecret string = ''

// justify: Microsoft.KeyVault is not among the checked versions; 2023-07-01 is the current GA version of vaults and vaults/secrets.
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  //checkov:skip=CKV_AZURE_109: Flex Consumption cannot resolve Key Vault references through a network-restricted vault (Microsoft's Flex Consumption docs); access is RBAC-only
  //checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109
  //checkov:skip=CKV_AZURE_110: purge protection would keep the name for up to 90 days after azd down, so azd up with the same environment name would fail; soft delete stays on and every secret is re-creatable from its source
  //checkov:skip=CKV_AZURE_42: same reason as CKV_AZURE_110 (soft delete is on; purge protection off on purpose)
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
  }
}

var secretSpecs = [
  { setting: 'ALERT_WEBHOOK_URL', secretName: 'alert-webhook-url', value: alertWebhookUrl }
  { setting: 'TEAMS_WEBHOOK_URL', secretName: 'teams-webhook-url', value: teamsWebhookUrl }
  { setting: 'SLACK_WEBHOOK_URL', secretName: 'slack-webhook-url', value: slackWebhookUrl }
  { setting: 'WEBHOOK_SIGNING_SECRET', secretName: 'webhook-signing-secret', value: webhookSigningSecret }
]

// justify: same API version as the vault above.
resource secrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [for spec in secretSpecs: if (!empty(spec.value)) {
  //checkov:skip=CKV_AZURE_41: webhook URLs and the signing secret have no natural expiry; rotation is documented in docs/deploy.md
  parent: vault
  name: spec.secretName
  properties: {
    value: spec.value
    contentType: 'text/plain'
  }
}]

var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6' // Key Vault Secrets User

// Read-only access to secret values, on this vault only.
resource appReadsSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appIdentityPrincipalId, keyVaultSecretsUserRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: appIdentityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Versionless secret URIs: a rotated secret is picked up without redeploying.
var secretBaseUri = '${vault.properties.vaultUri}secrets/'

output name string = vault.name
output appSettings object = union(
  empty(alertWebhookUrl) ? {} : { ALERT_WEBHOOK_URL: '@Microsoft.KeyVault(SecretUri=${secretBaseUri}alert-webhook-url)' },
  empty(teamsWebhookUrl) ? {} : { TEAMS_WEBHOOK_URL: '@Microsoft.KeyVault(SecretUri=${secretBaseUri}teams-webhook-url)' },
  empty(slackWebhookUrl) ? {} : { SLACK_WEBHOOK_URL: '@Microsoft.KeyVault(SecretUri=${secretBaseUri}slack-webhook-url)' },
  empty(webhookSigningSecret) ? {} : { WEBHOOK_SIGNING_SECRET: '@Microsoft.KeyVault(SecretUri=${secretBaseUri}webhook-signing-secret)' }
)
