// appreg in one subscription: a Flex Consumption app (Go custom handler) with a user-assigned
// identity, identity-based host storage, Application Insights, a Key Vault for the client secrets,
// and the Service Bus entities the handler uses, each created with the properties the code
// assumes. Shaped like Microsoft's azd + Flex Consumption samples
// (Azure-Samples/functions-quickstart-dotnet-azd-service-bus, anthonychu/functions-quickstart-go-azd-service-bus,
// Azure-Samples/azure-functions-flex-consumption-samples) so `bicep build` meets nothing unusual.
//
// Not here, on purpose: the Microsoft Graph permission (infra/graph/main.bicep, run by a
// Privileged Role Administrator) and the code (azure.yaml's hooks publish it). infra/drift_test.go
// compares this file with the code's settings, entity names and role GUIDs.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; it seeds the unique suffix of every resource name.')
param environmentName string

@minLength(1)
@description('Region of every resource. It must offer the Flex Consumption plan (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create; default rg-<environmentName>.')
param resourceGroupName string = ''

@description('ARM id of an Azure Health Data Services FHIR service (/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.HealthcareApis/workspaces/<ws>/fhirservices/<fhir>). Set it to let appreg grant FHIR roles there; empty: requests with fhirAccess are refused.')
param fhirServiceId string = ''

// The roles a registration may ask for, and so the only roles the ABAC condition lets appreg's
// identity assign. Keep FHIR Data Contributor out unless requests really need it.
@description('FHIR roles requests may ask for (FHIR_ALLOWED_ROLES) and the ABAC condition allows.')
@allowed([
  'FHIR Data Reader'
  'FHIR Data Writer'
  'FHIR Data Exporter'
  'FHIR Data Contributor'
  'FHIR Data Importer'
  'FHIR Data Converter'
  'FHIR Data Bulk Operator'
  'FHIR SMART User'
])
param fhirAllowedRoles array = [
  'FHIR Data Reader'
  'FHIR Data Writer'
  'FHIR Data Exporter'
]

@description('Object id of a person (or group, or pipeline) who sends requests with the appreg CLI: gets Data Sender on the command queue and Data Receiver on the events subscription. Empty: grant it later with az role assignment create (the README runbook).')
param operatorPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

// 40 is what every published Flex minimum accepts: the plan documentation long said "the lowest
// maximum scale is 40" (the official sample enforces @minValue(40)), and newer pages say 1. The cap
// applies to each per-function scale group, not to the app, and it is not what protects Graph's
// write budget: host.json's maxConcurrentSessions and Retry-After handling do (the README runbook).
@minValue(1)
@maxValue(1000)
@description('Flex Consumption maximum instance count, per function scale group.')
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// Entity names and the delivery limit are parameters so the queue and the handler's settings are
// written from one value; their defaults are the code's (config.Settings, registrar.Defaults).
param commandQueueName string = 'app-commands'
param eventsTopicName string = 'app-registration-events'
@description('Subscription of the events topic that the appreg CLI peeks (its EVENTS_SUBSCRIPTION default).')
param eventsSubscriptionName string = 'appreg'
@minValue(1)
@maxValue(2000)
@description('The command queue\'s MaxDeliveryCount and the handler\'s MAX_DELIVERY_COUNT, which must agree.')
param maxDeliveryCount int = 10
@description('NCRONTAB (six fields) of ScheduleRotations; the host resolves %ROTATION_SCHEDULE% from it.')
param rotationSchedule string = '0 0 */6 * * *'

// A production vault keeps deleted secrets recoverable and cannot be purged early. Purge protection
// is irreversible once on; turn it off only for throwaway environments (azd down --purge then
// really purges the vault).
@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteRetentionInDays int = 90
param keyVaultPurgeProtection bool = true

@description('Microsoft Graph endpoint (GRAPH_BASE_URL); change it only in a sovereign cloud.')
param graphBaseUrl string = 'https://graph.microsoft.com'

@description('Extra or changed app settings, applied last (for example {"LOG_LEVEL": "debug"}). Entity names, the delivery count, the schedule and FHIR have their own parameters: change those there, so the infra and the settings stay one value.')
param appSettingOverrides object = {}

var abbrs = {
  resourceGroup: 'rg-'
  managedIdentity: 'id-'
  functionApp: 'func-'
  appServicePlan: 'plan-'
  storageAccount: 'st'
  logAnalytics: 'log-'
  appInsights: 'appi-'
  keyVault: 'kv-'
  serviceBus: 'sb-'
}
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var appName = '${abbrs.functionApp}${resourceToken}'
// Flex Consumption reads the package from this container with the app's identity.
var deploymentStorageContainerName = 'app-package-${take(appName, 32)}-${take(resourceToken, 7)}'

