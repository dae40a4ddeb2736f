package keyvaultemu_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"appreg/emulator/internal/token"
	"appreg/emulator/keyvaultemu"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares a response body with testdata/<name>.json, byte for byte after compacting the
// golden (key order matters: it is the service's order). The emulator's origin reads as
// https://vault.test in the files.
func golden(tb testing.TB, srv *keyvaultemu.Server, name string, body []byte) {
	tb.Helper()
	got := bytes.ReplaceAll(body, []byte(strings.TrimSuffix(srv.URL(), "/")), []byte("https://vault.test"))
	path := filepath.Join("testdata", name+".json")
	if *update {
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, got, "", "  "); err != nil {
			tb.Fatalf("%s: response is not JSON: %v", name, err)
		}
		pretty.WriteByte('\n')
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("golden %s: %v (run go test -update once)", name, err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, want); err != nil {
		tb.Fatalf("golden %s: %v", name, err)
	}
	if !bytes.Equal(compact.Bytes(), got) {
		tb.Errorf("%s body:\n got %s\nwant %s", name, got, compact.Bytes())
	}
}

// newRESTServer is deterministic: fixed clock, sequential versions, fixed tenant.
func newRESTServer(tb testing.TB, opts *keyvaultemu.Options) (*keyvaultemu.Server, *clock) {
	tb.Helper()
	if opts == nil {
		opts = &keyvaultemu.Options{}
	}
	opts.IDs = sequentialIDs()
	return newServer(tb, opts)
}

func TestRESTChallengeComesFirst(t *testing.T) {
	srv, _ := newRESTServer(t, nil)
	wantChallenge := `Bearer authorization="https://login.microsoftonline.com/` + testTenant + `", resource="https://vault.azure.net"`
	tests := []struct {
		name, method, path, body string
	}{
		// azsecrets' first request: the PUT without body and without token.
		{"SetWithoutBody", "PUT", "/secrets/mysecret?api-version=2026-04-01", ""},
		// The body is not even looked at before the token is.
		{"SetWithJunkBody", "PUT", "/secrets/mysecret?api-version=2026-04-01", "{not json"},
		{"List", "GET", "/secrets?api-version=7.4", ""},
		{"NoAPIVersion", "GET", "/secrets/mysecret", ""},
		{"InvalidName", "GET", "/secrets/bad_name?api-version=7.4", ""},
		{"UnknownPath", "GET", "/keys?api-version=7.4", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := call(t, srv, tt.method, tt.path, "", tt.body)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401", resp.StatusCode)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != wantChallenge {
				t.Errorf("WWW-Authenticate = %s\nwant %s", got, wantChallenge)
			}
			golden(t, srv, "challenge", body)
		})
	}
	if n := srv.Stats().Operations; len(n) != 0 {
		t.Errorf("unauthenticated requests reached operations: %v", n)
	}

	t.Run("AuthorityURL", func(t *testing.T) {
		other, _ := newRESTServer(t, &keyvaultemu.Options{AuthorityURL: "https://127.0.0.1:8443/"})
		resp, _ := call(t, other, "GET", "/secrets?api-version=7.4", "", "")
		want := `Bearer authorization="https://127.0.0.1:8443/` + testTenant + `", resource="https://vault.azure.net"`
		if got := resp.Header.Get("WWW-Authenticate"); got != want {
			t.Errorf("WWW-Authenticate = %s, want %s", got, want)
		}
	})
}

