// An Event Grid system topic: the Azure ML workspace's (preprovision hook), or one of the optional
// sources' (postdeploy hook: storage accounts, a subscription's policy states, a resource group's or
// subscription's resource events). Deployed by deploy/preprovision.py and deploy/sources.py into
// the topic's resource group, never by main.bicep: `azd down` deletes every resource group
// main.bicep deploys into. A source can have
// only one system topic (a second one for the same source fails): the hook finds an existing one and passes its name,
// location, tags (ours merged into the owner's) and identities, so this PUT adopts it without
// replacing anything but turning on the system-assigned identity that dead-lettering uses.
@description('Topic name: the existing topic\'s, or evgt-<workspace> for a new one.')
param name string

@description('The existing topic\'s region, or the workspace\'s (a regional source).')
param location string

@description('Resource id of the topic\'s source: the workspace, a storage account, a subscription or a resource group (it cannot change on an existing topic).')
param sourceId string

@description('The source\'s kind of topic.')
@allowed([
  'Microsoft.MachineLearningServices.Workspaces'
  'Microsoft.Storage.StorageAccounts'
  'Microsoft.PolicyInsights.PolicyStates'
  'Microsoft.Resources.ResourceGroups'
  'Microsoft.Resources.Subscriptions'
])
param topicType string = 'Microsoft.MachineLearningServices.Workspaces'

@description('The existing topic\'s tags with this environment\'s tag added (merged by the hook, never replaced).')
param tags object

@description('SystemAssigned, plus any user-assigned identities an adopted topic already has.')
param identity object = { type: 'SystemAssigned' }

@description('True when the topic existed before this environment: teardown then leaves it.')
param adopted bool

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: name
  location: location
  tags: tags
  identity: identity
  properties: {
    source: sourceId
    topicType: topicType
  }
}

output principalId string = topic.identity.principalId
output adopted bool = adopted
