package keyvaultemu_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"appreg/emulator/keyvaultemu"
)

const vaultID = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/RG/providers/Microsoft.KeyVault/vaults/kv"

// grant is one role: a principal may do the actions under a scope from a time on.
type grant struct {
	principal, scope string
	actions          []string
	since            time.Time
}

type rbac []grant

func (r rbac) Authorized(principalID, scope, action string, asOf time.Time) bool {
	for _, g := range r {
		if g.principal != principalID || !strings.HasPrefix(strings.ToLower(scope), strings.ToLower(g.scope)) || asOf.Before(g.since) {
			continue
		}
		for _, a := range g.actions {
			if a == action {
				return true
			}
		}
	}
	return false
}

const (
	officer = "00000000-0000-0000-0000-0000000000c1"
	user    = "00000000-0000-0000-0000-0000000000c2"
	late    = "00000000-0000-0000-0000-0000000000c3"
	none    = "00000000-0000-0000-0000-0000000000c4"
)

func TestRBAC(t *testing.T) {
	all := []string{"Microsoft.KeyVault/vaults/secrets/setSecret/action", "Microsoft.KeyVault/vaults/secrets/getSecret/action", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"}
	read := all[1:]
	srv, clk := newServer(t, &keyvaultemu.Options{ResourceID: vaultID, PropagationDelay: time.Minute, Authorizer: rbac{
		{officer, vaultID, all, time.Time{}},
		{user, vaultID + "/secrets/mine", read, time.Time{}},
		{late, vaultID, read, epoch.Add(-30 * time.Second)}, // granted 30 s ago: not here yet
	}})
	ctx := context.Background()
	as := func(oid string) *azsecrets.Client {
		return newClient(t, srv, &credential{issuer: srv.Issuer(), clk: clk, oid: oid})
	}
	set(t, as(officer), "mine", "v1")
	set(t, as(officer), "theirs", "v2")
	tests := []struct {
		name   string
		do     func() error
		action string // "" = allowed
	}{
		{"OfficerReads", func() error { _, err := as(officer).GetSecret(ctx, "theirs", "", nil); return err }, ""},
		{"UserReadsItsSecret", func() error { _, err := as(user).GetSecret(ctx, "mine", "", nil); return err }, ""},
		{"UserCannotReadAnother", func() error { _, err := as(user).GetSecret(ctx, "theirs", "", nil); return err }, "getSecret/action"},
		{"UserCannotWrite", func() error {
			_, err := as(user).SetSecret(ctx, "mine", azsecrets.SetSecretParameters{Value: ptr("v3")}, nil)
			return err
		}, "setSecret/action"},
		{"UserCannotList", func() error { _, err := as(user).NewListSecretPropertiesPager(nil).NextPage(ctx); return err }, "readMetadata/action"},
		{"NoRole", func() error { _, err := as(none).GetSecret(ctx, "mine", "", nil); return err }, "getSecret/action"},
		{"GrantStillPropagating", func() error { _, err := as(late).GetSecret(ctx, "mine", "", nil); return err }, "getSecret/action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if tt.action == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			status, code, inner, msg := serviceError(t, err)
			if status != 403 || code != "Forbidden" || inner != "ForbiddenByRbac" {
				t.Fatalf("%d %s/%s, want 403 Forbidden/ForbiddenByRbac", status, code, inner)
			}
			for _, want := range []string{"Caller is not authorized to perform action on resource.\r\n", "Action: 'Microsoft.KeyVault/vaults/secrets/" + tt.action + "'",
				"Resource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg/providers/microsoft.keyvault/vaults/kv", "DecisionReason: 'DeniedWithNoValidRBAC'", "Vault: kv;location="} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
		})
	}
	clk.Advance(time.Minute)
	if _, err := as(late).GetSecret(ctx, "mine", "", nil); err != nil {
		t.Errorf("after the propagation delay: %v", err)
	}
}
