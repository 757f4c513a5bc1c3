// Lets the app identity send email through one ACS resource. There is no narrow built-in
// "email sender" role (azure-facts §4.6), so this defines a custom role with only the three
// actions the ACS docs list for Entra-authenticated sending, assignable only in this resource
// group, and assigns it on the ACS resource itself.
// Deployed into the ACS resource's resource group (ours, or the one of an existing sender).
param communicationServiceName string
param appIdentityPrincipalId string

// justify: custom role definitions are not in azure-facts §6.1; 2022-04-01 is the GA version used for roleAssignments there.
resource emailSenderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'acs-email-sender')
  properties: {
    // Role names are unique per tenant: derive it from the resource group so re-runs (and several
    // environments sharing one ACS resource group) converge on the same definition.
    roleName: 'ACS Email Sender (${uniqueString(resourceGroup().id)})'
    description: 'Send email through Azure Communication Services with Entra ID (no keys).'
    type: 'CustomRole'
    assignableScopes: [resourceGroup().id]
    permissions: [
      {
        actions: [
          'Microsoft.Communication/CommunicationServices/Read'
          'Microsoft.Communication/CommunicationServices/Write'
          'Microsoft.Communication/EmailServices/write'
        ]
        notActions: []
      }
    ]
  }
}

resource communicationService 'Microsoft.Communication/communicationServices@2025-05-01' existing = {
  name: communicationServiceName
}

resource emailSenderAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(communicationService.id, appIdentityPrincipalId, emailSenderRole.id)
  scope: communicationService
  properties: {
    roleDefinitionId: emailSenderRole.id
    principalId: appIdentityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output endpoint string = 'https://${communicationService.properties.hostName}'