func TestRESTTokens(t *testing.T) {
	srv, _ := newRESTServer(t, nil)
	foreign, err := token.NewIssuer(func() time.Time { return epoch })
	if err != nil {
		t.Fatal(err)
	}
	sign := func(iss *token.Issuer, c token.Claims) string {
		raw, err := iss.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + raw
	}
	good := token.Claims{Audience: keyvaultemu.Audience, TenantID: testTenant}
	with := func(f func(*token.Claims)) token.Claims { c := good; f(&c); return c }
	tests := []struct {
		name    string
		auth    string
		status  int
		message string // prefix
	}{
		{"Good", sign(srv.Issuer(), good), 200, ""},
		{"TrailingSlashAudience", sign(srv.Issuer(), with(func(c *token.Claims) { c.Audience += "/" })), 200, ""},
		{"AppIDAudience", sign(srv.Issuer(), with(func(c *token.Claims) { c.Audience = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093" })), 200, ""},
		{"LowercaseScheme", strings.Replace(sign(srv.Issuer(), good), "Bearer", "bearer", 1), 200, ""},
		{"NoToken", "", 401, "AKV10000: Request is missing a Bearer, PoP, or MTLS_POP token."},
		{"BasicScheme", "Basic dXNlcjpwYXNz", 401, "AKV10000:"},
		{"GraphAudience", sign(srv.Issuer(), with(func(c *token.Claims) { c.Audience = "https://graph.microsoft.com" })), 401,
			"AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://graph.microsoft.com."},
		{"OtherTenant", sign(srv.Issuer(), with(func(c *token.Claims) { c.TenantID = "other" })), 401,
			"AKV10032: Invalid issuer. Expected one of https://sts.windows.net/" + testTenant + "/, found https://sts.windows.net/other/."},
		{"ForeignSignature", sign(foreign, good), 401, "AKV10046: Unable to resolve the key used for signature validation."},
		{"Expired", sign(srv.Issuer(), with(func(c *token.Claims) {
			c.IssuedAt, c.ExpiresAt = epoch.Add(-2*time.Hour).Unix(), epoch.Add(-time.Hour).Unix()
		})), 401, "Token validation failed"},
		{"Garbage", "Bearer not.a.jwt", 401, "AKV10046"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := call(t, srv, "GET", "/secrets?api-version=7.4", tt.auth, "")
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, body, tt.status)
			}
			if tt.status != 401 {
				return
			}
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("every 401 carries the challenge")
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != "Unauthorized" || !strings.HasPrefix(e.Error.Message, tt.message) {
				t.Errorf("body = %s, want Unauthorized %q…", body, tt.message)
			}
		})
	}
}

// TestRESTDocumentedRequests replays the requests of Microsoft's REST reference (Set Secret, Get
// Secret, Update Secret, Get Secrets, Get Secret Versions, Delete Secret, Get Deleted Secret,
// Get Deleted Secrets, Purge Deleted Secret) and pins status codes and bodies.
func TestRESTDocumentedRequests(t *testing.T) {
	srv, clk := newRESTServer(t, nil)
	auth := bearer(t, srv)
	const q = "?api-version=7.4"
	steps := []struct {
		name, method, path, body string
		status                   int
		golden                   string
		advance                  time.Duration
	}{
		{"Set", "PUT", "/secrets/mysecretname" + q, `{"value":"mysecretvalue"}`, 200, "set", time.Minute},
		{"SetFull", "PUT", "/secrets/mysecretname" + q,
			`{"value":"mysecretvalue2","contentType":"text/plain","attributes":{"enabled":true,"nbf":1780086400,"exp":1787776000},"tags":{"managed-by":"appreg","keyId":"k-1"}}`,
			200, "set_full", 0},
		{"GetLatestSlash", "GET", "/secrets/mysecretname/" + q, "", 200, "get_latest", 0},
		{"GetLatestNoSlash", "GET", "/secrets/mysecretname" + q, "", 200, "get_latest", 0},
		{"GetVersion", "GET", "/secrets/mysecretname/00000000000000000000000000000001" + q, "", 200, "get_version", time.Minute},
		{"Update", "PATCH", "/secrets/mysecretname/00000000000000000000000000000001" + q, `{"attributes":{"enabled":false},"tags":{"k":"v"}}`, 200, "update", 0},
		{"GetDisabled", "GET", "/secrets/mysecretname/00000000000000000000000000000001" + q, "", 403, "disabled", 0},
		{"List", "GET", "/secrets" + q, "", 200, "list", 0},
		{"Versions", "GET", "/secrets/mysecretname/versions" + q, "", 200, "versions", 0},
		{"GetMissing", "GET", "/secrets/nosuchsecret" + q, "", 404, "not_found", 0},
		{"Delete", "DELETE", "/secrets/mysecretname" + q, "", 200, "delete", 0},
		{"GetDeletedTooSoon", "GET", "/deletedsecrets/mysecretname" + q, "", 404, "deleted_not_found", 0},
		{"SetWhileDeleting", "PUT", "/secrets/mysecretname" + q, `{"value":"x"}`, 409, "being_deleted", keyvaultemu.DefaultDeleteLag},
		{"GetDeleted", "GET", "/deletedsecrets/mysecretname" + q, "", 200, "deleted", 0},
		{"ListDeleted", "GET", "/deletedsecrets" + q, "", 200, "deleted_list", 0},
		{"SetDeletedName", "PUT", "/secrets/mysecretname" + q, `{"value":"x"}`, 409, "conflict_deleted", 0},
		{"Purge", "DELETE", "/deletedsecrets/mysecretname" + q, "", 204, "", 0},
	}
	for _, st := range steps {
		// One server walks through all steps in order; a failure stops the walk.
		resp, body := call(t, srv, st.method, st.path, auth, st.body)
		if resp.StatusCode != st.status {
			t.Fatalf("%s: status = %d (%s), want %d", st.name, resp.StatusCode, body, st.status)
		}
		if st.golden != "" {
			golden(t, srv, st.golden, body)
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("%s: Content-Type = %q", st.name, ct)
			}
		} else if len(body) != 0 || resp.Header.Get("Content-Type") != "" {
			t.Errorf("%s: a 204 has no body and no Content-Type, got %q %q", st.name, body, resp.Header.Get("Content-Type"))
		}
		clk.Advance(st.advance)
	}
}

