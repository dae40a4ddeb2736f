package registrar

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	fhirA = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws/fhirservices/fhir-a"
	fhirB = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws/fhirservices/fhir-b"
)

// fakeAccess is an in-memory Azure RBAC: assignments by deterministic name.
type fakeAccess struct {
	mu       sync.Mutex
	byName   map[string]RoleAssignment
	calls    map[string]int
	refuse   error // returned by Grant, when set
	notFound int   // Grant answers PrincipalNotFound (replicating) this many times
}

func newFakeAccess() *fakeAccess {
	return &fakeAccess{byName: map[string]RoleAssignment{}, calls: map[string]int{}}
}

func (f *fakeAccess) Grant(_ context.Context, scope, principalID, roleID string) (RoleAssignment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["grant"]++
	if f.refuse != nil {
		return RoleAssignment{}, f.refuse
	}
	if f.notFound > 0 {
		f.notFound--
		return RoleAssignment{}, &Error{Code: CodeReplicating, Op: "arm.create", Message: "PrincipalNotFound"}
	}
	a := RoleAssignment{Name: strings.ToLower(scope + "|" + principalID + "|" + roleID), Scope: scope, PrincipalID: principalID, RoleDefinitionID: roleID}
	f.byName[a.Name] = a
	return a, nil
}

func (f *fakeAccess) Revoke(_ context.Context, a RoleAssignment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["revoke"]++
	delete(f.byName, a.Name)
	return nil
}

func (f *fakeAccess) List(_ context.Context, scope, principalID string) ([]RoleAssignment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["list"]++
	var out []RoleAssignment
	for _, a := range f.byName {
		if strings.EqualFold(a.Scope, scope) && a.PrincipalID == principalID {
			out = append(out, a)
		}
	}
	return out, nil
}

// roles returns "scope|role name" for every assignment.
func (f *fakeAccess) roles() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, a := range f.byName {
		for n, id := range FHIRRoles {
			if id == a.RoleDefinitionID {
				out = append(out, a.Scope[strings.LastIndex(a.Scope, "/")+1:]+"|"+n)
			}
		}
	}
	slices.Sort(out)
	return out
}

// fakeProber answers 403 until it has been asked refusals times, then 200.
type fakeProber struct {
	mu       sync.Mutex
	refusals int
	fail     error
	calls    int
}

func (p *fakeProber) ReadFHIR(_ context.Context, url, appID string, secret SecretValue) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if secret.IsZero() || appID == "" || url == "" {
		return &Error{Code: CodeInvalid, Op: "fhir.read", Message: "no secret"}
	}
	if p.fail != nil {
		return p.fail
	}
	if p.refusals > 0 {
		p.refusals--
		return &Error{Code: CodeForbidden, Op: "fhir.read", Message: "HTTP 403 Authorization failed."}
	}
	return nil
}

func fhirEnv(t *testing.T) (*env, *fakeAccess, *fakeProber) {
	access, prober := newFakeAccess(), &fakeProber{}
	e := newEnv(t, func(o *Options) {
		o.Access, o.Prober = access, prober
		o.FHIR = FHIRPolicy{
			Services:       []FHIRService{{ID: fhirA, URL: "https://ws-fhir-a.fhir.azurehealthcareapis.com"}, {ID: fhirB, URL: "https://ws-fhir-b.fhir.azurehealthcareapis.com"}},
			DefaultService: fhirA,
			Roles:          []string{"FHIR Data Reader", "FHIR Data Writer", "FHIR Data Exporter"},
		}
	})
	return e, access, prober
}

func TestFHIRAccessConverges(t *testing.T) {
	e, access, _ := fhirEnv(t)
	reader := request("lab-sync", `"fhirAccess":{"roles":["fhir data reader"]}`)
	out := e.register(t, reader)
	st := out.Event.FHIRAccess
	if len(st) != 1 || st[0].Service != fhirA || !slices.Equal(st[0].Roles, []string{"FHIR Data Reader"}) || st[0].Status != AccessPending {
		t.Fatalf("event fhirAccess = %+v", st)
	}
	if access.calls["list"] != 0 {
		t.Errorf("%d lists for a brand-new service principal; it can hold no roles yet", access.calls["list"])
	}
	// Redelivered three times: one assignment per (service, role).
	for range 3 {
		e.register(t, reader)
	}
	if got := access.roles(); !slices.Equal(got, []string{"fhir-a|FHIR Data Reader"}) {
		t.Errorf("assignments after 3 redeliveries = %v", got)
	}
	// The request is the desired state: Writer on B replaces Reader on A.
	e.register(t, request("lab-sync", `"fhirAccess":[{"service":"`+strings.ToUpper(fhirB)+`","roles":["FHIR Data Writer","FHIR Data Reader"]}]`))
	if got := access.roles(); !slices.Equal(got, []string{"fhir-b|FHIR Data Reader", "fhir-b|FHIR Data Writer"}) {
		t.Errorf("assignments after the change = %v", got)
	}
	// No block: no access.
	e.register(t, request("lab-sync"))
	if got := access.roles(); len(got) != 0 {
		t.Errorf("assignments after a request without fhirAccess = %v", got)
	}
}

