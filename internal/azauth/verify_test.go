package azauth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"appreg/emulator/entraemu"
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
		scope  string
		code   registrar.Code
		reason string
	}{
		{"Accepted", clientID, secret, "", "", ""},
		{"WrongSecret", clientID, "not-the-secret-at-all", "", registrar.CodeReplicating, ""},
		{"UnknownApp", "00000000-1111-2222-3333-444444444444", secret, "", registrar.CodeReplicating, ""},
		// AADSTS500011: no wait makes Entra know the resource, so it is not replication.
		{"UnknownScope", clientID, secret, "https://nothing.example/.default", registrar.CodeInvalid, registrar.RejectVerifyScope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := *v
			if tt.scope != "" {
				v.Scope = tt.scope
			}
			err := v.Authenticates(ctx, tt.appID, registrar.NewSecretValue(tt.secret))
			if tt.code == "" && err != nil || tt.code != "" && registrar.ErrorCode(err) != tt.code {
				t.Fatalf("Authenticates = %v, want code %q", err, tt.code)
			}
			if registrar.ReasonOf(err) != tt.reason {
				t.Errorf("reason %q, want %q", registrar.ReasonOf(err), tt.reason)
			}
			if err != nil && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("the error carries the secret: %v", err)
			}
		})
	}
	t.Run("Throttled", func(t *testing.T) {
		if err := srv.Throttle(entraemu.OpToken, 3*time.Second, 1); err != nil {
			t.Fatal(err)
		}
		err := v.Authenticates(ctx, clientID, registrar.NewSecretValue(secret))
		var e *registrar.Error
		if !errors.As(err, &e) || e.Code != registrar.CodeUnavailable || e.RetryAfter != 3*time.Second {
			t.Fatalf("Authenticates = %#v, want CodeUnavailable with Entra's Retry-After of 3s", err)
		}
	})
	srv.Close()
	if err := v.Authenticates(ctx, clientID, registrar.NewSecretValue(secret)); registrar.ErrorCode(err) != registrar.CodeUnavailable {
		t.Errorf("Entra down: %v", err)
	}
}
