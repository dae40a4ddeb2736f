package azauth_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"appreg/emulator/entraemu"
	"appreg/internal/azauth"
)

const (
	clientID = "0f3c2f1d-9a10-4d55-9b0e-7d0c4c1e5d2a"
	spID     = "9b0e0f3c-2f1d-4d55-9a10-7d0c4c1e5d2a"
	systemMI = "33333333-3333-3333-3333-333333333333"
	userMI   = "44444444-4444-4444-4444-444444444444"
	secret   = "azA8Q~Fq2Lr0vXn4Wm9Tk1Pe7Hs3Yd6Jc5Gb8Nu"
	vault    = "https://vault.azure.net"
)

var noRetry = policy.RetryOptions{MaxRetries: -1}

// directory is a hand-written entra.ClientAuthenticator: one app with one secret, and a
// system-assigned and a user-assigned managed identity.
type directory struct{}

func (directory) AuthenticateClient(_ context.Context, id, s string) (entraemu.Principal, error) {
	switch {
	case id != clientID:
		return entraemu.Principal{}, entraemu.ErrUnknownClient
	case s != secret:
		return entraemu.Principal{}, entraemu.ErrInvalidSecret
	}
	return entraemu.Principal{AppID: clientID, ObjectID: spID}, nil
}

func (directory) ManagedIdentity(_ context.Context, id string) (entraemu.Principal, error) {
	switch id {
	case "":
		return entraemu.Principal{AppID: systemMI, ObjectID: "sys-oid"}, nil
	case userMI:
		return entraemu.Principal{AppID: userMI, ObjectID: "user-oid"}, nil
	}
	return entraemu.Principal{}, entraemu.ErrUnknownClient
}

// newEntra starts the emulator and writes its CA as azemu does, returning the ca.pem path.
func newEntra(tb testing.TB) (*entraemu.Server, string) {
	tb.Helper()
	srv, err := entraemu.NewServer(&entraemu.Options{Clients: directory{}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Close)
	caFile := filepath.Join(tb.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, srv.Authority().PEM(), 0o600); err != nil {
		tb.Fatal(err)
	}
	return srv, caFile
}

// getToken asks for a Key Vault token and checks it with the emulator's issuer, returning the
// appid it was issued to.
func getToken(tb testing.TB, srv *entraemu.Server, cred azcore.TokenCredential) (string, error) {
	tb.Helper()
	return getTokenFor(tb, srv, cred, vault)
}

// getTokenFor is getToken for another audience.
func getTokenFor(tb testing.TB, srv *entraemu.Server, cred azcore.TokenCredential, audience string) (string, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{audience + "/.default"}, TenantID: srv.TenantID()})
	if err != nil {
		return "", err
	}
	claims, err := srv.Issuer().Verify(tok.Token, audience)
	if err != nil {
		tb.Fatalf("the token does not verify: %v", err)
	}
	if claims.TenantID != srv.TenantID() {
		tb.Errorf("tid = %q, want %q", claims.TenantID, srv.TenantID())
	}
	return claims.AppID, nil
}

func TestClientSecretCredentialAgainstEntra(t *testing.T) {
	srv, caFile := newEntra(t)
	tests := []struct {
		name      string
		opts      azauth.Options
		wantAppID string
		wantErr   string
	}{
		{name: "CA file", opts: azauth.Options{ClientSecret: secret, CAFile: caFile}, wantAppID: clientID},
		{name: "root pool", opts: azauth.Options{ClientSecret: secret, RootCAs: srv.Authority().Pool()}, wantAppID: clientID},
		{name: "system roots only", opts: azauth.Options{ClientSecret: secret}, wantErr: "certificate"},
		{name: "wrong secret", opts: azauth.Options{ClientSecret: "wrong8Q~Xq2Lr0vXn4Wm9Tk1Pe7Hs3Yd6Jc5Gb8", CAFile: caFile}, wantErr: "AADSTS7000215"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			o.TenantID, o.ClientID, o.AuthorityHost, o.Retry = srv.TenantID(), clientID, srv.URL(), noRetry
			cred, err := azauth.NewCredential(o)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := cred.(*azidentity.ClientSecretCredential); !ok {
				t.Errorf("credential is %T, want *azidentity.ClientSecretCredential", cred)
			}
			appID, err := getToken(t, srv, cred)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("GetToken = %v, want an error containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), o.ClientSecret) {
					t.Error("the error contains the client secret")
				}
				return
			}
			if err != nil {
				t.Fatalf("GetToken: %v", err)
			}
			if appID != tt.wantAppID {
				t.Errorf("appid = %q, want %q", appID, tt.wantAppID)
			}
		})
	}
}

func TestManagedIdentityAgainstEntra(t *testing.T) {
	srv, caFile := newEntra(t)
	// MSAL caches managed-identity tokens per process, by resource; a resource of this run's own
	// keeps a token from an earlier run's emulator (another signing key) out of this one (-count).
	audience := fmt.Sprintf("https://vault-%d.example", time.Now().UnixNano())
	if err := srv.AddResource(audience); err != nil {
		t.Fatal(err)
	}
	// What App Service and Functions set in the worker's environment; azidentity reads them.
	t.Setenv("IDENTITY_ENDPOINT", srv.MSIURL())
	t.Setenv("IDENTITY_HEADER", srv.MSIHeader())
	t.Setenv("IDENTITY_SERVER_THUMBPRINT", "")
	tests := []struct {
		name      string
		clientID  string
		wantAppID string
		wantErr   bool
	}{
		{name: "system-assigned", wantAppID: systemMI},
		{name: "user-assigned", clientID: userMI, wantAppID: userMI},
		{name: "unknown user-assigned", clientID: "55555555-5555-5555-5555-555555555555", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred, err := azauth.NewCredential(azauth.Options{ManagedIdentity: true, ClientID: tt.clientID, CAFile: caFile, Retry: noRetry})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := cred.(*azidentity.ManagedIdentityCredential); !ok {
				t.Errorf("credential is %T, want *azidentity.ManagedIdentityCredential", cred)
			}
			appID, err := getTokenFor(t, srv, cred, audience)
			if tt.wantErr {
				if err == nil {
					t.Fatal("GetToken succeeded")
				}
				var afe *azidentity.AuthenticationFailedError
				if !errors.As(err, &afe) {
					t.Errorf("error is %T, want an AuthenticationFailedError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetToken: %v", err)
			}
			if appID != tt.wantAppID {
				t.Errorf("appid = %q, want %q", appID, tt.wantAppID)
			}
		})
	}
	if got := srv.Stats().Operations[entraemu.OpMSI]; got != 3 {
		t.Errorf("managed-identity endpoint saw %d requests, want 3", got)
	}
}
