// The custom role that lets an identity send email through ACS. There is no narrow built-in
// "email sender" role (Contributor is the narrowest that works), so it has only the three actions the ACS docs list for
// Entra-authenticated sending, assignable only in this resource group. Deployed by the
// postprovision hook into the ACS resource's resource group, on its own: a new role definition
// can take a while to replicate, so the assignment (acs-sender-assignment.bicep) is a separate
// deployment that the hook retries on RoleDefinitionDoesNotExist.

// justify: custom role definitions are not among the checked versions; 2022-04-01 is the GA version used for roleAssignments.
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

output roleDefinitionId string = emailSenderRole.id
