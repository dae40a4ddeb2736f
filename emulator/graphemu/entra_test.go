package graphemu_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"appreg/internal/testutil"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"appreg/emulator/entraemu"
	"appreg/emulator/graphemu"
	"appreg/emulator/internal/ca"
	"appreg/emulator/internal/token"
)

// stack is Entra and Graph wired as azemu wires them: one CA, one signing key, one tenant, one
// clock, and Graph as Entra's directory.
type stack struct {
	*testEnv
	entra *entraemu.Server
}

func newStack(tb testing.TB) *stack {
	tb.Helper()
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	auth, err := ca.New()
	if err != nil {
		tb.Fatal(err)
	}
	iss, err := token.NewIssuer(clk.Now)
	if err != nil {
		tb.Fatal(err)
	}
	logs := &testutil.Buffer{}
	g, err := graphemu.NewServer(&graphemu.Options{Authority: auth, Issuer: iss, Now: clk.Now, Logger: newLogger(logs)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(g.Close)
	en, err := entraemu.NewServer(&entraemu.Options{Authority: auth, Issuer: iss, TenantID: g.TenantID(), Clients: g, Now: clk.Now, Logger: newLogger(logs)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(en.Close)
	return &stack{testEnv: &testEnv{srv: g, clock: clk, logs: logs}, entra: en}
}

// clientToken asks Entra's token endpoint the way curl would.
func (s *stack) clientToken(tb testing.TB, clientID, secret, scope string) (int, map[string]any) {
	tb.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {scope}}
	resp, err := s.entra.Client().PostForm(s.entra.URL()+"/"+s.entra.TenantID()+"/oauth2/v2.0/token", form)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &body); err != nil {
		tb.Fatalf("token body %q: %v", raw, err)
	}
	return resp.StatusCode, body
}

func aadCode(body map[string]any) string {
	desc, _ := body["error_description"].(string)
	code, _, _ := strings.Cut(desc, ":")
	return code
}

// TestSecretLifecycleAgainstEntra is the product's promise end to end: the handler's identity
// gets a Graph token, registers an app, and the secret it adds works at Entra exactly while it
// is a live password of that app.
func TestSecretLifecycleAgainstEntra(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	handlerID, _, _, handlerSecret, err := s.srv.SeedClient("appreg-handler", []string{roleOwnedBy})
	if err != nil {
		t.Fatal(err)
	}
	status, tokBody := s.clientToken(t, handlerID, handlerSecret, "https://graph.microsoft.com/.default openid profile offline_access")
	if status != 200 {
		t.Fatalf("handler token: %d %v", status, tokBody)
	}
	tok := tokBody["access_token"].(string)

	app := s.do(t, request{method: "PATCH", path: "/v1.0/applications(uniqueName='appreg-lab')", token: tok, gzip: true,
		headers: map[string]string{"Prefer": "create-if-missing"},
		body:    `{"displayName":"Lab","signInAudience":"AzureADMyOrg","tags":["appreg:managed"]}`}).must(t, http.StatusCreated)
	appID := app.str("appId")
	pw := s.do(t, request{method: "POST", path: "/v1.0/applications(appId='" + appID + "')/addPassword", token: tok,
		body: `{"passwordCredential":{"displayName":"appreg","endDateTime":"` + s.clock.Now().Add(90*24*time.Hour).Format(time.RFC3339) + `"}}`}).must(t, http.StatusOK)
	secret := pw.str("secretText")

	if status, body := s.clientToken(t, appID, secret, "https://vault.azure.net/.default"); status != 400 || aadCode(body) != "AADSTS7000229" {
		t.Errorf("before the SP exists: %d %s, want 400 AADSTS7000229", status, aadCode(body))
	}
	s.do(t, request{method: "PATCH", path: "/v1.0/servicePrincipals(appId='" + appID + "')", token: tok,
		headers: map[string]string{"Prefer": "create-if-missing"}, body: `{}`}).must(t, http.StatusCreated)

	// The real azidentity, as a FHIR client of the registered app would use it.
	cred, err := azidentity.NewClientSecretCredential(s.entra.TenantID(), appID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: s.entra.URL()},
			Transport: s.entra.Client(),
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	at, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	if err != nil {
		t.Fatalf("azidentity with the new secret: %v", err)
	}
	claims, err := s.srv.Issuer().Verify(at.Token, "https://vault.azure.net")
	if err != nil || claims.AppID != appID || claims.TenantID != s.srv.TenantID() || len(claims.Roles) != 0 {
		t.Errorf("claims %+v, %v", claims, err)
	}

	// One character off; "x" would be no change when the secret happens to end in it.
	wrong := secret[:39] + "x"
	if secret[39] == 'x' {
		wrong = secret[:39] + "y"
	}
	tests := []struct {
		name       string
		client     string
		secret     string
		wantStatus int
		wantCode   string
	}{
		{"Live", appID, secret, 200, ""},
		{"WrongSecret", appID, wrong, 401, "AADSTS7000215"},
		{"KeyIDIsNotTheSecret", appID, pw.str("keyId"), 401, "AADSTS7000215"},
		{"UnknownClient", "00000000-0000-0000-0000-00000000beef", secret, 400, "AADSTS700016"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := s.clientToken(t, tt.client, tt.secret, "https://vault.azure.net/.default")
			if status != tt.wantStatus || aadCode(body) != tt.wantCode {
				t.Errorf("token: %d %q, want %d %q", status, aadCode(body), tt.wantStatus, tt.wantCode)
			}
		})
	}

	// Expired: the injected clock moves past endDateTime.
	s.clock.Advance(91 * 24 * time.Hour)
	if status, body := s.clientToken(t, appID, secret, "https://vault.azure.net/.default"); status != 401 || aadCode(body) != "AADSTS7000222" {
		t.Errorf("expired: %d %s, want 401 AADSTS7000222", status, aadCode(body))
	}
	s.clock.Advance(-91 * 24 * time.Hour)

	// Removed: the secret stops working at once.
	s.do(t, request{method: "POST", path: "/v1.0/applications(appId='" + appID + "')/removePassword", token: tok,
		body: `{"keyId":"` + pw.str("keyId") + `"}`}).must(t, http.StatusNoContent)
	if status, body := s.clientToken(t, appID, secret, "https://vault.azure.net/.default"); status != 401 || aadCode(body) != "AADSTS7000215" {
		t.Errorf("removed: %d %s, want 401 AADSTS7000215", status, aadCode(body))
	}

	checkNoSecrets(t, []string{secret, handlerSecret}, s.logs.String(), mustJSON(t, s.srv.State()))
}

// TestManagedIdentityAgainstEntra: the function app's identity gets a Graph token with its app
// roles from the App Service endpoint, and Graph accepts it.
func TestManagedIdentityAgainstEntra(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	sysClient, sysObject := s.srv.SeedManagedIdentity([]string{roleOwnedBy})
	userClient, _ := s.srv.SeedManagedIdentity(nil)

	msi := func(query string) (int, map[string]any) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.entra.MSIURL()+"?api-version=2019-08-01&"+query, nil)
		req.Header.Set("X-IDENTITY-HEADER", s.entra.MSIHeader())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	status, body := msi("resource=https://graph.microsoft.com")
	if status != 200 || body["client_id"] != sysClient {
		t.Fatalf("system-assigned: %d %v", status, body)
	}
	c, err := s.srv.Issuer().Verify(body["access_token"].(string), entraemu.GraphResource)
	if err != nil || c.ObjectID != sysObject || !slices.Equal(c.Roles, []string{roleOwnedBy}) {
		t.Errorf("claims %+v %v", c, err)
	}
	s.do(t, request{method: "POST", path: "/v1.0/applications", token: body["access_token"].(string), body: `{"displayName":"by MI"}`}).must(t, http.StatusCreated)

	status, body = msi("resource=https://graph.microsoft.com&client_id=" + userClient)
	if status != 200 || body["client_id"] != userClient {
		t.Fatalf("user-assigned: %d %v", status, body)
	}
	// No roles: Graph refuses it.
	s.do(t, request{method: "GET", path: "/v1.0/applications", token: body["access_token"].(string)}).must(t, http.StatusForbidden)

	if status, _ := msi("resource=https://graph.microsoft.com&client_id=00000000-0000-0000-0000-000000000000"); status != 400 {
		t.Errorf("unknown identity: %d", status)
	}
}