func TestFHIRAccessRefusals(t *testing.T) {
	tests := []struct {
		name, extra, code string
	}{
		{"RoleNotAllowed", `"fhirAccess":{"roles":["FHIR Data Contributor"]}`, RejectFHIRRoleNotAllowed},
		{"UnknownRole", `"fhirAccess":{"roles":["Owner"]}`, RejectFHIRRoleNotAllowed},
		{"ServiceNotAllowed", `"fhirAccess":{"service":"/subscriptions/x/other","roles":["FHIR Data Reader"]}`, RejectFHIRServiceNotAllowed},
		{"NoRoles", `"fhirAccess":{"roles":[]}`, RejectMissingField},
		{"UnknownMember", `"fhirAccess":{"roles":["FHIR Data Reader"],"scope":"x"}`, RejectUnknownField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, access, _ := fhirEnv(t)
			out := e.register(t, request("lab-sync", tt.extra))
			if out.Event.Type != EventRejected || out.Event.Reasons[0].Code != tt.code {
				t.Errorf("event = %+v, want rejected %s", out.Event, tt.code)
			}
			if len(e.dir.calls)+access.calls["grant"] != 0 {
				t.Errorf("calls %v / %v for a refused request", e.dir.calls, access.calls)
			}
		})
	}
	t.Run("ABACRefusal", func(t *testing.T) {
		e, access, _ := fhirEnv(t)
		access.refuse = &Error{Code: CodeInvalid, Reason: RejectFHIRAccessRefused, Op: "arm.createRoleAssignment", Message: "AuthorizationFailed"}
		out := e.register(t, request("lab-sync", `"fhirAccess":{"roles":["FHIR Data Reader"]}`))
		if out.Event.Type != EventRejected || out.Event.Reasons[0].Code != RejectFHIRAccessRefused || access.calls["grant"] != 1 {
			t.Errorf("event = %+v after %d grants; want one try, rejected", out.Event, access.calls["grant"])
		}
	})
	t.Run("PrincipalReplicating", func(t *testing.T) {
		e, access, _ := fhirEnv(t)
		access.notFound = 3
		if out := e.register(t, request("lab-sync", `"fhirAccess":{"roles":["FHIR Data Reader"]}`)); out.Event.Type != EventRegistered {
			t.Errorf("event = %+v", out.Event)
		}
	})
}

func TestAccessIsProvenLater(t *testing.T) {
	e, _, prober := fhirEnv(t)
	prober.refusals = 2 // RBAC takes effect after two checks
	out := e.register(t, request("lab-sync", `"fhirAccess":{"roles":["FHIR Data Reader"]}`))
	regAt := e.clock.Now()
	var verified Event
	for i := 0; i < 10 && verified.Type == ""; i++ {
		e.pub.mu.Lock()
		checks := e.pub.accessChecks
		e.pub.accessChecks = nil
		e.pub.mu.Unlock()
		if len(checks) != 1 {
			t.Fatalf("round %d: %d access checks sent, want 1", i, len(checks))
		}
		c := checks[0]
		if !c.at.After(e.clock.Now()) {
			t.Errorf("check %d not scheduled for later: %v", i, c.at)
		}
		e.clock.Advance(c.at.Sub(e.clock.Now()))
		body, _ := json.Marshal(c.job)
		res, err := e.svc.Handle(context.Background(), CommandVerifyAccess, body, Delivery{MessageID: c.job.MessageID(), DeliveryCount: 1, SessionID: "lab-sync"})
		if err != nil {
			t.Fatal(err)
		}
		verified = res.Event
	}
	if verified.Type != EventAccessVerified || verified.RequestID != out.Event.RequestID || verified.FHIRAccess[0].Status != AccessVerified ||
		!slices.Equal(verified.FHIRAccess[0].Roles, []string{"FHIR Data Reader"}) {
		t.Fatalf("final event = %+v", verified)
	}
	if took := e.clock.Now().Sub(regAt); took > 5*time.Minute {
		t.Errorf("proven %v after registration", took)
	}
	if strings.Contains(fmt.Sprintf("%+v", e.pub.events), "s3cr3t") {
		t.Error("an event carries the secret")
	}
}

