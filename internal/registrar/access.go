package registrar

import (
	"context"
	"strings"
)

// FHIRRoles are the FHIR data-plane roles appreg knows by name, with their built-in role
// definition GUIDs (the same in every tenant). Which of them a request may ask for is a setting.
var FHIRRoles = map[string]string{
	"FHIR Data Reader":        "4c8d0bbc-75d3-4935-991f-5f3c56d81508",
	"FHIR Data Writer":        "3f88fce4-5892-4214-ae73-ba5294559913",
	"FHIR Data Exporter":      "3db33094-8700-4567-8da5-1501d4e7e843",
	"FHIR Data Contributor":   "5a1fc7df-4bf1-4951-a576-89034ee01acd",
	"FHIR Data Importer":      "4465e953-8ced-4406-a58e-0f6e3f3b530b",
	"FHIR Data Converter":     "a1705bd2-3a8f-45a5-8683-466fcfd5cc24",
	"FHIR Data Bulk Operator": "804db8d3-32c7-4ad4-a975-3f6f90d5f5f5",
	"FHIR SMART User":         "4ba50f17-9666-485c-a643-ff00808643f0",
}

// FHIRRoleName returns the canonical name of a FHIR role named in any letter case, or "".
func FHIRRoleName(name string) string {
	for n := range FHIRRoles {
		if strings.EqualFold(n, strings.TrimSpace(name)) {
			return n
		}
	}
	return ""
}

// RoleAssignment is an Azure role assignment: a principal holding a role at a scope.
type RoleAssignment struct {
	Name             string // the assignment's GUID name
	Scope            string // the ARM id it applies to
	PrincipalID      string
	RoleDefinitionID string // the role definition's GUID
}

// Access is the part of Azure Resource Manager the registrar uses: role assignments.
type Access interface {
	// Grant assigns roleID to the service principal at scope, under a name derived from all
	// three, so that granting again is harmless.
	Grant(ctx context.Context, scope, principalID, roleID string) (RoleAssignment, error)
	// Revoke removes an assignment; one already gone is not an error.
	Revoke(ctx context.Context, a RoleAssignment) error
	// List returns the principal's assignments at scope.
	List(ctx context.Context, scope, principalID string) ([]RoleAssignment, error)
}
