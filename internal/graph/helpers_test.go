package graph_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"appreg/internal/testutil"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"appreg/emulator/entraemu"
	"appreg/emulator/graphemu"
	"appreg/internal/graph"
)

// roleOwnedBy is the one Graph permission appreg's identity holds in production.
const roleOwnedBy = "Application.ReadWrite.OwnedBy"

func debugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// directory forwards Entra's client-secret check to the Graph emulator, which is started second
// because it shares Entra's CA and token issuer.
type directory struct{ g *graphemu.Server }

func (d *directory) AuthenticateClient(ctx context.Context, clientID, secret string) (entraemu.Principal, error) {
	return d.g.AuthenticateClient(ctx, clientID, secret)
}

func (d *directory) ManagedIdentity(ctx context.Context, clientID string) (entraemu.Principal, error) {
	return d.g.ManagedIdentity(ctx, clientID)
}

// env is a local Entra and Graph over TLS, and an adapter authenticated as a seeded client
// holding Application.ReadWrite.OwnedBy, as appreg's identity does.
type env struct {
	entra  *entraemu.Server
	graph  *graphemu.Server
	client *graph.Client
	spID   string // the adapter's service principal: the owner of what it creates
	cred   azcore.TokenCredential
	logs   *testutil.Buffer
}

func newEnv(tb testing.TB, opts *graph.Options) *env {
	tb.Helper()
	logs := &testutil.Buffer{}
	dir := &directory{}
	es, err := entraemu.NewServer(&entraemu.Options{Clients: dir, Logger: debugLogger(logs)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(es.Close)
	gs, err := graphemu.NewServer(&graphemu.Options{
		Authority: es.Authority(), Issuer: es.Issuer(), TenantID: es.TenantID(), Logger: debugLogger(logs),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(gs.Close)
	dir.g = gs
	e := &env{entra: es, graph: gs, logs: logs}
	e.client, e.spID, e.cred = e.newClient(tb, "appreg-handler", opts, roleOwnedBy)
	return e
}

// newClient seeds a confidential client with Graph roles and returns an adapter signed in as it.
func (e *env) newClient(tb testing.TB, name string, opts *graph.Options, roles ...string) (*graph.Client, string, azcore.TokenCredential) {
	tb.Helper()
	appID, _, spID, secret, err := e.graph.SeedClient(name, roles)
	if err != nil {
		tb.Fatal(err)
	}
	o := graph.Options{}
	if opts != nil {
		o = *opts
	}
	o.BaseURL = e.graph.URL()
	o.HTTPClient = e.graph.Client()
	if o.Logger == nil {
		o.Logger = debugLogger(e.logs)
	}
	cred := e.credential(tb, appID, secret)
	c, err := graph.New(cred, &o)
	if err != nil {
		tb.Fatal(err)
	}
	return c, spID, cred
}

// credential is the real azidentity client-secret credential against the local Entra.
func (e *env) credential(tb testing.TB, appID, secret string) azcore.TokenCredential {
	tb.Helper()
	cred, err := azidentity.NewClientSecretCredential(e.entra.TenantID(), appID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: e.entra.URL()},
			Transport: e.entra.Client(),
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return cred
}