// /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.HealthcareApis/workspaces/<ws>/fhirservices/<fhir>
// split on '/' gives 11 segments. A well-formed stand-in keeps every index valid when no FHIR
// service is given, whatever ARM evaluates of a module whose condition is false.
var fhirEnabled = !empty(fhirServiceId)
var fhirSegments = split(fhirEnabled ? fhirServiceId : '/subscriptions/${subscription().subscriptionId}/resourceGroups/none/providers/Microsoft.HealthcareApis/workspaces/none/fhirservices/none', '/')
// The FHIR service's own audience, as internal/config derives it: a fresh secret is proven with
// the token its client will use, not merely one for Graph.
var fhirUrl = 'https://${toLower(fhirSegments[8])}-${toLower(fhirSegments[10])}.fhir.azurehealthcareapis.com'

resource rg 'Microsoft.Resources/resourceGroups@2021-04-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourceGroup}${environmentName}'
  location: location
  tags: tags
}

// One identity for the host (storage, Service Bus trigger, Application Insights) and the handler
// (Graph, Key Vault, Service Bus, ARM): user-assigned, so the Graph permission can be granted
// before the app's code first runs, and survives re-creating the app.
module identity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentity}appreg-${resourceToken}'
    location: location
    tags: tags
  }
}

module logAnalytics 'br/public:avm/res/operational-insights/workspace:0.11.1' = {
  name: '${uniqueString(deployment().name, location)}-loganalytics'
  scope: rg
  params: {
    name: '${abbrs.logAnalytics}${resourceToken}'
    location: location
    tags: tags
    dataRetention: 30
  }
}

// Local (key) authentication off: the host sends telemetry with the identity, which holds
// Monitoring Metrics Publisher (app/rbac.bicep).
module monitoring 'br/public:avm/res/insights/component:0.6.0' = {
  name: '${uniqueString(deployment().name, location)}-appinsights'
  scope: rg
  params: {
    name: '${abbrs.appInsights}${resourceToken}'
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
    disableLocalAuth: true
  }
}

// The host's storage: no keys at all. The host signs in with the identity
// (AzureWebJobsStorage__credential), and the platform fetches the package the same way.
module storage 'br/public:avm/res/storage/storage-account:0.8.3' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageAccount}${resourceToken}'
    location: location
    tags: tags
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    blobServices: {
      containers: [
        {
          name: deploymentStorageContainerName
          publicAccess: 'None'
        }
      ]
    }
    skuName: 'Standard_LRS'
    allowSharedKeyAccess: false
    minimumTlsVersion: 'TLS1_2'
  }
}

module appServicePlan 'br/public:avm/res/web/serverfarm:0.1.1' = {
  name: 'appserviceplan'
  scope: rg
  params: {
    name: '${abbrs.appServicePlan}${resourceToken}'
    location: location
    tags: tags
    sku: {
      name: 'FC1'
      tier: 'FlexConsumption'
    }
    reserved: true
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVault}${resourceToken}'
    location: location
    tags: tags
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionInDays
    enablePurgeProtection: keyVaultPurgeProtection
  }
}

module serviceBus 'app/servicebus.bicep' = {
  name: 'servicebus'
  scope: rg
  params: {
    name: '${abbrs.serviceBus}${resourceToken}'
    location: location
    tags: tags
    commandQueueName: commandQueueName
    eventsTopicName: eventsTopicName
    eventsSubscriptionName: eventsSubscriptionName
    maxDeliveryCount: maxDeliveryCount
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    keyVaultName: keyVault.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.name
    commandQueueName: serviceBus.outputs.commandQueueName
    eventsTopicName: serviceBus.outputs.eventsTopicName
    eventsSubscriptionName: serviceBus.outputs.eventsSubscriptionName
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.name
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
  }
}

// The delegation lives on the FHIR service, which is usually in another resource group (or
// subscription) that this deployment does not own, so it is a module scoped there. Deploying it
// needs roleAssignments/write on that service (Owner, User Access Administrator or Role Based
// Access Control Administrator there).
module fhirDelegation 'app/fhir-delegation.bicep' = if (fhirEnabled) {
  name: 'appreg-fhir-delegation-${resourceToken}'
  scope: resourceGroup(fhirSegments[2], fhirSegments[4])
  params: {
    workspaceName: fhirSegments[8]
    fhirServiceName: fhirSegments[10]
    principalId: identity.outputs.principalId
    allowedRoles: fhirAllowedRoles
  }
}