func TestLaggingAppAtEntra(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	_, tok := s.seededCaller(t, roleOwnedBy)
	if err := s.srv.SetReplication(graphemu.Replication{Replicas: 1, MinLag: time.Hour, MaxLag: time.Hour}); err != nil {
		t.Fatal(err)
	}
	appID := s.do(t, request{method: "POST", path: "/v1.0/applications", token: tok, body: `{"displayName":"new"}`}).must(t, http.StatusCreated).str("appId")
	if status, body := s.clientToken(t, appID, "whatever", "https://vault.azure.net/.default"); status != 400 || aadCode(body) != "AADSTS700016" {
		t.Errorf("lagging app: %d %s, want AADSTS700016 as Entra answers for brand-new apps", status, aadCode(body))
	}
	_, err := s.srv.AuthenticateClient(t.Context(), appID, "whatever")
	if !errors.Is(err, entraemu.ErrUnknownClient) {
		t.Errorf("AuthenticateClient: %v", err)
	}
}

// TestGraphAppIDScope: a client may name Graph by its application ID; the token still carries
// the roles and Graph accepts it.
func TestGraphAppIDScope(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	id, _, _, secret, err := s.srv.SeedClient("by-guid", []string{roleAll})
	if err != nil {
		t.Fatal(err)
	}
	status, body := s.clientToken(t, id, secret, entraemu.GraphAppID+"/.default")
	if status != 200 {
		t.Fatalf("token: %d %v", status, body)
	}
	s.do(t, request{method: "GET", path: "/v1.0/applications", token: body["access_token"].(string)}).must(t, http.StatusOK)
}
