package armemu_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"

	"appreg/emulator/armemu"
)

func TestSDKCreateGetListDelete(t *testing.T) {
	f := newServer(t)
	ctx := context.Background()
	c := f.client(t, delegate)
	const name = "0b5f7c3e-1d2a-4c8e-9f10-2a3b4c5d6e7f"
	created, err := c.Create(ctx, strings.TrimPrefix(fhir, "/"), name, params(armemu.RoleFHIRDataReader, client, "ServicePrincipal"), nil)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	p := created.Properties
	if *created.Name != name || *p.Scope != fhir || *p.PrincipalID != client || *p.PrincipalType != "ServicePrincipal" ||
		*p.RoleDefinitionID != *roleRef(armemu.RoleFHIRDataReader) || *created.ID != fhir+"/providers/Microsoft.Authorization/roleAssignments/"+name {
		t.Errorf("created %+v %+v", created.RoleAssignment, *p)
	}
	// The same PUT again is harmless.
	if _, err := c.Create(ctx, strings.TrimPrefix(fhir, "/"), name, params(armemu.RoleFHIRDataReader, client, "ServicePrincipal"), nil); err != nil {
		t.Fatalf("Create again: %v", err)
	}
	got, err := c.Get(ctx, strings.TrimPrefix(fhir, "/"), name, nil)
	if err != nil || *got.Name != name {
		t.Fatalf("Get: %v %+v", err, got)
	}
	filter := "principalId eq '" + client + "'"
	pager := c.NewListForScopePager(strings.TrimPrefix(fhir, "/"), &armauthorization.RoleAssignmentsClientListForScopeOptions{Filter: &filter})
	var names []string
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Value {
			names = append(names, *a.Name)
		}
	}
	if len(names) != 1 || names[0] != name {
		t.Errorf("listed %v", names)
	}
	if !f.srv.Authorized(client, fhir, armemu.FHIRRead, f.clk.Now()) {
		t.Error("the reader cannot read")
	}
	if _, err := c.Delete(ctx, strings.TrimPrefix(fhir, "/"), name, nil); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := c.Delete(ctx, strings.TrimPrefix(fhir, "/"), name, nil); err != nil {
		t.Fatalf("Delete again (204): %v", err)
	}
	if _, err := c.Get(ctx, strings.TrimPrefix(fhir, "/"), name, nil); code(err) != "RoleAssignmentNotFound" {
		t.Errorf("Get after delete: %v", err)
	}
}

func TestCreateRefusals(t *testing.T) {
	const (
		name1 = "11111111-aaaa-4bbb-8ccc-000000000001"
		name2 = "11111111-aaaa-4bbb-8ccc-000000000002"
	)
	tests := []struct {
		name   string
		caller string
		setup  func(f fixture)
		assign string // assignment name
		params armauthorization.RoleAssignmentCreateParameters
		want   string
	}{
		{"NoRole", nobody, nil, name1, params(armemu.RoleFHIRDataReader, client, "ServicePrincipal"), "AuthorizationFailed"},
		{"ConditionRefusesRole", delegate, nil, name1, params(armemu.RoleFHIRDataContributor, client, "ServicePrincipal"), "AuthorizationFailed"},
		{"ConditionRefusesUser", delegate, nil, name1, params(armemu.RoleFHIRDataReader, client, "User"), "AuthorizationFailed"},
		{"ConditionNeedsPrincipalType", delegate, nil, name1, params(armemu.RoleFHIRDataReader, client, ""), "AuthorizationFailed"},
		{"ConditionAllows", delegate, nil, name1, params(armemu.RoleFHIRDataWriter, client, "ServicePrincipal"), ""},
		{"Exists", delegate, func(f fixture) {
			seed(t, f.srv, armemu.Assignment{Name: name2, Scope: fhir, RoleDefinitionID: armemu.RoleFHIRDataReader, PrincipalID: client, PrincipalType: "ServicePrincipal"})
		}, name1, params(armemu.RoleFHIRDataReader, client, "ServicePrincipal"), "RoleAssignmentExists"},
		{"UpdateNotPermitted", delegate, func(f fixture) {
			seed(t, f.srv, armemu.Assignment{Name: name1, Scope: fhir, RoleDefinitionID: armemu.RoleFHIRDataReader, PrincipalID: other, PrincipalType: "ServicePrincipal"})
		}, name1, params(armemu.RoleFHIRDataReader, client, "ServicePrincipal"), "RoleAssignmentUpdateNotPermitted"},
		{"PrincipalReplicating", owner, func(f fixture) { f.dir.add(client, f.clk.Now()) }, name1, params(armemu.RoleFHIRDataReader, client, ""), "PrincipalNotFound"},
		{"PrincipalUnknown", owner, nil, name1, params(armemu.RoleFHIRDataReader, client, ""), "PrincipalNotFound"},
		{"PrincipalReplicated", owner, func(f fixture) { f.dir.add(client, f.clk.Now().Add(-time.Minute)) }, name1, params(armemu.RoleFHIRDataReader, client, ""), ""},
		{"PrincipalTypeSkipsLookup", owner, nil, name1, params(armemu.RoleFHIRDataReader, client, "ServicePrincipal"), ""},
		{"NameNotAGUID", owner, nil, "reader", params(armemu.RoleFHIRDataReader, client, "ServicePrincipal"), "InvalidRoleAssignmentId"},
		{"UnknownRole", owner, nil, name1, params("00000000-1111-2222-3333-444444444444", client, "ServicePrincipal"), "RoleDefinitionDoesNotExist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newServer(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			_, err := f.client(t, tt.caller).Create(context.Background(), strings.TrimPrefix(fhir, "/"), tt.assign, tt.params, nil)
			if got := code(err); got != tt.want {
				t.Fatalf("code %q, want %q (%v)", got, tt.want, err)
			}
			if tt.want == "AuthorizationFailed" && !strings.Contains(err.Error(), "does not have authorization or an ABAC condition not fulfilled to perform action 'Microsoft.Authorization/roleAssignments/write'") {
				t.Errorf("message: %v", err)
			}
		})
	}
}

