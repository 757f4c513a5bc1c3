// One Event Grid subscription per Event Grid-triggered function whose event types the topic emits:
// the workspace's system topic (Azure ML events), or a storage account's, a subscription's policy or
// a resource group's / subscription's Resource Manager topic (eventTypePrefix; docs/event-sources.md).
// Deployed by the postdeploy hook (deploy/postdeploy.py) into the topic's resource group *after* the code
// is published (Event Grid rejects an AzureFunction destination whose function is
// not deployed yet). Incremental and
// idempotent: re-running updates the same subscriptions in place.
targetScope = 'resourceGroup'

@description('Name of the workspace\'s system topic (set by the preprovision hook).')
param systemTopicName string

@description('The topic\'s event types start with this: only the functions that take them are subscribed.')
param eventTypePrefix string = 'Microsoft.MachineLearningServices.'

@description('Resource id of the function app (main.bicep output AZURE_FUNCTION_APP_ID).')
param functionAppId string

@description('Storage account that holds the dead-letter container (main.bicep output AZURE_STORAGE_ACCOUNT_ID).')
param deadLetterStorageAccountId string

param deadLetterContainerName string = 'deadletter'

@minValue(1)
@maxValue(30)
@description('Delivery attempts before an event is dead-lettered.')
param maxDeliveryAttempts int = 30

@minValue(1)
@maxValue(1440)
@description('Minutes an event is retried before it is dead-lettered.')
param eventTimeToLiveInMinutes int = 1440

@description('Per-function filters from scripts/render_filters.py: { "<function>": { "subscribe": bool, "includedEventTypes": [...], "advancedFilters": [...] } }. A function that is missing keeps all its event types and no advanced filter.')
param filters object = {}

// The single source of truth for which function takes which event types (shared with the app).
// Keys starting with "_" are comments.
var functionEventTypes = loadJsonContent('../../shared/functions.json')

// Subscription names are per topic, and several app environments can share a workspace's
// one topic: prefix with the app name.
var functionAppName = last(split(functionAppId, '/'))

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

resource functionSubscriptions 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = [for fn in items(functionEventTypes): if (!startsWith(fn.key, '_') && startsWith(string(first(array(fn.value))), eventTypePrefix) && (filters[?fn.key].?subscribe ?? true)) {
  parent: topic
  name: take('${functionAppName}-${replace(fn.key, '_', '-')}', 64)
  properties: {
    destination: {
      endpointType: 'AzureFunction' // no webhook handshake, no system key in the template
      properties: {
        resourceId: '${functionAppId}/functions/${fn.key}'
        maxEventsPerBatch: 1 // Event Grid redelivers a whole batch when any event in it fails
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      // Never wider than the function's own types, whatever the rendered filters say.
      includedEventTypes: intersection(filters[?fn.key].?includedEventTypes ?? array(fn.value), array(fn.value))
      advancedFilters: filters[?fn.key].?advancedFilters ?? []
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: { type: 'SystemAssigned' } // the topic's identity; granted on the container (infra/app/deadletter-rbac.bicep)
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}]

