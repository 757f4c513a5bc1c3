// Lets the app identity submit pipeline jobs, invoke batch endpoints and trigger schedules on this
// one workspace (the built-in AzureML Data Scientist role). Deployed by the postprovision hook
// into the workspace's resource group, never by main.bicep (`azd down` would delete that group).
param workspaceName string
param appIdentityPrincipalId string

var azureMlDataScientist = 'f6c7c914-8db3-469d-8ca1-694a8f32e121'

resource workspace 'Microsoft.MachineLearningServices/workspaces@2025-09-01' existing = {
  name: workspaceName
}

resource appRunsPipelines 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, appIdentityPrincipalId, azureMlDataScientist)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', azureMlDataScientist)
    principalId: appIdentityPrincipalId
    principalType: 'ServicePrincipal'
  }
}