func TestDeleteUnderCondition(t *testing.T) {
	f := newServer(t)
	ctx := context.Background()
	reader := seed(t, f.srv, armemu.Assignment{Scope: fhir, RoleDefinitionID: armemu.RoleFHIRDataReader, PrincipalID: client, PrincipalType: "ServicePrincipal"})
	contributor := seed(t, f.srv, armemu.Assignment{Scope: fhir, RoleDefinitionID: armemu.RoleFHIRDataContributor, PrincipalID: client, PrincipalType: "ServicePrincipal"})
	c := f.client(t, delegate)
	if _, err := c.Delete(ctx, strings.TrimPrefix(fhir, "/"), contributor.Name, nil); code(err) != "AuthorizationFailed" {
		t.Errorf("the delegate removed a role its condition does not cover: %v", err)
	}
	if _, err := c.Delete(ctx, strings.TrimPrefix(fhir, "/"), reader.Name, nil); err != nil {
		t.Errorf("the delegate could not remove a role its condition covers: %v", err)
	}
}

func TestPropagation(t *testing.T) {
	f := newServer(t)
	ctx := context.Background()
	created := f.clk.Now()
	if _, err := f.client(t, delegate).Create(ctx, strings.TrimPrefix(fhir, "/"), "22222222-aaaa-4bbb-8ccc-000000000001", params(armemu.RoleFHIRDataReader, client, "ServicePrincipal"), nil); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(time.Minute)
	if _, err := f.client(t, delegate).Delete(ctx, strings.TrimPrefix(fhir, "/"), "22222222-aaaa-4bbb-8ccc-000000000001", nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		asOf time.Time
		want bool
	}{
		{"BeforeTheGrant", created.Add(-time.Second), false},
		{"AfterTheGrant", created.Add(time.Second), true},
		{"AfterTheRemoval", f.clk.Now().Add(time.Second), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := f.srv.Authorized(client, fhir+"/anything", armemu.FHIRRead, tt.asOf); got != tt.want {
				t.Errorf("Authorized = %v", got)
			}
		})
	}
	if f.srv.Authorized(client, fhir, "Microsoft.HealthcareApis/workspaces/fhirservices/resources/write", created.Add(time.Second)) {
		t.Error("a reader may write")
	}
}

// do sends a raw request with a token for oid ("" = none).
func do(t *testing.T, f fixture, method, path, oid string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL()+path, nil)
	if oid != "" {
		tok, err := credential{issuer: f.srv.Issuer(), oid: oid, audience: "https://management.core.windows.net/"}.GetToken(context.Background(), policyScopes())
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok.Token)
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return res.StatusCode, m, res.Header
}

