// Assigns the custom ACS sender role (acs-sender-role.bicep) to the app identity on the one ACS
// resource the app sends through. Deployed by the postprovision hook, retried while the new role
// definition replicates.
param communicationServiceName string
param roleDefinitionId string
param appIdentityPrincipalId string

resource communicationService 'Microsoft.Communication/communicationServices@2025-05-01' existing = {
  name: communicationServiceName
}

resource emailSenderAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(communicationService.id, appIdentityPrincipalId, roleDefinitionId)
  scope: communicationService
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: appIdentityPrincipalId
    principalType: 'ServicePrincipal'
  }
}
