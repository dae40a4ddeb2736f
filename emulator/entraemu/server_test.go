package entraemu_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"appreg/emulator/entraemu"
	"appreg/emulator/internal/token"
)

const (
	clientID = "11111111-1111-1111-1111-111111111111"
	spID     = "22222222-2222-2222-2222-222222222222"
	// secret is a made-up value in Entra's format; nothing here is a real credential.
	secret    = "abc8Q~emulator-test-secret-0000000000000"
	systemMI  = "33333333-3333-3333-3333-333333333333"
	graphRole = "Application.ReadWrite.OwnedBy"
)

// fakeDirectory is a hand-written ClientAuthenticator: one client with one secret, and two
// managed identities. expired flips the client's secret to AADSTS7000222. The user-assigned
// identity's client ID is fresh per server because MSAL caches managed-identity tokens in a
// process-wide cache keyed by identity and resource, which would otherwise hand a later test a
// token signed by an earlier server's key.
type fakeDirectory struct {
	expired bool
	userMI  string
}

func (d *fakeDirectory) AuthenticateClient(_ context.Context, id, s string) (entraemu.Principal, error) {
	switch {
	case id != clientID:
		return entraemu.Principal{}, entraemu.ErrUnknownClient
	case s != secret:
		return entraemu.Principal{}, entraemu.ErrInvalidSecret
	case d.expired:
		return entraemu.Principal{}, entraemu.ErrExpiredSecret
	}
	return entraemu.Principal{AppID: clientID, ObjectID: spID, Roles: []string{graphRole}}, nil
}

func (d *fakeDirectory) ManagedIdentity(_ context.Context, id string) (entraemu.Principal, error) {
	switch id {
	case "":
		return entraemu.Principal{AppID: systemMI, ObjectID: "sys-oid", Roles: []string{graphRole}}, nil
	case d.userMI:
		return entraemu.Principal{AppID: d.userMI, ObjectID: "user-oid", Roles: []string{graphRole}}, nil
	}
	return entraemu.Principal{}, entraemu.ErrUnknownClient
}

func newServer(tb testing.TB) (*entraemu.Server, *fakeDirectory) {
	tb.Helper()
	dir := &fakeDirectory{userMI: uuid.NewString()}
	srv, err := entraemu.NewServer(&entraemu.Options{Clients: dir})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Close)
	return srv, dir
}

func clientOptions(srv *entraemu.Server) azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: srv.URL()},
		Transport: srv.Client(),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}
}

func TestClientSecretCredential(t *testing.T) {
	srv, _ := newServer(t)
	cred, err := azidentity.NewClientSecretCredential(srv.TenantID(), clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            clientOptions(srv),
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		scope     string
		wantAud   string
		wantRoles []string
	}{
		{"Graph", "https://graph.microsoft.com/.default", "https://graph.microsoft.com", []string{graphRole}},
		{"KeyVault", "https://vault.azure.net/.default", "https://vault.azure.net", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// EnableCAE makes MSAL send the claims parameter, as kiota and azsecrets do.
			tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{tt.scope}, EnableCAE: true})
			if err != nil {
				t.Fatal(err)
			}
			if until := time.Until(tok.ExpiresOn); until < 55*time.Minute || until > time.Hour {
				t.Errorf("ExpiresOn in %v, want about an hour", until)
			}
			c, err := srv.Issuer().Verify(tok.Token, tt.wantAud)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := token.Claims{
				Issuer: "https://sts.windows.net/" + srv.TenantID() + "/", Audience: tt.wantAud,
				TenantID: srv.TenantID(), AppID: clientID, ObjectID: spID, Subject: spID,
				Roles: tt.wantRoles, IDType: "app", Version: "1.0",
			}
			if diff := cmp.Diff(want, c, ignoreTimes); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
	if got := srv.State().TokensIssued[clientID]; got != 2 {
		t.Errorf("tokens issued to the client = %d, want 2 (one per resource; MSAL caches)", got)
	}
}

var ignoreTimes = cmp.FilterPath(func(p cmp.Path) bool {
	switch p.Last().String() {
	case ".IssuedAt", ".NotBefore", ".ExpiresAt":
		return true
	}
	return false
}, cmp.Ignore())

