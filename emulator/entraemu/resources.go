package entraemu

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Audiences of the Microsoft services the local Azure emulates, each by its URI and by its
// application ID: a client may name a resource either way in a scope.
const (
	KeyVaultResource   = "https://vault.azure.net"
	KeyVaultAppID      = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"
	ServiceBusResource = "https://servicebus.azure.net"
	ServiceBusAppID    = "80369ed6-5f11-4dd9-bef3-692475845e77"
)

// DefaultResources are the resources every tenant has a service principal for and that the
// local Azure serves: Microsoft Graph, Key Vault and Service Bus.
var DefaultResources = []string{GraphResource, GraphAppID, KeyVaultResource, KeyVaultAppID, ServiceBusResource, ServiceBusAppID}

// ResourceDirectory is an optional interface of a ClientAuthenticator: the resources the
// directory defines, which are its applications that have a service principal in the tenant,
// named by appId or by one of their identifierUris. The Graph emulator implements it, so a
// scope naming an app registered there is known as soon as Entra's replicas have it.
type ResourceDirectory interface {
	KnownResource(ctx context.Context, resource string) bool
}

// normalResource is how resources are compared: Entra ignores case and a trailing slash.
func normalResource(r string) string { return strings.ToLower(strings.TrimSuffix(r, "/")) }

// AddResource makes a resource known to the tenant, as a first-party service principal does in
// Entra: tokens may then be requested for it. Other emulators (Resource Manager, FHIR) add their
// audiences here.
func (s *Server) AddResource(audience string) error {
	if strings.TrimSpace(audience) == "" {
		return fmt.Errorf("entra: empty resource")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := normalResource(audience); !slices.Contains(s.resources, n) {
		s.resources = append(s.resources, n)
	}
	return nil
}

// Resources lists the resources known besides the directory's own applications, normalised
// (lower case, no trailing slash).
func (s *Server) Resources() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.resources)
}

// knownResource reports whether the tenant has a service principal for resource: one of the
// configured resources, or an app of the directory.
func (s *Server) knownResource(ctx context.Context, resource string) bool {
	n := normalResource(resource)
	s.mu.Lock()
	known := slices.Contains(s.resources, n)
	s.mu.Unlock()
	if known {
		return true
	}
	if dir, ok := s.clients.(ResourceDirectory); ok {
		return dir.KnownResource(ctx, resource)
	}
	return false
}

// aadUnknownResource is Entra's answer to a scope whose resource has no service principal in the
// tenant (a misspelt audience, an API not consented in this tenant).
func (s *Server) aadUnknownResource(resource string) aadError {
	return aadError{Error: "invalid_resource", Code: 500011,
		Description: fmt.Sprintf("The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", resource, s.tenantID)}
}
