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
	for _, path := range []string{"/" + ep.TenantID + "/v2.0/.well-known/openid-configuration", "/_emu/endpoints", "/_emu/graph/state", "/_emu/keyvault/state", "/_emu/entra/stats", "/_emu/servicebus/counts?entity=app-commands", "/_emu/arm/state", "/_emu/fhir/state"} {
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
	for _, k := range []string{"tenantId", "authorityHost", "graphBaseUrl", "keyVaultUrl", "managedIdentity", "serviceBusConnectionString", "clients", "caFile",
		"armEndpoint", "armAudience", "subscriptionId", "keyVaultResourceId", "serviceBusResourceId", "fhirServices"} {
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

// TestResourceManagerAndFHIR: the operator signs in to Resource Manager as the Azure CLI does
// (the management.core.windows.net audience) and sees the subscription and the tenant; the FHIR
// service serves its metadata anonymously and refuses appreg's own identity, which holds no FHIR
// role, with its 403.
func TestResourceManagerAndFHIR(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	ep := s.Endpoints()
	token := func(c endpoints.Client, scope string) string {
		cred, err := azauth.NewCredential(azauth.Options{TenantID: ep.TenantID, ClientID: c.ClientID, ClientSecret: c.ClientSecret, AuthorityHost: ep.AuthorityHost, Transport: s.Client()})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
		if err != nil {
			t.Fatal(err)
		}
		return tok.Token
	}
	operator, handler := ep.Clients[1], ep.Clients[0]
	if operator.Name != OperatorClientName || handler.Name != HandlerClientName {
		t.Fatalf("clients %+v", ep.Clients)
	}
	armToken := token(operator, "https://management.core.windows.net//.default")
	fhirURL := ep.FHIRServices[0].URL
	tests := []struct {
		name, path, bearer string
		status             int
		want               string
	}{
		{"Subscriptions", "/subscriptions?api-version=2022-12-01", armToken, 200, `"subscriptionId":"` + ep.SubscriptionID + `"`},
		{"Tenants", "/tenants?api-version=2022-12-01", armToken, 200, `"tenantId":"` + ep.TenantID + `"`},
		{"CloudMetadata", "/metadata/endpoints?api-version=2015-01-01", "", 200, `"loginEndpoint":"` + ep.AuthorityHost + `/"`},
		{"FHIRMetadata", strings.TrimPrefix(fhirURL, s.URL()) + "/metadata", "", 200, `"resourceType":"CapabilityStatement"`},
		{"FHIRWithoutRole", strings.TrimPrefix(fhirURL, s.URL()) + "/Patient", token(handler, fhirURL+"/.default"), 403, `"diagnostics":"Authorization failed."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.URL()+tt.path, nil)
			if tt.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			res, err := s.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if body := readAll(t, res); res.StatusCode != tt.status || !strings.Contains(body, tt.want) {
				t.Errorf("%d %s, want %d with %s", res.StatusCode, body, tt.status, tt.want)
			}
		})
	}
}