func TestClientSecretCredentialRefused(t *testing.T) {
	srv, dir := newServer(t)
	tests := []struct {
		name       string
		client     string
		secret     string
		expired    bool
		wantStatus int
		wantCode   string
	}{
		{"BadSecret", clientID, "not-the-secret", false, http.StatusUnauthorized, "AADSTS7000215"},
		{"UnknownClient", "99999999-9999-9999-9999-999999999999", secret, false, http.StatusBadRequest, "AADSTS700016"},
		{"ExpiredSecret", clientID, secret, true, http.StatusUnauthorized, "AADSTS7000222"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir.expired = tt.expired
			cred, err := azidentity.NewClientSecretCredential(srv.TenantID(), tt.client, tt.secret, &azidentity.ClientSecretCredentialOptions{
				ClientOptions:            clientOptions(srv),
				DisableInstanceDiscovery: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
			var afe *azidentity.AuthenticationFailedError
			if !errors.As(err, &afe) {
				t.Fatalf("GetToken error = %v, want AuthenticationFailedError", err)
			}
			if afe.RawResponse == nil || afe.RawResponse.StatusCode != tt.wantStatus {
				t.Errorf("status = %v, want %d", afe.RawResponse, tt.wantStatus)
			}
			if !strings.Contains(err.Error(), tt.wantCode) {
				t.Errorf("error does not mention %s: %v", tt.wantCode, err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Error("error text contains the secret")
			}
		})
	}
}

// TestManagedIdentityCredential sets IDENTITY_ENDPOINT/IDENTITY_HEADER, which azidentity reads
// from the environment, so it cannot run in parallel.
func TestManagedIdentityCredential(t *testing.T) {
	srv, dir := newServer(t)
	t.Setenv("IDENTITY_ENDPOINT", srv.MSIURL())
	t.Setenv("IDENTITY_HEADER", srv.MSIHeader())
	t.Setenv("IDENTITY_SERVER_THUMBPRINT", "")
	// The system-assigned identity's cache key cannot vary, so it asks for a fresh resource;
	// app roles only go into Graph tokens.
	fresh := "api://" + uuid.NewString()
	if err := srv.AddResource(fresh); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		id        azidentity.ManagedIDKind
		resource  string
		wantApp   string
		wantRoles []string
	}{
		{"SystemAssigned", nil, fresh, systemMI, nil},
		{"UserAssigned", azidentity.ClientID(dir.userMI), entraemu.GraphResource, dir.userMI, []string{graphRole}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
				ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}},
				ID:            tt.id,
			})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{tt.resource + "/.default"}})
			if err != nil {
				t.Fatal(err)
			}
			c, err := srv.Issuer().Verify(tok.Token, tt.resource)
			if err != nil {
				t.Fatal(err)
			}
			if c.AppID != tt.wantApp || !slices.Equal(c.Roles, tt.wantRoles) || c.TenantID != srv.TenantID() {
				t.Errorf("claims = %+v", c)
			}
		})
	}
	t.Run("UnknownIdentity", func(t *testing.T) {
		cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
			ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}},
			ID:            azidentity.ClientID("55555555-5555-5555-5555-555555555555"),
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
		var afe *azidentity.AuthenticationFailedError
		if !errors.As(err, &afe) {
			t.Fatalf("GetToken error = %v, want AuthenticationFailedError", err)
		}
	})
	t.Run("WrongHeader", func(t *testing.T) {
		t.Setenv("IDENTITY_HEADER", "wrong")
		cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
			ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}},
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{"api://" + uuid.NewString() + "/.default"}})
		var afe *azidentity.AuthenticationFailedError
		if !errors.As(err, &afe) || afe.RawResponse.StatusCode != http.StatusUnauthorized {
			t.Fatalf("GetToken error = %v, want a 401 AuthenticationFailedError", err)
		}
	})
}

