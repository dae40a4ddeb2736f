// The Microsoft Graph application permission appreg needs, as code: an app role assignment of
// Application.ReadWrite.OwnedBy on Microsoft Graph's service principal to appreg's managed
// identity. It is an admin consent, so it is kept apart from infra/main.bicep: the person who runs
// `azd up` rarely holds an Entra admin role, and this file is all a Privileged Role Administrator
// has to review. Run it before the app's code first starts (the README runbook); the same grant
// without Bicep is scripts/grant-graph-permission.sh.
//
//   az deployment group create --resource-group <rg> --template-file infra/graph/main.bicep \
//     --parameters principalId=<APPREG_IDENTITY_PRINCIPAL_ID>
//
// Needs Bicep 0.36.1 or later (the Graph extension's GA types, bicepconfig.json beside this file).
// The deploying user needs AppRoleAssignment.ReadWrite.All and Application.Read.All in Graph terms,
// which in practice is the Privileged Role Administrator (or Global Administrator) Entra role, and
// permission to create a deployment in the resource group (Microsoft.Resources/deployments/write).
extension microsoftGraphV1

@description('Object (principal) id of appreg\'s user-assigned managed identity: azd env get-value APPREG_IDENTITY_PRINCIPAL_ID')
param principalId string

// Microsoft Graph's application id is the same in every tenant.
var graphAppId = '00000003-0000-0000-c000-000000000000' // Microsoft Graph (application id)

// "Manage apps that this app creates or owns": create applications (the identity becomes their
// owner) and manage their passwords, and nothing on any other app. Application.ReadWrite.All is
// neither needed nor wanted. Id from the Microsoft Graph permissions reference,
// https://learn.microsoft.com/graph/permissions-reference#applicationreadwriteownedby
var applicationReadWriteOwnedBy = '18a4783c-866b-4cc7-a460-3d5e5662c884' // Application.ReadWrite.OwnedBy (Graph app role)

resource msGraphSP 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: graphAppId
}

resource ownedBy 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  principalId: principalId
  resourceId: msGraphSP.id
  appRoleId: applicationReadWriteOwnedBy
}

output appRoleAssignmentId string = ownedBy.id
output graphServicePrincipalId string = msGraphSP.id
