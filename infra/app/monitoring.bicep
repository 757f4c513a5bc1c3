// Log Analytics + workspace-based Application Insights. Local (key) auth is off, so the app
// must send telemetry with Entra ID (APPLICATIONINSIGHTS_AUTHENTICATION_STRING + Monitoring
// Metrics Publisher).
param logAnalyticsName string
param applicationInsightsName string
param location string
param tags object
param retentionInDays int = 30

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    retentionInDays: retentionInDays
    sku: { name: 'PerGB2018' }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

output applicationInsightsName string = applicationInsights.name
output connectionString string = applicationInsights.properties.ConnectionString