// TestTokenEndpointRaw sends what curl would and checks Entra's documented shapes.
func TestTokenEndpointRaw(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t)
	tokenURL := srv.URL() + "/" + srv.TenantID() + "/oauth2/v2.0/token"
	good := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {clientID},
		"client_secret": {secret},
		"scope":         {"https://graph.microsoft.com/.default openid offline_access profile"},
		"claims":        {`{"access_token":{"xms_cc":{"values":["CP1"]}}}`},
	}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vals := range good {
			f[key] = vals
		}
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	tests := []struct {
		name       string
		url        string
		form       url.Values
		basic      bool
		wantStatus int
		wantError  string
		wantCode   int
	}{
		{"OK", tokenURL, good, false, 200, "", 0},
		{"TenantCaseInsensitive", srv.URL() + "/" + strings.ToUpper(srv.TenantID()) + "/oauth2/v2.0/token", good, false, 200, "", 0},
		{"BasicAuth", tokenURL, with("client_secret", ""), true, 200, "", 0},
		{"NoGrant", tokenURL, with("grant_type", ""), false, 400, "invalid_request", 900144},
		{"PasswordGrant", tokenURL, with("grant_type", "password"), false, 400, "unsupported_grant_type", 70003},
		{"NoClientID", tokenURL, with("client_id", ""), false, 400, "invalid_request", 900144},
		{"NoScope", tokenURL, with("scope", ""), false, 400, "invalid_request", 900144},
		{"OnlyOpenID", tokenURL, with("scope", "openid profile"), false, 400, "invalid_scope", 70011},
		{"NotDefault", tokenURL, with("scope", "https://graph.microsoft.com/User.Read"), false, 400, "invalid_scope", 1002012},
		{"TwoResources", tokenURL, with("scope", "https://graph.microsoft.com/.default https://vault.azure.net/.default"), false, 400, "invalid_scope", 28000},
		{"NoSecret", tokenURL, with("client_secret", ""), false, 401, "invalid_client", 7000218},
		{"BadSecret", tokenURL, with("client_secret", "nope"), false, 401, "invalid_client", 7000215},
		{"UnknownTenant", srv.URL() + "/contoso.onmicrosoft.com/oauth2/v2.0/token", good, false, 400, "invalid_request", 90002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, tt.url, strings.NewReader(tt.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("client-request-id", "corr-1")
			if tt.basic {
				req.SetBasicAuth(clientID, secret)
			}
			status, body := do(t, srv.Client(), req)
			if status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %v", status, tt.wantStatus, body)
			}
			if tt.wantStatus == 200 {
				if body["token_type"] != "Bearer" || body["expires_in"] != 3599.0 || body["ext_expires_in"] != 3599.0 || body["access_token"] == "" {
					t.Errorf("token body: token_type %v expires_in %v ext_expires_in %v", body["token_type"], body["expires_in"], body["ext_expires_in"])
				}
				return
			}
			checkAADError(t, body, tt.wantError, tt.wantCode)
			if body["correlation_id"] != "corr-1" {
				t.Errorf("correlation_id = %v, want the client-request-id", body["correlation_id"])
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, tokenURL, nil)
		status, body := do(t, srv.Client(), req)
		if status != 400 {
			t.Fatalf("status = %d", status)
		}
		checkAADError(t, body, "invalid_request", 900561)
	})
}

func checkAADError(tb testing.TB, body map[string]any, wantError string, wantCode int) {
	tb.Helper()
	if body["error"] != wantError {
		tb.Errorf("error = %v, want %s", body["error"], wantError)
	}
	desc, _ := body["error_description"].(string)
	if !strings.HasPrefix(desc, "AADSTS"+itoa(wantCode)+": ") || !strings.Contains(desc, "\r\nTrace ID: ") {
		tb.Errorf("error_description = %q, want AADSTS%d prefix and trace lines", desc, wantCode)
	}
	if codes, _ := body["error_codes"].([]any); len(codes) != 1 || codes[0] != float64(wantCode) {
		tb.Errorf("error_codes = %v, want [%d]", body["error_codes"], wantCode)
	}
	for _, k := range []string{"timestamp", "trace_id", "correlation_id", "error_uri"} {
		if s, _ := body[k].(string); s == "" {
			tb.Errorf("%s missing from %v", k, body)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestMetadata(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t)
	base := srv.URL() + "/" + srv.TenantID()

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/v2.0/.well-known/openid-configuration", nil)
	status, doc := do(t, srv.Client(), req)
	if status != 200 {
		t.Fatalf("openid-configuration status %d", status)
	}
	want := map[string]string{
		"issuer":                 base + "/v2.0",
		"token_endpoint":         base + "/oauth2/v2.0/token",
		"authorization_endpoint": base + "/oauth2/v2.0/authorize",
		"jwks_uri":               base + "/discovery/v2.0/keys",
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %s", k, doc[k], v)
		}
	}

	req, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, doc["jwks_uri"].(string), nil)
	status, keys := do(t, srv.Client(), req)
	if ks, _ := keys["keys"].([]any); status != 200 || len(ks) != 1 {
		t.Errorf("keys: %d %v", status, keys)
	}

	req, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL()+"/common/v2.0/.well-known/openid-configuration", nil)
	if _, common := do(t, srv.Client(), req); common["issuer"] != srv.URL()+"/{tenantid}/v2.0" {
		t.Errorf("common issuer = %v", common["issuer"])
	}

	req, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL()+"/nope/v2.0/.well-known/openid-configuration", nil)
	status, body := do(t, srv.Client(), req)
	if status != 400 {
		t.Errorf("unknown tenant status %d", status)
	}
	checkAADError(t, body, "invalid_tenant", 90002)

	auth := url.QueryEscape(srv.URL() + "/" + srv.TenantID() + "/oauth2/v2.0/authorize")
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL()+"/common/discovery/instance?api-version=1.1&authorization_endpoint="+auth, nil)
	status, inst := do(t, srv.Client(), req)
	if status != 200 || inst["tenant_discovery_endpoint"] != base+"/v2.0/.well-known/openid-configuration" {
		t.Errorf("instance discovery: %d %v", status, inst)
	}
}

