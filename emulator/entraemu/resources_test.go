package entraemu_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"appreg/emulator/entraemu"
)

// TestUnknownResource: Entra issues tokens only for resources with a service principal in the
// tenant; anything else is AADSTS500011, which azidentity reports as an authentication failure.
func TestUnknownResource(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t)
	cred, err := azidentity.NewClientSecretCredential(srv.TenantID(), clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: clientOptions(srv), DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, scope string
		known       bool
	}{
		{"Graph", "https://graph.microsoft.com/.default", true},
		{"GraphTrailingSlash", "https://graph.microsoft.com//.default", true}, // the form az asks for
		{"GraphByAppID", entraemu.GraphAppID + "/.default", true},
		{"GraphAnyCase", "https://Graph.Microsoft.com/.default", true},
		{"KeyVault", "https://vault.azure.net/.default", true},
		{"KeyVaultByAppID", entraemu.KeyVaultAppID + "/.default", true},
		{"ServiceBus", "https://servicebus.azure.net/.default", true},
		{"Typo", "https://graph.microsoft.con/.default", false},
		{"FHIRNotAdded", "https://ws-fhir.fhir.azurehealthcareapis.com/.default", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{tt.scope}})
			var afe *azidentity.AuthenticationFailedError
			switch {
			case tt.known && err != nil:
				t.Fatalf("GetToken: %v", err)
			case !tt.known && (!errors.As(err, &afe) || afe.RawResponse.StatusCode != http.StatusBadRequest || !strings.Contains(err.Error(), "AADSTS500011")):
				t.Fatalf("GetToken = %v, want a 400 AADSTS500011", err)
			}
		})
	}

	// The raw body is Entra's, with error invalid_resource.
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {"https://nowhere.example/.default"}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+"/"+srv.TenantID()+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	status, body := do(t, srv.Client(), req)
	if status != http.StatusBadRequest {
		t.Fatalf("status %d", status)
	}
	checkAADError(t, body, "invalid_resource", 500011)
	if desc, _ := body["error_description"].(string); !strings.Contains(desc, "The resource principal named https://nowhere.example was not found in the tenant") {
		t.Errorf("description %q", desc)
	}

	// Another emulator (Resource Manager, FHIR) makes its audience known.
	fhir := "https://ws-fhir.fhir.azurehealthcareapis.com"
	if err := srv.AddResource(fhir + "/"); err != nil {
		t.Fatal(err)
	}
	if _, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{fhir + "/.default"}}); err != nil {
		t.Errorf("after AddResource: %v", err)
	}
	if !slices.Contains(srv.Resources(), fhir) {
		t.Errorf("Resources() = %v", srv.Resources())
	}
}

// directoryWithResources is a ClientAuthenticator that also defines resources, as Graph does with
// registered apps.
type directoryWithResources struct {
	fakeDirectory
	apps []string
}

func (d *directoryWithResources) KnownResource(_ context.Context, r string) bool {
	return slices.Contains(d.apps, strings.TrimSuffix(r, "/"))
}

func TestDirectoryResources(t *testing.T) {
	t.Parallel()
	dir := &directoryWithResources{apps: []string{"api://lab-api"}}
	srv, err := entraemu.NewServer(&entraemu.Options{Clients: dir, Resources: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	for scope, want := range map[string]int{"api://lab-api/.default": 200, "https://graph.microsoft.com/.default": 400} {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {scope}}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+"/"+srv.TenantID()+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if status, _ := do(t, srv.Client(), req); status != want {
			t.Errorf("%s: %d, want %d (Resources: [] leaves only the directory's)", scope, status, want)
		}
	}
}

// rolesDirectory is one managed identity whose roles a test changes, as an admin consent does.
type rolesDirectory struct {
	fakeDirectory
	mu    sync.Mutex
	roles []string
}

func (d *rolesDirectory) ManagedIdentity(_ context.Context, id string) (entraemu.Principal, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return entraemu.Principal{AppID: systemMI, ObjectID: "sys-oid", Roles: slices.Clone(d.roles)}, nil
}

// TestManagedIdentityTokensKeepTheirRoles: the platform caches managed-identity tokens, so a
// role granted after a token was issued reaches no token until that one expires.
func TestManagedIdentityTokensKeepTheirRoles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cache     bool
		wantStale bool
	}{
		{"Cached", true, true},
		{"Uncached", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := &rolesDirectory{}
			srv, err := entraemu.NewServer(&entraemu.Options{Clients: dir, CacheManagedIdentityTokens: tt.cache})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Close)
			get := func() []string {
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.MSIURL()+"?api-version=2019-08-01&resource=https://graph.microsoft.com", nil)
				req.Header.Set("X-IDENTITY-HEADER", srv.MSIHeader())
				status, body := do(t, http.DefaultClient, req)
				if status != http.StatusOK {
					t.Fatalf("msi: %d %v", status, body)
				}
				c, err := srv.Issuer().Verify(body["access_token"].(string), entraemu.GraphResource)
				if err != nil {
					t.Fatal(err)
				}
				return c.Roles
			}
			if got := get(); len(got) != 0 {
				t.Fatalf("roles before the grant: %v", got)
			}
			dir.mu.Lock()
			dir.roles = []string{graphRole}
			dir.mu.Unlock()
			if got := get(); (len(got) == 0) != tt.wantStale {
				t.Errorf("roles right after the grant: %v (cached platform: %v)", got, tt.cache)
			}
			srv.ForgetTokens() // the cached token expires
			if got := get(); !slices.Equal(got, []string{graphRole}) {
				t.Errorf("roles of a new token: %v", got)
			}
		})
	}
}

// TestManagedIdentityUnknownResource: the platform passes Entra's AADSTS500011 on.
func TestManagedIdentityUnknownResource(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.MSIURL()+"?api-version=2019-08-01&resource=https://nowhere.example", nil)
	req.Header.Set("X-IDENTITY-HEADER", srv.MSIHeader())
	status, body := do(t, http.DefaultClient, req)
	if msg, _ := body["message"].(string); status != http.StatusBadRequest || !strings.HasPrefix(msg, "AADSTS500011: ") {
		t.Errorf("msi for an unknown resource: %d %v", status, body)
	}
}
