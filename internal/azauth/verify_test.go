package azauth_test

import (
	"context"
	"strings"
	"testing"

	"appreg/internal/azauth"
	"appreg/internal/registrar"
)

func TestVerifier(t *testing.T) {
	srv, _ := newEntra(t)
	v := &azauth.Verifier{TenantID: srv.TenantID(), AuthorityHost: srv.URL(), Scope: vault + "/.default", Transport: srv.Client()}
	ctx := context.Background()
	tests := []struct {
		name   string
		appID  string
		secret string
		code   registrar.Code
	}{
		{"Accepted", clientID, secret, ""},
		{"WrongSecret", clientID, "not-the-secret-at-all", registrar.CodeReplicating},
		{"UnknownApp", "00000000-1111-2222-3333-444444444444", secret, registrar.CodeReplicating},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Authenticates(ctx, tt.appID, registrar.NewSecretValue(tt.secret))
			if tt.code == "" && err != nil || tt.code != "" && registrar.ErrorCode(err) != tt.code {
				t.Fatalf("Authenticates = %v, want code %q", err, tt.code)
			}
			if err != nil && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("the error carries the secret: %v", err)
			}
		})
	}
	srv.Close()
	if err := v.Authenticates(ctx, clientID, registrar.NewSecretValue(secret)); registrar.ErrorCode(err) != registrar.CodeUnavailable {
		t.Errorf("Entra down: %v", err)
	}
}