func TestManagedIdentityRaw(t *testing.T) {
	t.Parallel()
	srv, dir := newServer(t)
	tests := []struct {
		name       string
		query      string
		header     string
		wantStatus int
	}{
		{"SystemAssigned", "api-version=2019-08-01&resource=https://vault.azure.net", srv.MSIHeader(), 200},
		{"UserAssigned", "api-version=2019-08-01&resource=https://vault.azure.net&client_id=" + dir.userMI, srv.MSIHeader(), 200},
		{"NoHeader", "api-version=2019-08-01&resource=https://vault.azure.net", "", 401},
		{"NoResource", "api-version=2019-08-01", srv.MSIHeader(), 400},
		{"OldAPIVersion", "api-version=2017-09-01&resource=https://vault.azure.net", srv.MSIHeader(), 400},
		{"UnknownClient", "api-version=2019-08-01&resource=https://vault.azure.net&client_id=nope", srv.MSIHeader(), 400},
		{"ObjectID", "api-version=2019-08-01&resource=https://vault.azure.net&object_id=x", srv.MSIHeader(), 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.MSIURL()+"?"+tt.query, nil)
			if tt.header != "" {
				req.Header.Set("X-IDENTITY-HEADER", tt.header)
			}
			status, body := do(t, http.DefaultClient, req)
			if status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %v", status, tt.wantStatus, body)
			}
			if status != 200 {
				if body["statusCode"] != float64(status) || body["message"] == "" {
					t.Errorf("error body = %v", body)
				}
				return
			}
			exp, _ := body["expires_on"].(string)
			if exp == "" || body["token_type"] != "Bearer" || body["resource"] != "https://vault.azure.net" || body["client_id"] == "" {
				t.Errorf("body = %v; expires_on must be a string", body)
			}
			if _, err := srv.Issuer().Verify(body["access_token"].(string), "https://vault.azure.net"); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestInjectedFailures(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {"https://vault.azure.net/.default"}}
	post := func() (int, map[string]any) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+"/"+srv.TenantID()+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return do(t, srv.Client(), req)
	}

	// Over HTTP, as a test in another process would.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+"/_emu/entra/faults",
		strings.NewReader(`{"operation":"token","status":503,"count":2,"retryAfterSeconds":1}`))
	if status, _ := do(t, srv.Client(), req); status != http.StatusNoContent {
		t.Fatalf("POST /_emu/entra/faults status %d", status)
	}
	for range 2 {
		status, body := post()
		if status != 503 {
			t.Fatalf("status = %d, want 503", status)
		}
		checkAADError(t, body, "temporarily_unavailable", 90033)
	}
	if status, _ := post(); status != 200 {
		t.Fatalf("after the failures ran out: status %d", status)
	}

	// In process, until cleared.
	if err := srv.InjectFault(entraemu.Fault{Status: 400, Code: "invalid_request", Message: "AADSTS50058: Silent sign-in failed."}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if status, body := post(); status != 400 || body["error_codes"].([]any)[0] != 50058.0 || body["error"] != "invalid_request" ||
			!strings.HasPrefix(body["error_description"].(string), "AADSTS50058: Silent sign-in failed.\r\n") {
			t.Fatalf("status %d body %v", status, body)
		}
	}
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodDelete, srv.URL()+"/_emu/entra/faults", nil)
	do(t, srv.Client(), req)
	if status, _ := post(); status != 200 {
		t.Fatalf("after clear: status %d", status)
	}

	req, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL()+"/_emu/entra/stats", nil)
	_, stats := do(t, srv.Client(), req)
	if ops, _ := stats["operations"].(map[string]any); ops["token"] != 7.0 || stats["faultsInjected"] != 5.0 {
		t.Errorf("stats = %v", stats)
	}
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL()+"/_emu/entra/state", nil)
	_, state := do(t, srv.Client(), req)
	if issued, _ := state["tokensIssued"].(map[string]any); len(issued) != 1 || issued[clientID] != 2.0 {
		t.Errorf("state = %v", state)
	}
	if err := srv.InjectFault(entraemu.Fault{Status: 200}); err == nil {
		t.Error("InjectFault accepted a success status")
	}
}

func do(tb testing.TB, c *http.Client, req *http.Request) (int, map[string]any) {
	tb.Helper()
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	var body map[string]any
	if len(raw) > 0 {
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			tb.Errorf("Content-Type = %q", ct)
		}
		if err := json.Unmarshal(raw, &body); err != nil {
			tb.Fatalf("body %q: %v", raw, err)
		}
	}
	return resp.StatusCode, body
}

// TestMountedHandler serves the authority from another listener, as azemu may on a shared port:
// the metadata follows the Host the client used, so MSAL's issuer check still passes.
func TestMountedHandler(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t)
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.TLS = srv.Authority().ServerTLS()
	ts.StartTLS()
	t.Cleanup(ts.Close)
	cred, err := azidentity.NewClientSecretCredential(srv.TenantID(), clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: ts.URL},
			Transport: srv.Client(),
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}}); err != nil {
		t.Fatal(err)
	}
}
