package fhiremu_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"appreg/emulator/fhiremu"
	"appreg/emulator/internal/token"
	"appreg/internal/testutil"
)

const (
	tenant  = "11111111-2222-3333-4444-555555555555"
	service = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws/fhirservices/fhir"
	reader  = "aaaaaaaa-0000-4000-8000-000000000001"
	nobody  = "aaaaaaaa-0000-4000-8000-000000000002"
)

var epoch = time.Unix(1_780_000_000, 0).UTC()

// rbac grants FHIR read to principals from a time on.
type rbac struct{ since map[string]time.Time }

func (a rbac) Authorized(principalID, scope, action string, asOf time.Time) bool {
	t, ok := a.since[principalID]
	return ok && scope == service && strings.HasSuffix(action, "/resources/read") && !asOf.Before(t)
}

type fixture struct {
	srv    *fhiremu.Server
	clk    *testutil.Clock
	issuer *token.Issuer
	base   string
}

func newServer(t *testing.T) fixture {
	t.Helper()
	clk := testutil.NewClock(epoch)
	issuer, err := token.NewIssuer(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := fhiremu.NewServer(&fhiremu.Options{
		Issuer: issuer, TenantID: tenant, Services: []string{service}, Now: clk.Now,
		Authorizer: rbac{since: map[string]time.Time{reader: epoch}}, PropagationDelay: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return fixture{srv: srv, clk: clk, issuer: issuer, base: srv.URL() + srv.Services()[0].BasePath()}
}

func (f fixture) token(t *testing.T, oid, aud, tid string) string {
	t.Helper()
	raw, err := f.issuer.Sign(token.Claims{Issuer: "https://sts.windows.net/" + tid + "/", Audience: aud, TenantID: tid, AppID: "app", ObjectID: oid, Subject: oid})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (f fixture) get(t *testing.T, path, bearer string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.base+path, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

var outcomeID = regexp.MustCompile(`"id":"[0-9a-f]{32}"`)

func TestAuthenticationAndAuthorization(t *testing.T) {
	f := newServer(t)
	f.clk.Advance(time.Minute) // past the reader's grant plus the propagation delay
	// The bodies the managed service sends, as users have captured them, id aside.
	const unauthorized = `{"resourceType":"OperationOutcome","id":"<id>","issue":[{"severity":"error","code":"login","diagnostics":"Authentication failed."}]}`
	const forbidden = `{"resourceType":"OperationOutcome","id":"<id>","issue":[{"severity":"error","code":"forbidden","diagnostics":"Authorization failed."}]}`
	tests := []struct {
		name   string
		bearer string
		status int
		body   string
	}{
		{"NoToken", "", 401, unauthorized},
		{"Garbage", "not-a-jwt", 401, unauthorized},
		{"WrongAudience", f.token(t, reader, "https://management.azure.com", tenant), 401, unauthorized},
		{"OtherTenant", f.token(t, reader, f.base, "99999999-2222-3333-4444-555555555555"), 401, unauthorized},
		{"NoRole", f.token(t, nobody, f.base, tenant), 403, forbidden},
		{"Reader", f.token(t, reader, f.base, tenant), 200, `"resourceType":"Bundle"`},
		{"ReaderTrailingSlashAudience", f.token(t, reader, f.base+"/", tenant), 200, `"type":"searchset"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, hdr := f.get(t, "/Patient?_count=1", tt.bearer)
			if status != tt.status {
				t.Fatalf("status %d %s", status, body)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/fhir+json; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if status == 200 {
				if !strings.Contains(body, tt.body) {
					t.Errorf("body %s", body)
				}
				return
			}
			if !outcomeID.MatchString(body) {
				t.Errorf("no 32-hex id in %s", body)
			}
			if got := outcomeID.ReplaceAllString(body, `"id":"<id>"`); got != tt.body {
				t.Errorf("body %s, want %s", got, tt.body)
			}
			wantChallenge := `Bearer authorization_uri="https://login.microsoftonline.com/` + tenant + `", resource_id="` + f.base + `", realm="` + f.base + `"`
			if got := hdr.Get("WWW-Authenticate"); status == 401 && got != wantChallenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, wantChallenge)
			}
		})
	}
}

func TestPropagationDelay(t *testing.T) {
	f := newServer(t)
	tok := f.token(t, reader, f.base, tenant)
	if status, _, _ := f.get(t, "/Patient", tok); status != 403 {
		t.Fatalf("status %d right after the grant, want 403 while it propagates", status)
	}
	f.clk.Advance(31 * time.Second)
	if status, _, _ := f.get(t, "/Patient", tok); status != 200 {
		t.Fatalf("status %d after the propagation delay", status)
	}
	f.srv.SetPropagationDelay(time.Hour)
	if status, _, _ := f.get(t, "/Patient", tok); status != 403 {
		t.Fatalf("status %d with an hour's delay", status)
	}
}

func TestMetadataIsAnonymous(t *testing.T) {
	f := newServer(t)
	status, body, _ := f.get(t, "/metadata", "")
	if status != 200 {
		t.Fatalf("status %d %s", status, body)
	}
	for _, want := range []string{`"resourceType":"CapabilityStatement"`, `"code":"OAuth"`, `"system":"http://terminology.hl7.org/CodeSystem/restful-security-service"`,
		`"url":"http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"`, `/` + tenant + `/oauth2/v2.0/token`} {
		if !strings.Contains(body, want) {
			t.Errorf("CapabilityStatement lacks %s", want)
		}
	}
}

func TestSearchAndRead(t *testing.T) {
	f := newServer(t)
	f.clk.Advance(time.Minute)
	tok := f.token(t, reader, f.base, tenant)
	tests := []struct {
		name, path string
		status     int
		entries    int
		next       bool
	}{
		{"CountOne", "/Patient?_count=1", 200, 1, true},
		{"Default", "/Patient", 200, 3, false},
		{"SecondPage", "/Patient?_count=2&ct=2", 200, 1, false},
		{"BadCount", "/Patient?_count=x", 400, 0, false},
		{"UnknownType", "/Observation", 404, 0, false},
		{"Read", "/Patient/5d8e0b3a-1c2f-4a67-8b90-1e2f3a4b5c62", 200, 0, false},
		{"ReadMissing", "/Patient/nope", 404, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, _ := f.get(t, tt.path, tok)
			if status != tt.status {
				t.Fatalf("status %d %s", status, body)
			}
			var b struct {
				ResourceType string
				Entry        []json.RawMessage
				Link         []struct{ Relation, URL string }
			}
			_ = json.Unmarshal([]byte(body), &b)
			if b.ResourceType == "Bundle" && len(b.Entry) != tt.entries {
				t.Errorf("%d entries", len(b.Entry))
			}
			hasNext := false
			for _, l := range b.Link {
				hasNext = hasNext || l.Relation == "next"
			}
			if hasNext != tt.next {
				t.Errorf("next link %v: %s", hasNext, body)
			}
		})
	}
}