func TestRESTErrors(t *testing.T) {
	srv, _ := newRESTServer(t, nil)
	auth := bearer(t, srv)
	call(t, srv, "PUT", "/secrets/exists?api-version=7.4", auth, `{"value":"v"}`)
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"NoAPIVersion", "GET", "/secrets/exists", "", 400, "BadParameter"},
		{"InvalidName", "GET", "/secrets/bad_name?api-version=7.4", "", 400, "BadParameter"},
		{"InvalidJSON", "PUT", "/secrets/exists?api-version=7.4", `{"value":`, 400, "BadParameter"},
		{"NoBody", "PUT", "/secrets/exists?api-version=7.4", "", 400, "BadParameter"},
		{"ValueNotString", "PUT", "/secrets/exists?api-version=7.4", `{"value":42}`, 400, "BadParameter"},
		{"MaxResultsZero", "GET", "/secrets?api-version=7.4&maxresults=0", "", 400, "BadParameter"},
		{"MaxResultsWord", "GET", "/secrets?api-version=7.4&maxresults=ten", "", 400, "BadParameter"},
		{"BadSkipToken", "GET", "/secrets?api-version=7.4&$skiptoken=%21%21", "", 400, "BadParameter"},
		{"UnknownPath", "GET", "/keys?api-version=7.4", "", 404, "NotFound"},
		{"UnknownMethod", "POST", "/secrets/exists?api-version=7.4", "", 404, "NotFound"},
		{"UpdateMissing", "PATCH", "/secrets/missing?api-version=7.4", `{}`, 404, "SecretNotFound"},
		{"DeleteMissing", "DELETE", "/secrets/missing?api-version=7.4", "", 404, "SecretNotFound"},
		{"PurgeMissing", "DELETE", "/deletedsecrets/missing?api-version=7.4", "", 404, "SecretNotFound"},
		{"RecoverMissing", "POST", "/deletedsecrets/missing/recover?api-version=7.4", "", 404, "SecretNotFound"},
		{"BackupMissing", "POST", "/secrets/missing/backup?api-version=7.4", "", 404, "SecretNotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := call(t, srv, tt.method, tt.path, auth, tt.body)
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body %q is not Key Vault's error shape: %v", body, err)
			}
			if resp.StatusCode != tt.status || e.Error.Code != tt.code || e.Error.Message == "" {
				t.Errorf("got %d %s %q, want %d %s", resp.StatusCode, e.Error.Code, e.Error.Message, tt.status, tt.code)
			}
		})
	}
	resp, body := call(t, srv, "GET", "/secrets/bad_name?api-version=7.4", auth, "")
	if resp.StatusCode != 400 {
		t.Fatal(resp.StatusCode)
	}
	golden(t, srv, "invalid_name", body)
}

