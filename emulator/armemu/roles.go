package armemu

import (
	"strings"
)

// RoleDefinition is a built-in Azure role: what it allows on the control plane (Actions) and on
// data planes (DataActions). Patterns may hold '*' wildcards, as in Azure.
type RoleDefinition struct {
	ID             string // the GUID, the same in every tenant
	Name           string
	Description    string
	Actions        []string
	NotActions     []string
	DataActions    []string
	NotDataActions []string
}

// Built-in role GUIDs the emulator knows.
const (
	RoleOwner                      = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
	RoleReader                     = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
	RoleUserAccessAdministrator    = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
	RoleRBACAdministrator          = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
	RoleFHIRDataReader             = "4c8d0bbc-75d3-4935-991f-5f3c56d81508"
	RoleFHIRDataWriter             = "3f88fce4-5892-4214-ae73-ba5294559913"
	RoleFHIRDataContributor        = "5a1fc7df-4bf1-4951-a576-89034ee01acd"
	RoleFHIRDataExporter           = "3db33094-8700-4567-8da5-1501d4e7e843"
	RoleFHIRDataImporter           = "4465e953-8ced-4406-a58e-0f6e3f3b530b"
	RoleFHIRDataConverter          = "a1705bd2-3a8f-45a5-8683-466fcfd5cc24"
	RoleFHIRDataBulkOperator       = "804db8d3-32c7-4ad4-a975-3f6f90d5f5f5"
	RoleFHIRSMARTUser              = "4ba50f17-9666-485c-a643-ff00808643f0"
	RoleKeyVaultSecretsOfficer     = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
	RoleKeyVaultSecretsUser        = "4633458b-17de-408a-b874-0445c86b69e6"
	RoleKeyVaultCertificatesOff    = "a4417e6f-fecd-4de8-b567-7b0420556985"
	RoleKeyVaultDataAccessAdmin    = "8b54135c-b56d-4d72-a534-26097cfdc8d8"
	RoleServiceBusDataOwner        = "090c5cfd-751d-490a-894a-3ce6f1109419"
	RoleServiceBusDataReceiver     = "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"
	RoleServiceBusDataSender       = "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"
	roleAssignmentsWrite           = "Microsoft.Authorization/roleAssignments/write"
	roleAssignmentsDelete          = "Microsoft.Authorization/roleAssignments/delete"
	roleAssignmentsRead            = "Microsoft.Authorization/roleAssignments/read"
	subscriptionsRead              = "Microsoft.Resources/subscriptions/read"
	fhirWorkspaces, fhirAPIService = "Microsoft.HealthcareApis/workspaces/fhirservices/resources/", "Microsoft.HealthcareApis/services/fhir/resources/"
)

// Data actions the data-plane emulators ask about.
const (
	// FHIRRead is reading or searching resources of an Azure Health Data Services FHIR service.
	FHIRRead = fhirWorkspaces + "read"
	// ServiceBusSend and ServiceBusReceive are Service Bus's two message data actions.
	ServiceBusSend    = "Microsoft.ServiceBus/namespaces/messages/send/action"
	ServiceBusReceive = "Microsoft.ServiceBus/namespaces/messages/receive/action"
)

// fhirBoth lists a FHIR data action for both FHIR products, as the built-in roles do.
func fhirBoth(actions ...string) []string {
	var out []string
	for _, a := range actions {
		out = append(out, fhirAPIService+a, fhirWorkspaces+a)
	}
	return out
}

