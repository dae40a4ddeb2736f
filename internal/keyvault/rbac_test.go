package keyvault_test

import (
	"context"
	"strings"
	"testing"

	"appreg/emulator/armemu"
	"appreg/emulator/azemu"
	"appreg/internal/azauth"
	"appreg/internal/keyvault"
	"appreg/internal/registrar"
)

// TestMissingRoleIsForbiddenByRBAC: an identity without a Key Vault data role meets the vault's
// real 403 ForbiddenByRbac through azsecrets, and the adapter says which role to assign; once
// it is assigned, the same call succeeds.
func TestMissingRoleIsForbiddenByRBAC(t *testing.T) {
	emu, err := azemu.NewServer(&azemu.Options{KeyVaultPropagationDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	ep := emu.Endpoints()
	appID, _, spID, secret, err := emu.Graph.SeedClient("no-vault-role", nil)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := azauth.NewCredential(azauth.Options{TenantID: ep.TenantID, ClientID: appID, ClientSecret: secret, AuthorityHost: ep.AuthorityHost, Transport: emu.Client()})
	if err != nil {
		t.Fatal(err)
	}
	store, err := keyvault.New(ep.KeyVaultURL, cred, &keyvault.Options{Transport: emu.Client(), Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	value := registrar.NewSecretValue("s3cr3t-" + randomText(20))
	_, err = store.Put(context.Background(), "lab-results-sync-client-secret", value, registrar.SecretSpec{})
	if registrar.ErrorCode(err) != registrar.CodeForbidden {
		t.Fatalf("Put = %v, want %s", err, registrar.CodeForbidden)
	}
	for _, want := range []string{"ForbiddenByRbac", "Key Vault Secrets Officer", "keyvault.set"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), value.Reveal()) || strings.Contains(err.Error(), secret) {
		t.Error("the error carries a secret")
	}
	if _, err := emu.ARM.Seed(armemu.Assignment{Scope: ep.KeyVaultID, RoleDefinitionID: armemu.RoleKeyVaultSecretsOfficer, PrincipalID: spID, PrincipalType: "ServicePrincipal"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(context.Background(), "lab-results-sync-client-secret", value, registrar.SecretSpec{}); err != nil {
		t.Fatalf("Put with the role: %v", err)
	}
}