func TestRESTHeaders(t *testing.T) {
	srv, _ := newRESTServer(t, nil)
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	for _, auth := range []string{"", bearer(t, srv)} {
		resp, _ := call(t, srv, "GET", "/secrets?api-version=7.4", auth, "")
		h := resp.Header
		if !uuidRE.MatchString(h.Get("x-ms-request-id")) || h.Get("x-ms-keyvault-service-version") == "" ||
			h.Get("x-ms-keyvault-region") == "" || h.Get("Content-Type") != "application/json; charset=utf-8" ||
			h.Get("Cache-Control") != "no-cache" {
			t.Errorf("%d headers = %v", resp.StatusCode, h)
		}
	}
}

func TestRESTPagingLinks(t *testing.T) {
	srv, _ := newRESTServer(t, nil)
	auth := bearer(t, srv)
	for _, n := range []string{"c", "a", "b", "d", "e"} {
		call(t, srv, "PUT", "/secrets/"+n+"?api-version=7.4", auth, `{"value":"v"}`)
	}
	type page struct {
		Value []struct {
			ID string `json:"id"`
		} `json:"value"`
		NextLink *string `json:"nextLink"`
	}
	var names []string
	link := "/secrets?api-version=2016-10-01&maxresults=2"
	for pages := 0; link != ""; pages++ {
		if pages > 3 {
			t.Fatal("paging does not end")
		}
		resp, body := call(t, srv, "GET", link, auth, "")
		var p page
		if resp.StatusCode != 200 || json.Unmarshal(body, &p) != nil {
			t.Fatalf("GET %s = %d %s", link, resp.StatusCode, body)
		}
		for _, v := range p.Value {
			names = append(names, v.ID[strings.LastIndex(v.ID, "/")+1:])
		}
		link = ""
		if p.NextLink != nil {
			link = *p.NextLink
			base := strings.TrimSuffix(srv.URL(), "/") + "/secrets?api-version=2016-10-01&$skiptoken="
			if !strings.HasPrefix(link, base) || !strings.HasSuffix(link, "&maxresults=2") {
				t.Errorf("nextLink = %s, want an absolute %s…&maxresults=2", link, base)
			}
		}
	}
	if strings.Join(names, ",") != "a,b,c,d,e" {
		t.Errorf("paged names = %v", names)
	}

	// maxresults above the service's page size is held to 25.
	for i := range 30 {
		call(t, srv, "PUT", "/secrets/v?api-version=7.4", auth, `{"value":"`+strings.Repeat("v", i)+`"}`)
	}
	_, body := call(t, srv, "GET", "/secrets/v/versions?api-version=7.4&maxresults=100", auth, "")
	var p page
	if err := json.Unmarshal(body, &p); err != nil || len(p.Value) != 25 || p.NextLink == nil || !strings.HasSuffix(*p.NextLink, "&maxresults=25") {
		t.Errorf("maxresults=100 gave %d items, nextLink %v", len(p.Value), p.NextLink)
	}
	// An empty page for a name with no secret.
	resp, body := call(t, srv, "GET", "/secrets/nothing/versions?api-version=7.4", auth, "")
	if resp.StatusCode != 200 || string(body) != `{"value":[],"nextLink":null}` {
		t.Errorf("versions of nothing = %d %s", resp.StatusCode, body)
	}
}
