// Optional: an Event Grid custom topic that the `eventgrid` action forwards events to (docs/cicd.md),
// in the app's resource group. Keys are off: the app publishes as its managed identity, which gets
// EventGrid Data Sender on this topic only.
param name string
param location string
param tags object = {}
param appIdentityPrincipalId string

var eventGridDataSender = 'd5a91429-5739-47e2-a06b-3470a27159e7'

// justify: custom topics are not among the checked versions; 2025-02-15 is the checked version for system topics.
resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  //checkov:skip=CKV_AZURE_193: the app (Flex Consumption, no virtual network) publishes over the public endpoint; local auth is off, so only Entra principals with EventGrid Data Sender can publish
  //checkov:skip=CKV_AZURE_191: a topic identity is for delivering to subscribers' endpoints with managed identity; subscribers add it when they need it (it would hold no role here)
  name: name
  location: location
  tags: tags
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    minimumTlsVersionAllowed: '1.2'
  }
}

resource appSendsEvents 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, appIdentityPrincipalId, eventGridDataSender)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSender)
    principalId: appIdentityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output endpoint string = topic.properties.endpoint
output name string = topic.name