// Every setting the host and the handler read, in one table (internal/config.Settings is the
// handler's). Values equal to the code's defaults are still written out: the portal then shows
// what the app runs with, and the drift test fails when the code's defaults move.
// Absent on purpose: FUNCTIONS_WORKER_RUNTIME and AzureWebJobsStorage (Flex refuses the first,
// the second is replaced by the identity-based AzureWebJobsStorage__* below), AZURE_CLIENT_SECRET,
// APPREG_CA_FILE and ServiceBusConnection (local development and the emulator only; the namespace
// has local auth disabled), FUNCTIONS_CUSTOMHANDLER_PORT (the host sets it).
var appSettings = {
  AzureWebJobsStorage__accountName: storage.outputs.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.outputs.clientId};Authorization=AAD'
  ServiceBusConnection__fullyQualifiedNamespace: '${serviceBus.outputs.name}.servicebus.windows.net'
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: identity.outputs.clientId
  AZURE_TENANT_ID: tenant().tenantId
  AZURE_CLIENT_ID: identity.outputs.clientId
  AZURE_AUTHORITY_HOST: environment().authentication.loginEndpoint
  GRAPH_BASE_URL: graphBaseUrl
  KEY_VAULT_URL: keyVault.outputs.uri
  COMMAND_QUEUE: commandQueueName
  EVENTS_TOPIC: eventsTopicName
  ROTATION_SCHEDULE: rotationSchedule
  MAX_SECRET_LIFETIME_DAYS: '180'
  DEFAULT_SECRET_LIFETIME_DAYS: '90'
  ROTATE_BEFORE: '720h'
  RETIRE_AFTER: '168h'
  ORPHAN_AFTER: '15m'
  MAX_DELIVERY_COUNT: string(maxDeliveryCount)
  RETRY_BUDGET: '30m'
  ATTEMPT_TIMEOUT: '5m'
  CREDENTIAL_EDIT_SPACING: '10s'
  REPLICATION_TIMEOUT: '3m'
  SECRET_VERIFY_TIMEOUT: '2m'
  SECRET_VERIFY_SUCCESSES: '8'
  SECRET_VERIFY_SCOPE: fhirEnabled ? '${fhirUrl}/.default' : 'https://graph.microsoft.com/.default'
  APP_NAME_PREFIX: 'appreg-'
  SECRET_NAME_PREFIX: ''
  ARM_ENDPOINT: environment().resourceManager
  ARM_AUDIENCE: environment().resourceManager
  FHIR_SERVICES: fhirServiceId
  FHIR_DEFAULT_SERVICE: fhirServiceId
  FHIR_ALLOWED_ROLES: join(fhirAllowedRoles, ',')
  FHIR_ACCESS_TIMEOUT: '15m'
  FHIR_ACCESS_CHECK_DELAY: '30s'
  LOG_LEVEL: 'info'
}

module functionApp 'app/function.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    name: appName
    location: location
    tags: tags
    appServicePlanId: appServicePlan.outputs.resourceId
    storageAccountName: storage.outputs.name
    deploymentStorageContainerName: deploymentStorageContainerName
    identityId: identity.outputs.resourceId
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    appSettings: union(appSettings, appSettingOverrides)
  }
  // The app's first start should find its roles in place, not race them.
  dependsOn: [
    rbac
  ]
}

// azd stores these in .azure/<env>/.env; the hooks and the README runbook read them with
// `azd env get-value`.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = functionApp.outputs.name
output APPREG_IDENTITY_NAME string = identity.outputs.name
output APPREG_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output APPREG_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output APPREG_KEY_VAULT_NAME string = keyVault.outputs.name
output APPREG_KEY_VAULT_URL string = keyVault.outputs.uri
output APPREG_SERVICEBUS_NAMESPACE string = serviceBus.outputs.name
output APPREG_SERVICEBUS_FQDN string = '${serviceBus.outputs.name}.servicebus.windows.net'
output APPREG_COMMAND_QUEUE string = serviceBus.outputs.commandQueueName
output APPREG_EVENTS_TOPIC string = serviceBus.outputs.eventsTopicName
output APPREG_EVENTS_SUBSCRIPTION string = serviceBus.outputs.eventsSubscriptionName
output APPREG_APPINSIGHTS_NAME string = monitoring.outputs.name
output APPREG_FHIR_SERVICE_ID string = fhirServiceId
output APPREG_FHIR_DELEGATION_ID string = fhirDelegation.?outputs.roleAssignmentId ?? ''
