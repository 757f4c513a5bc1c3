// The Event Grid system topic of the Azure ML workspace, deployed into the resource group that
// holds (or will hold) it. A workspace can have only one system topic (azure-facts §7.1): to
// reuse one that exists, main.bicep passes its name and resource group, and this PUT adopts it
// (same source, so the update is allowed) and turns on its system-assigned identity, which
// dead-lettering uses.
param name string
param workspaceId string
param workspaceLocation string
param tags object

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: name
  location: workspaceLocation // a regional source: the topic lives in the workspace's region
  tags: tags
  identity: { type: 'SystemAssigned' }
  properties: {
    source: workspaceId
    topicType: 'Microsoft.MachineLearningServices.Workspaces'
  }
}

output name string = topic.name
output principalId string = topic.identity.principalId
