// Every Azure role appreg's identity holds in its own resource group, each at the narrowest scope
// that works: one vault, one queue, one topic, the host's storage account and Application
// Insights. Names are guid(scope, principal, role), so a re-run finds its own assignments, and
// principalType is set because a fresh identity may not have replicated when ARM checks it.
// (The FHIR delegation is app/fhir-delegation.bicep; the Graph permission is infra/graph.)
@description('Object (principal) id of appreg\'s user-assigned managed identity.')
param principalId string

param keyVaultName string
param serviceBusNamespaceName string
param commandQueueName string
param eventsTopicName string
param eventsSubscriptionName string
param storageAccountName string
param appInsightsName string

@description('Optional: a person or pipeline that sends requests with the appreg CLI.')
param operatorPrincipalId string = ''
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

// Built-in role definition ids, the same in every tenant (Microsoft's built-in roles reference).
var roleIds = {
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7' // Key Vault Secrets Officer
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0' // Azure Service Bus Data Receiver
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39' // Azure Service Bus Data Sender
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource serviceBusNamespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' existing = {
  name: serviceBusNamespaceName
}

resource commandQueue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' existing = {
  parent: serviceBusNamespace
  name: commandQueueName
}

resource eventsTopic 'Microsoft.ServiceBus/namespaces/topics@2022-10-01-preview' existing = {
  parent: serviceBusNamespace
  name: eventsTopicName
}

resource eventsSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2022-10-01-preview' existing = {
  parent: eventsTopic
  name: eventsSubscriptionName
}

resource storageAccount 'Microsoft.Storage/storageAccounts@2022-09-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// Write secret versions and tags, read their metadata, disable a deregistered client's secret.
resource vaultSecretsOfficer 'Microsoft.Authorization/roleAssignments@2020-04-01-preview' = {
  name: guid(vault.id, principalId, roleIds.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.keyVaultSecretsOfficer)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'appreg writes and rotates client secrets in this vault'
  }
}

// The host's session trigger receives; the handler peeks the dead-letter queue (preflight and the
// scheduler's dead-letter sweep), which the queue-scoped role covers.
resource queueReceiver 'Microsoft.Authorization/roleAssignments@2020-04-01-preview' = {
  name: guid(commandQueue.id, principalId, roleIds.serviceBusDataReceiver)
  scope: commandQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.serviceBusDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'appreg receives its commands'
  }
}

// ScheduleRotations sends rotate and maintain jobs into each client's session.
resource queueSender 'Microsoft.Authorization/roleAssignments@2020-04-01-preview' = {
  name: guid(commandQueue.id, principalId, roleIds.serviceBusDataSender)
  scope: commandQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'appreg schedules its own rotation and maintenance jobs'
  }
}

resource topicSender 'Microsoft.Authorization/roleAssignments@2020-04-01-preview' = {
  name: guid(eventsTopic.id, principalId, roleIds.serviceBusDataSender)
  scope: eventsTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'appreg publishes outcome events'
  }
}

// The host keeps its keys, timer schedule monitor and singleton locks in blobs, and the platform
// reads the deployment package from the container; both sign in as this identity.
resource storageBlobDataOwner 'Microsoft.Authorization/roleAssignments@2020-04-01-preview' = {
  name: guid(storageAccount.id, principalId, roleIds.storageBlobDataOwner)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Functions host storage and the deployment package'
  }
}

// The host writes diagnostic events to tables; without it the host logs errors but runs.
resource storageTableDataContributor 'Microsoft.Authorization/roleAssignments@2020-04-01-preview' = {
  name: guid(storageAccount.id, principalId, roleIds.storageTableDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Functions host diagnostic events'
  }
}

// Application Insights has local auth disabled; telemetry is accepted from this identity only.
resource appInsightsMetricsPublisher 'Microsoft.Authorization/roleAssignments@2020-04-01-preview' = {
  name: guid(applicationInsights.id, principalId, roleIds.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'the Functions host sends telemetry with Entra ID'
  }
}

// An operator's `appreg enqueue|rotate|deregister` sends to the command queue; `--wait` and
// `appreg events` peek the events subscription (a subscription-scoped role the portal cannot make).
resource operatorQueueSender 'Microsoft.Authorization/roleAssignments@2020-04-01-preview' = if (!empty(operatorPrincipalId)) {
  name: guid(commandQueue.id, operatorPrincipalId, roleIds.serviceBusDataSender)
  scope: commandQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.serviceBusDataSender)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
    description: 'sends appreg requests with the appreg CLI'
  }
}

resource operatorEventsReceiver 'Microsoft.Authorization/roleAssignments@2020-04-01-preview' = if (!empty(operatorPrincipalId)) {
  name: guid(eventsSubscription.id, operatorPrincipalId, roleIds.serviceBusDataReceiver)
  scope: eventsSubscription
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.serviceBusDataReceiver)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
    description: 'watches appreg outcome events with the appreg CLI'
  }
}
