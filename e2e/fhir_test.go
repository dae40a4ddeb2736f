package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"appreg/emulator/armemu"
	"appreg/emulator/azemu"
	"appreg/internal/registrar"
)

// The FHIR service's 403 body, id aside, as the managed service sends it.
const fhirForbidden = `{"resourceType":"OperationOutcome","id":"<id>","issue":[{"severity":"error","code":"forbidden","diagnostics":"Authorization failed."}]}`

var outcomeID = regexp.MustCompile(`"id":"[0-9a-f]{32}"`)

// readPatients reads <url>/Patient?_count=1 as the client appID would: a client_credentials token
// for the service's audience with its secret, then the search.
func (s *stack) readPatients(appID, secret, url string) (int, string) {
	s.t.Helper()
	ep := s.emu.Endpoints()
	cred, err := azidentity.NewClientSecretCredential(ep.TenantID, appID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{Transport: s.emu.Client(), Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: ep.AuthorityHost}}, DisableInstanceDiscovery: true})
	if err != nil {
		s.t.Fatal(err)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{url + "/.default"}})
	if err != nil {
		s.t.Fatalf("token for %s: %v", url, err)
	}
	req, _ := http.NewRequest(http.MethodGet, url+"/Patient?_count=1", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	res, err := s.emu.Client().Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// fhirRoles lists the FHIR role names a principal holds on a scope.
func (s *stack) fhirRoles(principalID, scope string) []string {
	var out []string
	for _, a := range s.emu.ARM.Assignments() {
		if a.PrincipalID == principalID && strings.EqualFold(a.Scope, scope) {
			r, _ := armemu.Role(a.RoleDefinitionID)
			out = append(out, r.Name)
		}
	}
	slices.Sort(out)
	return out
}

// TestFHIRAccessLifecycle is issue 10's acceptance through funchost, the handler binary, the
// CLI and the real SDKs: a grant proven with the client's own secret, idempotent redelivery,
// a removed role, a client without a grant refused, and offboarding twice.
func TestFHIRAccessLifecycle(t *testing.T) {
	s := newStack(t, nil)
	svc := s.emu.Endpoints().FHIRServices[0]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Registered with the role granted; the proof follows once RBAC has reached the service.
	code, out, errOut := s.appreg(ctx, "enqueue", "--client-name", "fhir-reader", "--request-id", "fhir-1",
		"--fhir-role", "FHIR Data Reader", "--wait-access", "--timeout", "2m", "--json")
	if code != 0 {
		t.Fatalf("enqueue --wait-access: exit %d %s %s", code, out, errOut)
	}
	ev, ok := outcome(out)
	if !ok || ev.Type != registrar.EventAccessVerified || len(ev.FHIRAccess) != 1 || ev.FHIRAccess[0].Status != registrar.AccessVerified ||
		!slices.Equal(ev.FHIRAccess[0].Roles, []string{"FHIR Data Reader"}) {
		t.Fatalf("--wait-access printed %s", out)
	}
	reg := waitEventType(t, s, "fhir-1", registrar.EventRegistered)
	if len(reg.FHIRAccess) != 1 || reg.FHIRAccess[0].Status != registrar.AccessPending || !slices.Equal(reg.FHIRAccess[0].Roles, []string{"FHIR Data Reader"}) ||
		reg.FHIRAccess[0].Service != svc.ID || reg.FHIRAccess[0].URL != svc.URL {
		t.Fatalf("registered event says %+v", reg.FHIRAccess)
	}
	// The client's secret, read from Key Vault, reads the FHIR service.
	appID, secret := s.secretValue("fhir-reader", "")
	if status, body := s.readPatients(appID, secret, svc.URL); status != http.StatusOK || !strings.Contains(body, `"resourceType":"Bundle"`) {
		t.Fatalf("GET /Patient with the client's secret: %d %s", status, body)
	}

	// A client without a grant gets the service's 403.
	if code, ev := s.enqueueWait(`{"requestId":"plain-1","clientName":"no-fhir"}`, time.Minute); code != 0 || ev.Type != registrar.EventRegistered {
		t.Fatalf("plain registration: %d %+v", code, ev)
	}
	plainID, plainSecret := s.secretValue("no-fhir", "")
	status, body := s.readPatients(plainID, plainSecret, svc.URL)
	if got := outcomeID.ReplaceAllString(body, `"id":"<id>"`); status != http.StatusForbidden || got != fhirForbidden {
		t.Fatalf("GET /Patient without a grant: %d %s", status, got)
	}

	// The same request delivered three times: one assignment per (service, role).
	for _, id := range []string{"fhir-1-again", "fhir-1-and-again"} {
		body := `{"requestId":"` + id + `","clientName":"fhir-reader","fhirAccess":{"roles":["FHIR Data Reader"]}}`
		if code, ev := s.enqueueWait(body, time.Minute); code != 0 || ev.Type != registrar.EventRegistered {
			t.Fatalf("redelivery %s: %d %+v", id, code, ev)
		}
	}
	if got := s.fhirRoles(reg.ServicePrincipalID, svc.ID); !slices.Equal(got, []string{"FHIR Data Reader"}) {
		t.Fatalf("after three deliveries: %v", got)
	}

	// A role no longer asked for is removed; a new one granted.
	if code, ev := s.enqueueWait(`{"requestId":"fhir-2","clientName":"fhir-reader","fhirAccess":{"roles":["FHIR Data Writer"]}}`, time.Minute); code != 0 || ev.Type != registrar.EventRegistered {
		t.Fatalf("changed request: %d %+v", code, ev)
	}
	if got := s.fhirRoles(reg.ServicePrincipalID, svc.ID); !slices.Equal(got, []string{"FHIR Data Writer"}) {
		t.Fatalf("after asking for Writer instead: %v", got)
	}

	// Offboarding, twice: nothing left behind but a disabled secret.
	for i := range 2 {
		code, out, errOut := s.appreg(ctx, "deregister", "fhir-reader", "--wait", "--json")
		ev, _ := outcome(out)
		if code != 0 || ev.Type != registrar.EventDeregistered {
			t.Fatalf("deregister #%d: exit %d %s %s", i+1, code, out, errOut)
		}
	}
	if got := s.fhirRoles(reg.ServicePrincipalID, svc.ID); len(got) != 0 {
		t.Errorf("roles left: %v", got)
	}
	st := s.emu.Graph.State()
	for _, a := range st.Applications {
		if a.AppID == appID {
			t.Errorf("the application is still there: %+v", a)
		}
	}
	for _, sp := range st.ServicePrincipals {
		if sp.AppID == appID {
			t.Errorf("the service principal is still there: %+v", sp)
		}
	}
	for _, sec := range s.emu.KeyVault.State().Secrets {
		if sec.Name == "fhir-reader-client-secret" {
			if last := sec.Versions[len(sec.Versions)-1]; last.Enabled {
				t.Errorf("the latest secret version is still enabled")
			}
		}
	}
	if err := s.signIn(appID, secret); err == nil {
		t.Error("the offboarded client still signs in")
	}

	// Registering the name again makes a new application, and a new enabled secret version.
	code, out, errOut = s.appreg(ctx, "enqueue", "--client-name", "fhir-reader", "--request-id", "fhir-3",
		"--fhir-role", "FHIR Data Reader", "--wait-access", "--timeout", "2m", "--json")
	if ev, _ := outcome(out); code != 0 || ev.Type != registrar.EventAccessVerified {
		t.Fatalf("registering again: exit %d %s %s", code, out, errOut)
	}
	again := waitEventType(t, s, "fhir-3", registrar.EventRegistered)
	if again.AppID == "" || again.AppID == appID {
		t.Errorf("registered again as %q, want a new appId (was %s)", again.AppID, appID)
	}
	newID, newSecret := s.secretValue("fhir-reader", "")
	if status, _ := s.readPatients(newID, newSecret, svc.URL); newID != again.AppID || status != http.StatusOK {
		t.Errorf("the new client (%s) reads FHIR: %d", newID, status)
	}
}

// TestFHIRAccessRefusals: a role or a service outside the allow-lists, and a role the ABAC
// condition on appreg's delegation refuses, each end as one "rejected" with its own reason and
// no retry; PrincipalNotFound for a few seconds after the service principal appears is waited
// out.
func TestFHIRAccessRefusals(t *testing.T) {
	// Contributor is allowed by appreg's setting but not by the delegation's condition.
	// RETRY_BUDGET long enough that one delivery's share outlasts Graph's replication lag: a
	// refusal must come from the first delivery, not after the lag handed it back.
	s := newStackWith(t, &azemu.Options{}, map[string]string{"FHIR_ALLOWED_ROLES": "FHIR Data Reader,FHIR Data Contributor", "RETRY_BUDGET": "3m"})
	other := strings.Replace(s.emu.Endpoints().FHIRServices[0].ID, "/fhirservices/fhir", "/fhirservices/other", 1)
	tests := []struct {
		name, id, body string
		reason         string
	}{
		{"RoleNotAllowed", "refuse-role", `{"requestId":"refuse-role","clientName":"refuse-role","fhirAccess":{"roles":["FHIR Data Importer"]}}`, registrar.RejectFHIRRoleNotAllowed},
		{"ServiceNotAllowed", "refuse-svc", `{"requestId":"refuse-svc","clientName":"refuse-svc","fhirAccess":{"service":"` + other + `","roles":["FHIR Data Reader"]}}`, registrar.RejectFHIRServiceNotAllowed},
		{"DelegationRefuses", "refuse-abac", `{"requestId":"refuse-abac","clientName":"refuse-abac","fhirAccess":{"roles":["FHIR Data Contributor"]}}`, registrar.RejectFHIRAccessRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sendRaw(t, s, tt.id, tt.body)
			ev := waitEvent(t, s, tt.id)
			if ev.Type != registrar.EventRejected || len(ev.Reasons) != 1 || ev.Reasons[0].Code != tt.reason {
				t.Fatalf("event %+v, want rejected %s", ev, tt.reason)
			}
		})
	}
	if strings.Contains(s.hostOut.String(), "deliveryCount=2") {
		t.Errorf("a refused request was delivered twice")
	}

	// Resource Manager misses the new service principal for about three seconds.
	if err := s.emu.ARM.InjectFault(armemu.Fault{Operation: armemu.OpCreateRoleAssignment, Status: http.StatusBadRequest, Code: "PrincipalNotFound", Latency: time.Second, Count: 3}); err != nil {
		t.Fatal(err)
	}
	code, ev := s.enqueueWait(`{"requestId":"late-sp","clientName":"late-sp","fhirAccess":{"roles":["FHIR Data Reader"]}}`, 2*time.Minute)
	if code != 0 || ev.Type != registrar.EventRegistered || len(ev.FHIRAccess) != 1 {
		t.Fatalf("exit %d, event %+v", code, ev)
	}
	if got := s.fhirRoles(ev.ServicePrincipalID, ev.FHIRAccess[0].Service); !slices.Equal(got, []string{"FHIR Data Reader"}) {
		t.Errorf("roles %v", got)
	}
	if n := s.emu.ARM.Stats().Operations[armemu.OpCreateRoleAssignment]; n < 4 {
		t.Errorf("%d role-assignment PUTs, want the three refused and one that worked", n)
	}
	verified := waitEventType(t, s, "late-sp", registrar.EventAccessVerified)
	b, _ := json.Marshal(verified.FHIRAccess)
	if !strings.Contains(string(b), `"status":"verified"`) {
		t.Errorf("access-verified event says %s", b)
	}
}
