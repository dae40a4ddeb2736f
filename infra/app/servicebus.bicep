// The Service Bus entities appreg uses, with the properties its code relies on. The emulator's
// emulator/servicebus.DefaultConfig declares the same ones; infra/drift_test.go holds the three
// (this file, that config, and the handler's settings) to one another.
param name string
param location string = resourceGroup().location
param tags object = {}

param commandQueueName string
param eventsTopicName string
param eventsSubscriptionName string

@minValue(1)
@maxValue(2000)
param maxDeliveryCount int

// Standard: Basic has neither sessions nor topics. Local (SAS key) auth is off, so every client,
// the host's trigger included, signs in with Entra ID and holds only the data roles it is given.
resource serviceBusNamespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

// Every command for a client travels in the client's session, so Service Bus serialises them
// across every instance. requiresSession is fixed at creation: changing it means a new queue.
// Duplicate detection collapses resends (MessageId = requestId, rotate:<appId>:<keyId>, …).
// maxDeliveryCount must equal the handler's MAX_DELIVERY_COUNT, whose last delivery publishes
// the "failed" event. The lock is short because the host renews it (maxAutoLockRenewalDuration).
resource commandQueue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: serviceBusNamespace
  name: commandQueueName
  properties: {
    requiresSession: true
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    maxDeliveryCount: maxDeliveryCount
    lockDuration: 'PT1M'
    deadLetteringOnMessageExpiration: false
  }
}

// Outcome events. The day-long duplicate window is what lets ScheduleRotations announce a dead
// letter again without a reader seeing it twice; the week-long TTL keeps a topic that readers only
// peek from growing until it reaches its quota and refuses the handler's events.
resource eventsTopic 'Microsoft.ServiceBus/namespaces/topics@2022-10-01-preview' = {
  parent: serviceBusNamespace
  name: eventsTopicName
  properties: {
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'P1D'
    defaultMessageTimeToLive: 'P7D'
  }
}

// The subscription `appreg events` and `--wait` peek; nothing consumes it, so the TTL is what
// empties it. Not session-enabled: events carry no SessionId.
resource eventsSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2022-10-01-preview' = {
  parent: eventsTopic
  name: eventsSubscriptionName
  properties: {
    requiresSession: false
    defaultMessageTimeToLive: 'P7D'
    lockDuration: 'PT1M'
    maxDeliveryCount: 10
    deadLetteringOnMessageExpiration: false
  }
}

output name string = serviceBusNamespace.name
output id string = serviceBusNamespace.id
output commandQueueName string = commandQueue.name
output eventsTopicName string = eventsTopic.name
output eventsSubscriptionName string = eventsSubscription.name
