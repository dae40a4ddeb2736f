package armemu

import (
	"errors"
	"testing"
)

func TestDelegationCondition(t *testing.T) {
	c, err := parseCondition(DelegationCondition([]string{RoleFHIRDataReader, RoleFHIRDataWriter}))
	if err != nil {
		t.Fatal(err)
	}
	req := func(role, typ string) map[string]map[string][]string {
		return map[string]map[string][]string{"request": assignmentAttrs(role, "p", typ)}
	}
	res := func(role, typ string) map[string]map[string][]string {
		return map[string]map[string][]string{"resource": assignmentAttrs(role, "p", typ)}
	}
	tests := []struct {
		name   string
		action string
		attrs  map[string]map[string][]string
		want   bool
	}{
		{"WriteAllowedRole", roleAssignmentsWrite, req(RoleFHIRDataReader, "ServicePrincipal"), true},
		{"WriteGUIDInUpperCase", roleAssignmentsWrite, req("4C8D0BBC-75D3-4935-991F-5F3C56D81508", "serviceprincipal"), true},
		{"WriteOtherRole", roleAssignmentsWrite, req(RoleOwner, "ServicePrincipal"), false},
		{"WriteUser", roleAssignmentsWrite, req(RoleFHIRDataReader, "User"), false},
		{"WriteNoPrincipalType", roleAssignmentsWrite, req(RoleFHIRDataReader, ""), false},
		{"DeleteAllowedRole", roleAssignmentsDelete, res(RoleFHIRDataWriter, "ServicePrincipal"), true},
		{"DeleteOtherRole", roleAssignmentsDelete, res(RoleFHIRDataContributor, "ServicePrincipal"), false},
		{"Read", roleAssignmentsRead, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.eval(evalContext{action: tt.action, attrs: tt.attrs}); got != tt.want {
				t.Errorf("eval = %v", got)
			}
		})
	}
}

func TestParseConditionRefuses(t *testing.T) {
	for _, text := range []string{
		"", "(", "ActionMatches{}", "@Request[x] Nonsense {a}", "@Elsewhere[x] StringEquals {a}",
		"@Request[x] StringEquals {a", "@Request[x StringEquals {a}", "ActionMatches{'a'} AND", "ActionMatches{'a'} )",
		"@Request[x] ForSomeValues:StringEquals {a}", "'unterminated",
	} {
		if _, err := parseCondition(text); !errors.Is(err, errCondition) {
			t.Errorf("parseCondition(%q) = %v", text, err)
		}
	}
}

func TestActionMatches(t *testing.T) {
	tests := []struct {
		pattern, action string
		want            bool
	}{
		{"*", "Microsoft.Authorization/roleAssignments/write", true},
		{"*/read", "Microsoft.Authorization/roleAssignments/read", true},
		{"*/read", "Microsoft.Authorization/roleAssignments/write", false},
		{"Microsoft.ServiceBus/*/send/action", ServiceBusSend, true},
		{"Microsoft.ServiceBus/*/send/action", ServiceBusReceive, false},
		{"microsoft.keyvault/vaults/secrets/*", "Microsoft.KeyVault/vaults/secrets/getSecret/action", true},
		{"Microsoft.Authorization/roleAssignments/write", "microsoft.authorization/roleassignments/WRITE", true},
	}
	for _, tt := range tests {
		if got := actionMatches(tt.pattern, tt.action); got != tt.want {
			t.Errorf("actionMatches(%q, %q) = %v", tt.pattern, tt.action, got)
		}
	}
}