func TestSubscriptionsAndTenantsForAzLogin(t *testing.T) {
	f := newServer(t)
	tests := []struct {
		name, path, oid string
		status          int
		want            string
	}{
		{"Anonymous", "/subscriptions?api-version=2022-12-01", "", 401, `"code":"AuthenticationFailed"`},
		{"NoApiVersion", "/subscriptions", owner, 400, `"code":"MissingApiVersionParameter"`},
		{"Owner", "/subscriptions?api-version=2022-12-01", owner, 200, `"subscriptionId":"` + sub + `"`},
		{"Delegate", "/subscriptions?api-version=2022-12-01", delegate, 200, `"state":"Enabled"`},
		{"Nobody", "/subscriptions?api-version=2022-12-01", nobody, 200, `"value":[]`},
		{"One", "/subscriptions/" + sub + "?api-version=2022-12-01", owner, 200, `"tenantId":"` + tenant + `"`},
		{"Tenants", "/tenants?api-version=2022-12-01", nobody, 200, `"tenantId":"` + tenant + `"`},
		{"RoleDefinitionByName", "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=roleName%20eq%20'FHIR%20Data%20Reader'", nobody, 200, armemu.RoleFHIRDataReader},
		{"RoleDefinition", "/providers/Microsoft.Authorization/roleDefinitions/" + armemu.RoleFHIRDataExporter + "?api-version=2022-04-01", nobody, 200, `export/action`},
		{"Elsewhere", "/subscriptions/" + sub + "/resourceGroups?api-version=2022-04-01", owner, 404, `"code":"NotFound"`},
		{"CloudMetadata", "/metadata/endpoints?api-version=2015-01-01", "", 200, `"loginEndpoint":"https://login.microsoftonline.com/"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, hdr := do(t, f, http.MethodGet, tt.path, tt.oid)
			b, _ := json.Marshal(body)
			if status != tt.status || !strings.Contains(string(b), tt.want) {
				t.Errorf("%d %s, want %d with %s", status, b, tt.status, tt.want)
			}
			if status == 401 && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer authorization_uri=") {
				t.Errorf("401 without a challenge: %q", hdr.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	f := newServer(t)
	tests := []struct {
		name string
		cred credential
		want string
	}{
		{"WrongAudience", credential{issuer: f.srv.Issuer(), oid: owner, audience: "https://vault.azure.net"}, "InvalidAuthenticationTokenAudience"},
		{"WrongTenant", credential{issuer: f.srv.Issuer(), oid: owner, tenant: "99999999-2222-3333-4444-555555555555"}, "InvalidAuthenticationTokenTenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := armauthorization.NewRoleAssignmentsClient(sub, tt.cred, f.options())
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Get(context.Background(), strings.TrimPrefix(fhir, "/"), "11111111-aaaa-4bbb-8ccc-000000000001", nil)
			if code(err) != tt.want {
				t.Errorf("code %q, want %q", code(err), tt.want)
			}
		})
	}
}

func TestControls(t *testing.T) {
	f := newServer(t)
	post := func(path, body string) int {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL()+path, strings.NewReader(body))
		res, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if s := post("/_emu/arm/assignments", `{"scope":"`+fhir+`","role":"FHIR Data Reader","principalId":"`+client+`","principalType":"ServicePrincipal"}`); s != 200 {
		t.Fatalf("seed: %d", s)
	}
	if !f.srv.Authorized(client, fhir, armemu.FHIRRead, epoch.Add(-time.Hour)) {
		t.Error("a seeded assignment is not in force at once")
	}
	f.srv.SetPrincipalLag(time.Hour, true)
	_, err := f.client(t, delegate).Create(context.Background(), strings.TrimPrefix(fhir, "/"), "33333333-aaaa-4bbb-8ccc-000000000001", params(armemu.RoleFHIRDataWriter, other, "ServicePrincipal"), nil)
	if code(err) != "PrincipalNotFound" || !strings.Contains(err.Error(), "replication delay") {
		t.Errorf("with the lag applied to principalType too: %v", err)
	}
	f.srv.Reset()
	if st := f.srv.State(); len(st.Assignments) != 3 {
		t.Errorf("after Reset: %+v", st.Assignments)
	}
	if err := f.srv.InjectFault(armemu.Fault{Operation: armemu.OpCreateRoleAssignment, Status: 400, Code: "PrincipalNotFound", Count: 1}); err != nil {
		t.Fatal(err)
	}
	_, err = f.client(t, delegate).Create(context.Background(), strings.TrimPrefix(fhir, "/"), "33333333-aaaa-4bbb-8ccc-000000000001", params(armemu.RoleFHIRDataWriter, other, "ServicePrincipal"), nil)
	if code(err) != "PrincipalNotFound" || !strings.Contains(err.Error(), strings.ReplaceAll(other, "-", "")) {
		t.Errorf("injected PrincipalNotFound: %v", err)
	}
}
