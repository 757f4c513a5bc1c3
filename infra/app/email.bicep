// Azure Communication Services with an Email Service and an Azure-managed sender domain.
// Deployed only when no existing ACS sender is given (see main.bicep).
param communicationServiceName string
param emailServiceName string
param dataLocation string
param tags object
param senderUsername string = 'DoNotReply' // Azure-managed domains come with this sender

resource emailService 'Microsoft.Communication/emailServices@2025-05-01' = {
  name: emailServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

resource managedDomain 'Microsoft.Communication/emailServices/domains@2025-05-01' = {
  parent: emailService
  name: 'AzureManagedDomain'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'AzureManaged'
    userEngagementTracking: 'Disabled' // alert mails need no open/click tracking
  }
}

resource communicationService 'Microsoft.Communication/communicationServices@2025-05-01' = {
  name: communicationServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    linkedDomains: [managedDomain.id]
    disableLocalAuth: true // the app sends with its managed identity, never an access key
  }
}

output communicationServiceId string = communicationService.id
output endpoint string = 'https://${communicationService.properties.hostName}'
output senderAddress string = '${senderUsername}@${managedDomain.properties.mailFromSenderDomain}'
