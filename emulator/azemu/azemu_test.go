package azemu

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"appreg/internal/azauth"
	"appreg/internal/endpoints"
	"appreg/internal/keyvault"
	"appreg/internal/registrar"
)

func start(tb testing.TB) *Server {
	tb.Helper()
	s, err := NewServer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

func TestSharedOriginServesEveryService(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	ep := s.Endpoints()
	if ep.AuthorityHost != s.URL() || ep.GraphBaseURL != s.URL() || ep.KeyVaultURL != s.URL()+"/" {
		t.Fatalf("endpoints = %+v", ep)
	}
	c := ep.Clients[0]
	cred, err := azauth.NewCredential(azauth.Options{
		TenantID: ep.TenantID, ClientID: c.ClientID, ClientSecret: c.ClientSecret, AuthorityHost: ep.AuthorityHost,
		Transport: s.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, scope := range []string{"https://graph.microsoft.com/.default", "https://vault.azure.net/.default"} {
		if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}}); err != nil {
			t.Fatalf("token for %s: %v", scope, err)
		}
	}

	// Key Vault through the real azsecrets client, on the shared origin.
	store, err := keyvault.New(ep.KeyVaultURL, cred, &keyvault.Options{Transport: s.Client()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := store.Put(ctx, "probe", registrar.NewSecretValue("v"), registrar.SecretSpec{Tags: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v.ID, s.URL()+"/secrets/probe/") {
		t.Errorf("secret id %s is not on the shared origin", v.ID)
	}

	// Graph answers its own paths with its own error shape.
	res := get(t, s, "/v1.0/applications(uniqueName='nope')")
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("unauthenticated Graph call: %d", res.StatusCode)
	}
	// Entra's metadata, and each service's controls under its own prefix.
	for _, path := range []string{"/" + ep.TenantID + "/v2.0/.well-known/openid-configuration", "/_emu/endpoints", "/_emu/graph/state", "/_emu/keyvault/state", "/_emu/entra/stats", "/_emu/servicebus/counts?entity=app-commands"} {
		if res := get(t, s, path); res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, res.StatusCode)
		}
	}
	if res := get(t, s, "/_emu/nothing/state"); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown control: %d", res.StatusCode)
	}
	if body := readAll(t, get(t, s, "/_emu/keyvault/state")); !strings.Contains(body, "probe") || strings.Contains(body, `"v"`) {
		t.Errorf("keyvault state = %s", body)
	}
}

func TestServiceBusConnectionString(t *testing.T) {
	s := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, err := azservicebus.NewClientFromConnectionString(s.Endpoints().ServiceBusConnectionString, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(ctx)
	// The command queue requires a session, as appreg's does in Azure.
	sender, err := client.NewSender("app-commands", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sender.SendMessage(ctx, &azservicebus.Message{Body: []byte(`{"x":1}`)}, nil); err == nil {
		t.Fatal("a message without a SessionId was accepted by a session queue")
	}
	session := "lab-sync"
	if err := sender.SendMessage(ctx, &azservicebus.Message{Body: []byte(`{"x":1}`), SessionID: &session}, nil); err != nil {
		t.Fatal(err)
	}
	recv, err := client.AcceptNextSessionForQueue(ctx, "app-commands", nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := recv.ReceiveMessages(ctx, 1, nil)
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != `{"x":1}` {
		t.Fatalf("receive: %v %v", msgs, err)
	}
	if err := recv.CompleteMessage(ctx, msgs[0], nil); err != nil {
		t.Fatal(err)
	}
}

func TestWriteDirRoundTrip(t *testing.T) {
	s := start(t)
	dir := t.TempDir()
	if err := s.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	ep, err := endpoints.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ep.TenantID != s.Endpoints().TenantID || ep.CAFile != dir+"/ca.pem" {
		t.Errorf("read back %+v", ep)
	}
	if _, err := azauth.LoadCertPool(ep.CAFile); err != nil {
		t.Errorf("ca.pem: %v", err)
	}
	raw, _ := json.Marshal(ep)
	for _, k := range []string{"tenantId", "authorityHost", "graphBaseUrl", "keyVaultUrl", "managedIdentity", "serviceBusConnectionString", "clients", "caFile"} {
		if !strings.Contains(string(raw), `"`+k+`"`) {
			t.Errorf("endpoints.json lacks %s", k)
		}
	}
}

func get(tb testing.TB, s *Server, path string) *http.Response {
	tb.Helper()
	res, err := s.Client().Get(s.URL() + path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { res.Body.Close() })
	return res
}

func readAll(tb testing.TB, res *http.Response) string {
	tb.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
