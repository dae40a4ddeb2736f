package arm_test

import (
	"context"
	"strings"
	"testing"

	"appreg/emulator/armemu"
	"appreg/emulator/azemu"
	"appreg/internal/arm"
	"appreg/internal/azauth"
	"appreg/internal/registrar"
)

// These tests drive the adapter through the real armauthorization client against the local
// Resource Manager, signed in as appreg's seeded identity: Role Based Access Control
// Administrator on the FHIR service, limited to FHIR Data Reader, Writer and Exporter for
// service principals.

const principal = "5e6f7a8b-1c2d-4e3f-8a9b-0c1d2e3f4a5b"

type fixture struct {
	emu    *azemu.Server
	client *arm.Client
	scope  string
}

func newFixture(tb testing.TB) fixture {
	tb.Helper()
	emu, err := azemu.NewServer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(emu.Close)
	ep := emu.Endpoints()
	cred, err := azauth.NewCredential(azauth.Options{TenantID: ep.TenantID, ClientID: ep.Clients[0].ClientID, ClientSecret: ep.Clients[0].ClientSecret,
		AuthorityHost: ep.AuthorityHost, Transport: emu.Client()})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := arm.New(cred, &arm.Options{Endpoint: ep.ARMEndpoint, Audience: ep.ARMAudience, Transport: emu.Client()})
	if err != nil {
		tb.Fatal(err)
	}
	return fixture{emu: emu, client: c, scope: ep.FHIRServices[0].ID}
}

func (f fixture) assignments(principalID string) []armemu.Assignment {
	var out []armemu.Assignment
	for _, a := range f.emu.ARM.Assignments() {
		if a.PrincipalID == principalID {
			out = append(out, a)
		}
	}
	return out
}

func TestGrantListRevoke(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for range 3 {
		a, err := f.client.Grant(ctx, f.scope, principal, armemu.RoleFHIRDataReader)
		if err != nil {
			t.Fatalf("Grant: %v", err)
		}
		if a.Name != arm.AssignmentName(f.scope, principal, armemu.RoleFHIRDataReader) {
			t.Errorf("name %s is not the deterministic one", a.Name)
		}
	}
	if got := f.assignments(principal); len(got) != 1 || got[0].PrincipalType != "ServicePrincipal" {
		t.Fatalf("three grants left %+v", got)
	}
	list, err := f.client.List(ctx, f.scope, principal)
	if err != nil || len(list) != 1 || list[0].RoleDefinitionID != armemu.RoleFHIRDataReader || list[0].Scope != f.scope {
		t.Fatalf("List = %+v, %v", list, err)
	}
	for range 2 {
		if err := f.client.Revoke(ctx, list[0]); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
	}
	if got := f.assignments(principal); len(got) != 0 {
		t.Errorf("after Revoke: %+v", got)
	}
}

func TestGrantErrors(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(f fixture)
		role       string
		wantCode   registrar.Code
		wantReason string
	}{
		{"OutsideTheDelegation", nil, armemu.RoleFHIRDataContributor, registrar.CodeInvalid, registrar.RejectFHIRAccessRefused},
		{"PrincipalReplicating", func(f fixture) {
			if err := f.emu.ARM.InjectFault(armemu.Fault{Operation: armemu.OpCreateRoleAssignment, Status: 400, Code: "PrincipalNotFound", Count: 1}); err != nil {
				t.Fatal(err)
			}
		}, armemu.RoleFHIRDataReader, registrar.CodeReplicating, ""},
		{"NameTakenByAnotherPrincipal", func(f fixture) {
			if _, err := f.emu.ARM.Seed(armemu.Assignment{Name: arm.AssignmentName(f.scope, principal, armemu.RoleFHIRDataReader), Scope: f.scope,
				RoleDefinitionID: armemu.RoleFHIRDataReader, PrincipalID: "0a0a0a0a-1c2d-4e3f-8a9b-0c1d2e3f4a5b", PrincipalType: "ServicePrincipal"}); err != nil {
				t.Fatal(err)
			}
		}, armemu.RoleFHIRDataReader, registrar.CodeConflict, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			_, err := f.client.Grant(context.Background(), f.scope, principal, tt.role)
			if registrar.ErrorCode(err) != tt.wantCode || registrar.ReasonOf(err) != tt.wantReason {
				t.Fatalf("Grant = %v (code %s, reason %q), want %s %q", err, registrar.ErrorCode(err), registrar.ReasonOf(err), tt.wantCode, tt.wantReason)
			}
			if tt.wantReason != "" && (!strings.Contains(err.Error(), tt.role) || !strings.Contains(err.Error(), f.scope)) {
				t.Errorf("the refusal does not name the role and the scope: %v", err)
			}
		})
	}
}

// TestGrantOverAnExistingAssignment: the same role granted by hand under another name is what
// was asked for; the adapter confirms it with one read and reports that assignment.
func TestGrantOverAnExistingAssignment(t *testing.T) {
	f := newFixture(t)
	byHand, err := f.emu.ARM.Seed(armemu.Assignment{Scope: f.scope, RoleDefinitionID: armemu.RoleFHIRDataReader, PrincipalID: principal, PrincipalType: "ServicePrincipal"})
	if err != nil {
		t.Fatal(err)
	}
	f.emu.ARM.Reset() // statistics only: the seeded assignment stays
	a, err := f.client.Grant(context.Background(), f.scope, principal, armemu.RoleFHIRDataReader)
	if err != nil || a.Name != byHand.Name {
		t.Fatalf("Grant = %+v, %v; want the existing %s", a, err, byHand.Name)
	}
	if ops := f.emu.ARM.Stats().Operations; ops[armemu.OpCreateRoleAssignment] != 1 || ops[armemu.OpListRoleAssignments] != 1 {
		t.Errorf("calls %v, want one PUT and one list", ops)
	}
	if got := f.assignments(principal); len(got) != 1 {
		t.Errorf("assignments %+v", got)
	}
}

// TestListKeepsOnlyTheScope: assignments above the service (the operator's, say) and below it
// are not the service's to manage.
func TestListKeepsOnlyTheScope(t *testing.T) {
	f := newFixture(t)
	for _, scope := range []string{"/subscriptions/" + f.emu.ARM.SubscriptionID(), f.scope, f.scope + "/child/x"} {
		if _, err := f.emu.ARM.Seed(armemu.Assignment{Scope: scope, RoleDefinitionID: armemu.RoleFHIRDataReader, PrincipalID: principal, PrincipalType: "ServicePrincipal"}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := f.client.List(context.Background(), f.scope, principal)
	if err != nil || len(list) != 1 || list[0].Scope != f.scope {
		t.Fatalf("List = %+v, %v", list, err)
	}
}
