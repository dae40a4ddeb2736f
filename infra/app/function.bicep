// The Flex Consumption function app, shaped like the azd Flex samples' core/host module, with the
// custom-handler runtime: the host runs `handler` (host.json customHandler) and forwards each
// Service Bus message and timer tick to it. There is no FUNCTIONS_WORKER_RUNTIME on Flex; the
// runtime is functionAppConfig.runtime.
param name string
param location string = resourceGroup().location
param tags object = {}

param appServicePlanId string
param storageAccountName string
param deploymentStorageContainerName string
@description('Resource id of the user-assigned identity the host, the handler and the platform use.')
param identityId string
param appSettings object

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

resource stg 'Microsoft.Storage/storageAccounts@2022-09-01' existing = {
  name: storageAccountName
}

resource functions 'Microsoft.Web/sites@2023-12-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: appServicePlanId
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${stg.properties.primaryEndpoints.blob}${deploymentStorageContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
  }

  resource configAppSettings 'config' = {
    name: 'appsettings'
    properties: appSettings
  }
}

output name string = functions.name
output id string = functions.id
