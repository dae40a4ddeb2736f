// The vault that holds every client secret appreg issues. Access is Azure RBAC only (no access
// policies), so "Key Vault Secrets Officer" for appreg and "Key Vault Secrets User" on a single
// secret for each consumer are all there is to grant.
param name string
param location string = resourceGroup().location
param tags object = {}

// Soft delete is always on for new vaults; the retention is how long a deleted vault or secret
// can be recovered, and how long its name stays taken.
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

// Purge protection forbids purging before the retention ends, even by the owner; once on it can
// never be turned off. ARM refuses an explicit false, so "off" is the property left out.
param enablePurgeProtection bool = true

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: enablePurgeProtection ? true : null
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
