// The one identity the function app runs as: storage, App Insights, Key Vault, ACS and the
// ML workspace all see this principal, so every grant can be audited in one place.
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
