package keyvault_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"appreg/emulator/entraemu"
	"appreg/emulator/keyvaultemu"
	"appreg/internal/azauth"
	"appreg/internal/keyvault"
)

const (
	clientID = "0f3c2f1d-9a10-4d55-9b0e-7d0c4c1e5d2a"
	spID     = "9b0e0f3c-2f1d-4d55-9a10-7d0c4c1e5d2a"
)

// handlerSecret is the handler identity's own client secret at the Entra emulator; like the
// stored values, it must never show up in logs or errors either.
var handlerSecret = "hdl8Q~" + randomText(34)

// fastRetry keeps azcore's retry policy (three retries) but with millisecond back-off, so a test
// of "5xx after azcore's retries" takes milliseconds.
var fastRetry = policy.RetryOptions{RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond}

// directory is a hand-written entra.ClientAuthenticator: the handler's one app and its secret.
type directory struct{}

func (directory) AuthenticateClient(_ context.Context, id, secret string) (entraemu.Principal, error) {
	switch {
	case id != clientID:
		return entraemu.Principal{}, entraemu.ErrUnknownClient
	case secret != handlerSecret:
		return entraemu.Principal{}, entraemu.ErrInvalidSecret
	}
	return entraemu.Principal{AppID: clientID, ObjectID: spID}, nil
}

func (directory) ManagedIdentity(context.Context, string) (entraemu.Principal, error) {
	return entraemu.Principal{}, entraemu.ErrUnknownClient
}

// logBuffer collects every slog line a test produces, safe for the SDK's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is one Entra emulator and one Key Vault emulator sharing a CA, a token issuer and a tenant,
// with a Store wired the way the handler wires it: azauth's credential and HTTP client.
type env struct {
	entra *entraemu.Server
	kv    *keyvaultemu.Server
	store *keyvault.Store
	sdk   *azsecrets.Client // the same identity, for what the adapter does not do (delete)
	cred  azcore.TokenCredential
	http  *http.Client
	logs  *logBuffer
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	en, err := entraemu.NewServer(&entraemu.Options{Clients: directory{}, Logger: logger})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(en.Close)
	kv, err := keyvaultemu.NewServer(&keyvaultemu.Options{
		Authority: en.Authority(), Issuer: en.Issuer(), TenantID: en.TenantID(), AuthorityURL: en.URL(),
		DeleteLag: -1, Logger: logger,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(kv.Close)

	// Trust the emulators the way a deployment trusts azemu: through ca.pem on top of the system roots.
	caFile := filepath.Join(tb.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, en.Authority().PEM(), 0o600); err != nil {
		tb.Fatal(err)
	}
	hc, err := azauth.NewHTTPClient(caFile, nil)
	if err != nil {
		tb.Fatal(err)
	}
	// Cleanups run last-in first-out: dropping our idle connections first lets the emulators'
	// graceful Close return at once instead of waiting for the connections to time out.
	tb.Cleanup(hc.CloseIdleConnections)
	cred, err := azauth.NewCredential(azauth.Options{
		TenantID: en.TenantID(), ClientID: clientID, ClientSecret: handlerSecret,
		AuthorityHost: en.URL(), Transport: hc, Retry: fastRetry,
	})
	if err != nil {
		tb.Fatal(err)
	}
	store, err := keyvault.New(kv.URL(), cred, &keyvault.Options{Transport: hc, Retry: fastRetry, Logger: logger})
	if err != nil {
		tb.Fatal(err)
	}
	sdk, err := azsecrets.NewClient(kv.URL(), cred, &azsecrets.ClientOptions{
		ClientOptions:                        azcore.ClientOptions{Transport: hc, Retry: fastRetry},
		DisableChallengeResourceVerification: true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return &env{entra: en, kv: kv, store: store, sdk: sdk, cred: cred, http: hc, logs: logs}
}

// randomText makes secret-shaped values that cannot occur in a log by accident.
func randomText(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}
