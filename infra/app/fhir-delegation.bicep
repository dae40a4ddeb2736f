// Constrained delegation on one FHIR service: appreg's identity may create and delete role
// assignments there, but only of the allow-listed FHIR data roles and only for service principals
// (the clients it registers). Without the condition, Role Based Access Control Administrator could
// grant anyone any role on the service, Owner included. The condition is Microsoft's "Constrain
// roles and principal types" template: the write rule checks the request, the delete rule the
// existing assignment, and each needs its own sub-condition.
//
// Deployed into the FHIR service's resource group (a module scope), so whoever runs it needs
// Microsoft.Authorization/roleAssignments/write on that service.
param workspaceName string
param fhirServiceName string
@description('Object (principal) id of appreg\'s user-assigned managed identity.')
param principalId string
@description('FHIR role names appreg may assign; must match the handler\'s FHIR_ALLOWED_ROLES.')
param allowedRoles array

var roleBasedAccessControlAdministrator = 'f58310d9-a9f6-439a-9e8d-f62e7b41a168' // Role Based Access Control Administrator

// The FHIR data roles by built-in name, as internal/registrar.FHIRRoles lists them.
var fhirRoleIds = {
  'FHIR Data Reader': '4c8d0bbc-75d3-4935-991f-5f3c56d81508'
  'FHIR Data Writer': '3f88fce4-5892-4214-ae73-ba5294559913'
  'FHIR Data Exporter': '3db33094-8700-4567-8da5-1501d4e7e843'
  'FHIR Data Contributor': '5a1fc7df-4bf1-4951-a576-89034ee01acd'
  'FHIR Data Importer': '4465e953-8ced-4406-a58e-0f6e3f3b530b'
  'FHIR Data Converter': 'a1705bd2-3a8f-45a5-8683-466fcfd5cc24'
  'FHIR Data Bulk Operator': '804db8d3-32c7-4ad4-a975-3f6f90d5f5f5'
  'FHIR SMART User': '4ba50f17-9666-485c-a643-ff00808643f0'
}

var allowedRoleIds = join(map(allowedRoles, role => fhirRoleIds[role]), ', ')

var writeRule = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${allowedRoleIds}} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'}))'
var deleteRule = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${allowedRoleIds}} AND @Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'}))'

resource workspace 'Microsoft.HealthcareApis/workspaces@2023-11-01' existing = {
  name: workspaceName
}

resource fhirService 'Microsoft.HealthcareApis/workspaces/fhirservices@2023-11-01' existing = {
  parent: workspace
  name: fhirServiceName
}

resource rbacAdministrator 'Microsoft.Authorization/roleAssignments@2020-04-01-preview' = {
  name: guid(fhirService.id, principalId, roleBasedAccessControlAdministrator)
  scope: fhirService
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleBasedAccessControlAdministrator)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'appreg grants and revokes the allow-listed FHIR data roles for the clients it registers'
    condition: '${writeRule} AND ${deleteRule}'
    conditionVersion: '2.0'
  }
}

output roleAssignmentId string = rbacAdministrator.id
output fhirServiceId string = fhirService.id
