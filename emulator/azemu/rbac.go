package azemu

import (
	"fmt"
	"strings"

	"appreg/emulator/armemu"
)

// OperatorClientName is the display name of the seeded identity a person or a test operates
// the local Azure as: Owner of the subscription and full data rights on the vault and the
// namespace, like a subscription administrator who deployed appreg.
const OperatorClientName = "appreg-operator"

// ResourceGroup holds every resource of the local Azure's one subscription.
const ResourceGroup = "azemu"

// FHIRService names one FHIR service of an Azure Health Data Services workspace.
type FHIRService struct {
	Workspace, Name string
}

// DefaultFHIRServices is the one FHIR service azemu serves unless told otherwise.
var DefaultFHIRServices = []FHIRService{{Workspace: "azemu", Name: "fhir"}}

// DefaultDelegatedFHIRRoles are the FHIR roles appreg's identity may assign, as appreg's
// FHIR_ALLOWED_ROLES allows by default: Reader, Writer and Exporter.
var DefaultDelegatedFHIRRoles = []string{armemu.RoleFHIRDataReader, armemu.RoleFHIRDataWriter, armemu.RoleFHIRDataExporter}

func resourceID(sub, provider, name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/%s/%s", sub, ResourceGroup, provider, name)
}

// FHIRServiceID is the ARM id of an AHDS FHIR service in the local subscription.
func FHIRServiceID(sub string, f FHIRService) string {
	return resourceID(sub, "Microsoft.HealthcareApis", "workspaces/"+strings.ToLower(f.Workspace)+"/fhirservices/"+strings.ToLower(f.Name))
}

// seedRBAC creates the resources Resource Manager knows and the role assignments a deployment
// makes (infra/): appreg's identities — its managed identity and its client — get Key Vault
// Secrets Officer on the vault, Service Bus Data Sender and Data Receiver on the namespace, and
// Role Based Access Control Administrator on each FHIR service under the condition that limits
// it to the delegated FHIR roles and to service principals; the operator owns the subscription
// and holds the vault's and the namespace's data roles.
func (s *Server) seedRBAC(appreg []string, operator string, fhirIDs, delegated []string) error {
	for _, id := range append([]string{s.endpoints.KeyVaultID, s.endpoints.ServiceBusID}, fhirIDs...) {
		if err := s.ARM.AddResource(id); err != nil {
			return err
		}
	}
	type grant struct {
		scope, role, principal, condition string
	}
	var grants []grant
	for _, p := range appreg {
		grants = append(grants,
			grant{s.endpoints.KeyVaultID, armemu.RoleKeyVaultSecretsOfficer, p, ""},
			grant{s.endpoints.ServiceBusID, armemu.RoleServiceBusDataSender, p, ""},
			grant{s.endpoints.ServiceBusID, armemu.RoleServiceBusDataReceiver, p, ""})
		for _, id := range fhirIDs {
			grants = append(grants, grant{id, armemu.RoleRBACAdministrator, p, armemu.DelegationCondition(delegated)})
		}
	}
	grants = append(grants,
		grant{"/subscriptions/" + s.ARM.SubscriptionID(), armemu.RoleOwner, operator, ""},
		grant{s.endpoints.KeyVaultID, armemu.RoleKeyVaultSecretsOfficer, operator, ""},
		grant{s.endpoints.ServiceBusID, armemu.RoleServiceBusDataOwner, operator, ""})
	for _, g := range grants {
		if _, err := s.ARM.Seed(armemu.Assignment{Scope: g.scope, RoleDefinitionID: g.role, PrincipalID: g.principal,
			PrincipalType: "ServicePrincipal", Condition: g.condition}); err != nil {
			return fmt.Errorf("azemu: %w", err)
		}
	}
	return nil
}