// builtInRoles are the roles appreg, its deployment and its tests use. The FHIR roles' data
// actions follow the built-in definitions (Reader reads and searches; Exporter adds export;
// Writer adds write, delete and the operations; Contributor is everything but SMART).
var builtInRoles = []RoleDefinition{
	{ID: RoleOwner, Name: "Owner", Description: "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
		Actions: []string{"*"}},
	{ID: RoleReader, Name: "Reader", Description: "View all resources, but does not allow you to make any changes.",
		Actions: []string{"*/read"}},
	{ID: RoleUserAccessAdministrator, Name: "User Access Administrator", Description: "Lets you manage user access to Azure resources.",
		Actions: []string{"*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"}},
	{ID: RoleRBACAdministrator, Name: "Role Based Access Control Administrator", Description: "Manage access to Azure resources by assigning roles using Azure RBAC. This role does not allow you to manage access using other ways, such as Azure Policy.",
		Actions: []string{roleAssignmentsWrite, roleAssignmentsDelete, "*/read", "Microsoft.Support/*"}},
	{ID: RoleFHIRDataReader, Name: "FHIR Data Reader", Description: "Role allows user or principal to read FHIR Data",
		DataActions: fhirBoth("read")},
	{ID: RoleFHIRDataExporter, Name: "FHIR Data Exporter", Description: "Role allows user or principal to read and export FHIR Data",
		DataActions: fhirBoth("read", "export/action")},
	{ID: RoleFHIRDataWriter, Name: "FHIR Data Writer", Description: "Role allows user or principal to read and write FHIR Data",
		DataActions: fhirBoth("read", "write", "delete", "export/action", "resourceValidate/action", "reindex/action", "convertData/action", "editProfileDefinitions/action", "import/action")},
	{ID: RoleFHIRDataContributor, Name: "FHIR Data Contributor", Description: "Role allows user or principal full access to FHIR Data",
		DataActions: fhirBoth("*"), NotDataActions: fhirBoth("smart/action")},
	{ID: RoleFHIRDataImporter, Name: "FHIR Data Importer", Description: "Role allows user or principal to read and import FHIR Data",
		DataActions: fhirBoth("read", "import/action")},
	{ID: RoleFHIRDataConverter, Name: "FHIR Data Converter", Description: "Role allows user or principal to convert data from legacy format to FHIR",
		DataActions: fhirBoth("convertData/action")},
	{ID: RoleFHIRDataBulkOperator, Name: "FHIR Data Bulk Operator", Description: "Role allows user or principal to perform bulk operations on FHIR Data",
		DataActions: fhirBoth("read", "bulkOperations/action")},
	{ID: RoleFHIRSMARTUser, Name: "FHIR SMART User", Description: "Role allows user to access FHIR Service according to SMART on FHIR specification",
		DataActions: fhirBoth("read", "write", "smart/action")},
	{ID: RoleKeyVaultSecretsOfficer, Name: "Key Vault Secrets Officer", Description: "Perform any action on the secrets of a key vault, except manage permissions.",
		Actions:     []string{"Microsoft.Authorization/*/read", "Microsoft.KeyVault/checkNameAvailability/read", "Microsoft.KeyVault/deletedVaults/read", "Microsoft.KeyVault/locations/*/read", "Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/operations/read"},
		DataActions: []string{"Microsoft.KeyVault/vaults/secrets/*"}},
	{ID: RoleKeyVaultSecretsUser, Name: "Key Vault Secrets User", Description: "Read secret contents.",
		DataActions: []string{"Microsoft.KeyVault/vaults/secrets/getSecret/action", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"}},
	{ID: RoleKeyVaultCertificatesOff, Name: "Key Vault Certificates Officer", Description: "Perform any action on the certificates of a key vault, except manage permissions.",
		DataActions: []string{"Microsoft.KeyVault/vaults/certificatecas/*", "Microsoft.KeyVault/vaults/certificates/*", "Microsoft.KeyVault/vaults/certificatecontacts/*"}},
	{ID: RoleKeyVaultDataAccessAdmin, Name: "Key Vault Data Access Administrator", Description: "Manage access to Azure Key Vault by adding or removing role assignments for the Key Vault roles.",
		Actions: []string{roleAssignmentsWrite, roleAssignmentsDelete, "Microsoft.Authorization/*/read", "Microsoft.Resources/deployments/*", "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.KeyVault/vaults/*/read"}},
	{ID: RoleServiceBusDataOwner, Name: "Azure Service Bus Data Owner", Description: "Allows for full access to Azure Service Bus resources.",
		Actions: []string{"Microsoft.ServiceBus/*"}, DataActions: []string{"Microsoft.ServiceBus/*"}},
	{ID: RoleServiceBusDataReceiver, Name: "Azure Service Bus Data Receiver", Description: "Allows for receive access to Azure Service Bus resources.",
		Actions:     []string{"Microsoft.ServiceBus/*/queues/read", "Microsoft.ServiceBus/*/topics/read", "Microsoft.ServiceBus/*/topics/subscriptions/read"},
		DataActions: []string{"Microsoft.ServiceBus/*/receive/action"}},
	{ID: RoleServiceBusDataSender, Name: "Azure Service Bus Data Sender", Description: "Allows for send access to Azure Service Bus resources.",
		Actions:     []string{"Microsoft.ServiceBus/*/queues/read", "Microsoft.ServiceBus/*/topics/read", "Microsoft.ServiceBus/*/topics/subscriptions/read"},
		DataActions: []string{"Microsoft.ServiceBus/*/send/action"}},
}

// Role returns a built-in role by GUID (any letter case).
func Role(id string) (RoleDefinition, bool) {
	for _, r := range builtInRoles {
		if strings.EqualFold(r.ID, id) {
			return r, true
		}
	}
	return RoleDefinition{}, false
}

// RoleByName returns a built-in role by its name (any letter case).
func RoleByName(name string) (RoleDefinition, bool) {
	for _, r := range builtInRoles {
		if strings.EqualFold(r.Name, name) {
			return r, true
		}
	}
	return RoleDefinition{}, false
}

// allowsAction reports whether the role grants a control-plane action.
func (r RoleDefinition) allowsAction(action string) bool {
	return matchesAny(r.Actions, action) && !matchesAny(r.NotActions, action)
}

// allowsDataAction reports whether the role grants a data action.
func (r RoleDefinition) allowsDataAction(action string) bool {
	return matchesAny(r.DataActions, action) && !matchesAny(r.NotDataActions, action)
}

func matchesAny(patterns []string, action string) bool {
	for _, p := range patterns {
		if actionMatches(p, action) {
			return true
		}
	}
	return false
}

// actionMatches applies an Azure RBAC action pattern: case-insensitive, where '*' stands for any
// run of characters, slashes included ("Microsoft.ServiceBus/*/send/action").
func actionMatches(pattern, action string) bool {
	p, a := strings.ToLower(pattern), strings.ToLower(action)
	parts := strings.Split(p, "*")
	if len(parts) == 1 {
		return p == a
	}
	if !strings.HasPrefix(a, parts[0]) {
		return false
	}
	a = a[len(parts[0]):]
	for i, part := range parts[1:] {
		last := i == len(parts)-2
		if last {
			return strings.HasSuffix(a, part)
		}
		j := strings.Index(a, part)
		if j < 0 {
			return false
		}
		a = a[j+len(part):]
	}
	return true
}