func TestAccessNotProvenByTheDeadline(t *testing.T) {
	e, _, prober := fhirEnv(t)
	prober.refusals = 1 << 20
	e.register(t, request("lab-sync", `"fhirAccess":{"roles":["FHIR Data Reader"]}`))
	var last Event
	for i := 0; i < 100 && last.Type == ""; i++ {
		checks := e.pub.accessChecks
		e.pub.accessChecks = nil
		if len(checks) != 1 {
			t.Fatalf("round %d: %d checks", i, len(checks))
		}
		e.clock.Advance(checks[0].at.Sub(e.clock.Now()))
		body, _ := json.Marshal(checks[0].job)
		res, err := e.svc.Handle(context.Background(), CommandVerifyAccess, body, Delivery{MessageID: checks[0].job.MessageID(), DeliveryCount: 1, SessionID: "lab-sync"})
		if err != nil {
			t.Fatal(err)
		}
		last = res.Event
	}
	if last.Type != EventAccessUnverified || last.Reasons[0].Code != ReasonAccessNotEffective {
		t.Fatalf("final event = %+v", last)
	}
}

func TestDeregisterLeavesNothingBehind(t *testing.T) {
	e, access, _ := fhirEnv(t)
	reg := e.register(t, request("lab-sync", `"fhirAccess":{"roles":["FHIR Data Reader","FHIR Data Writer"]}`)).Event
	body := []byte(`{"requestId":"bye-1","clientName":"lab-sync"}`)
	for n := range 2 { // twice: the second finds nothing to do and says so again
		out, err := e.svc.Handle(context.Background(), CommandDeregister, body, Delivery{MessageID: "bye-1", DeliveryCount: 1, SessionID: "lab-sync"})
		if err != nil {
			t.Fatalf("deregister #%d: %v", n+1, err)
		}
		if out.Event.Type != EventDeregistered || out.Event.AppID != reg.AppID {
			t.Fatalf("deregister #%d: event %+v", n+1, out.Event)
		}
	}
	if got := access.roles(); len(got) != 0 {
		t.Errorf("role assignments left: %v", got)
	}
	if app := e.dir.app("appreg-lab-sync"); app.ObjectID != "" || len(e.dir.sps) != 0 || len(e.dir.deleted) != 0 {
		t.Errorf("left behind: app %+v, service principals %v, soft-deleted %v", app, e.dir.sps, e.dir.deleted)
	}
	latest, _ := e.store.Latest(context.Background(), "lab-sync-client-secret")
	if latest.Enabled || e.store.count("lab-sync-client-secret") != 1 {
		t.Errorf("secret: enabled %v, versions %d; want the one version, disabled", latest.Enabled, e.store.count("lab-sync-client-secret"))
	}
	// The scheduler has nothing to say about a deregistered client.
	if rep := e.schedule(t); rep.Due+rep.Maintenance != 0 {
		t.Errorf("scheduler after deregistration: %+v", rep)
	}
	// The name is free again: a new registration gets a new app and a new secret version.
	again := e.register(t, request("lab-sync")).Event
	if again.Type != EventRegistered || again.AppID == reg.AppID || e.store.count("lab-sync-client-secret") != 2 {
		t.Errorf("re-registration: %+v, versions %d", again, e.store.count("lab-sync-client-secret"))
	}
}

// Deregistering seconds after registering: a replica that does not show the service principal yet
// must not make deregistration skip it, or its FHIR role assignments outlive the client. An old
// app whose service principal is gone for real is deregistered without waiting.
func TestDeregisterWaitsForAYoungAppsServicePrincipal(t *testing.T) {
	for _, tt := range []struct {
		name  string
		age   time.Duration
		hide  int
		roles int // role assignments left
		finds int
	}{
		{"Young", 5 * time.Second, 3, 0, 4},
		{"OldAndGone", time.Hour, 1000, 2, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, access, _ := fhirEnv(t)
			e.register(t, request("lab-sync", `"fhirAccess":{"roles":["FHIR Data Reader","FHIR Data Writer"]}`))
			e.clock.Advance(tt.age)
			e.dir.hideSPs = tt.hide
			finds := e.dir.calls["findsp"]
			out, err := e.svc.Handle(context.Background(), CommandDeregister, []byte(`{"requestId":"bye-1","clientName":"lab-sync"}`),
				Delivery{MessageID: "bye-1", DeliveryCount: 1, SessionID: "lab-sync"})
			if err != nil || out.Event.Type != EventDeregistered {
				t.Fatalf("deregister: %+v, %v", out.Event, err)
			}
			if got := access.roles(); len(got) != tt.roles {
				t.Errorf("role assignments left: %v, want %d", got, tt.roles)
			}
			if got := e.dir.calls["findsp"] - finds; got != tt.finds {
				t.Errorf("service principal reads = %d, want %d", got, tt.finds)
			}
		})
	}
}
