package armemu_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"

	"appreg/emulator/armemu"
	"appreg/emulator/internal/token"
	"appreg/internal/testutil"
)

const (
	tenant = "11111111-2222-3333-4444-555555555555"
	sub    = armemu.DefaultSubscriptionID
	fhir   = "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws/fhirservices/fhir"
	// principals
	owner    = "aaaaaaaa-0000-4000-8000-000000000001"
	delegate = "aaaaaaaa-0000-4000-8000-000000000002"
	nobody   = "aaaaaaaa-0000-4000-8000-000000000003"
	client   = "bbbbbbbb-0000-4000-8000-000000000001"
	other    = "bbbbbbbb-0000-4000-8000-000000000002"
)

// epoch is the tests' "now".
var epoch = time.Unix(1_780_000_000, 0).UTC()

// directory is the principals Entra has, with when each was created.
type directory struct {
	mu      sync.Mutex
	created map[string]time.Time
}

func (d *directory) LookupPrincipal(_ context.Context, id string) (string, time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.created[strings.ToLower(id)]
	return "ServicePrincipal", t, ok
}

func (d *directory) add(id string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.created[id] = at
}

// credential signs tokens for a principal with the emulator's issuer, standing in for Entra.
type credential struct {
	issuer   *token.Issuer
	oid      string
	audience string // "" = from the scope
	tenant   string // "" = the test tenant
}

func (c credential) GetToken(_ context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	aud := c.audience
	if aud == "" {
		aud = strings.TrimSuffix(opts.Scopes[0], "/.default")
	}
	tid := c.tenant
	if tid == "" {
		tid = tenant
	}
	raw, err := c.issuer.Sign(token.Claims{Issuer: "https://sts.windows.net/" + tid + "/", Audience: aud, TenantID: tid, AppID: "app-" + c.oid[:8], ObjectID: c.oid, Subject: c.oid})
	return azcore.AccessToken{Token: raw, ExpiresOn: time.Now().Add(time.Hour)}, err
}

type fixture struct {
	srv *armemu.Server
	clk *testutil.Clock
	dir *directory
}

// newServer starts Resource Manager with a FHIR service, an Owner on the subscription and a
// Role Based Access Control Administrator on the FHIR service limited to FHIR Data Reader and
// Writer for service principals.
func newServer(tb testing.TB) fixture {
	tb.Helper()
	clk := testutil.NewClock(epoch)
	dir := &directory{created: map[string]time.Time{}}
	issuer, err := token.NewIssuer(time.Now)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := armemu.NewServer(&armemu.Options{Issuer: issuer, TenantID: tenant, Directory: dir, Now: clk.Now, PrincipalLag: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Close)
	if err := srv.AddResource(fhir); err != nil {
		tb.Fatal(err)
	}
	seed(tb, srv, armemu.Assignment{Scope: "/subscriptions/" + sub, RoleDefinitionID: armemu.RoleOwner, PrincipalID: owner})
	seed(tb, srv, armemu.Assignment{Scope: fhir, RoleDefinitionID: armemu.RoleRBACAdministrator, PrincipalID: delegate,
		Condition: armemu.DelegationCondition([]string{armemu.RoleFHIRDataReader, armemu.RoleFHIRDataWriter})})
	return fixture{srv: srv, clk: clk, dir: dir}
}

func seed(tb testing.TB, srv *armemu.Server, a armemu.Assignment) armemu.Assignment {
	tb.Helper()
	got, err := srv.Seed(a)
	if err != nil {
		tb.Fatal(err)
	}
	return got
}

// client is the real armauthorization client signed in as principal oid.
func (f fixture) client(tb testing.TB, oid string) *armauthorization.RoleAssignmentsClient {
	tb.Helper()
	c, err := armauthorization.NewRoleAssignmentsClient(sub, credential{issuer: f.srv.Issuer(), oid: oid}, f.options())
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func (f fixture) options() *arm.ClientOptions {
	return &arm.ClientOptions{
		ClientOptions: policy.ClientOptions{
			Cloud: cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Endpoint: f.srv.URL(), Audience: "https://management.azure.com"},
			}},
			Transport: f.srv.Client(),
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableRPRegistration: true,
	}
}

func roleRef(id string) *string {
	s := "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/" + id
	return &s
}

func ptr[T any](v T) *T { return &v }

// params is a create body; principalType "" leaves it out.
func params(roleID, principalID, principalType string) armauthorization.RoleAssignmentCreateParameters {
	p := armauthorization.RoleAssignmentCreateParameters{Properties: &armauthorization.RoleAssignmentProperties{
		RoleDefinitionID: roleRef(roleID), PrincipalID: ptr(principalID),
	}}
	if principalType != "" {
		p.Properties.PrincipalType = ptr(armauthorization.PrincipalType(principalType))
	}
	return p
}

// code is an SDK error's ARM error code ("" for nil).
func code(err error) string {
	if err == nil {
		return ""
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return err.Error()
}

func policyScopes() policy.TokenRequestOptions {
	return policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}}
}
