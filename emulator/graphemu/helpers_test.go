package graphemu_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"appreg/internal/testutil"

	"appreg/emulator/entraemu"
	"appreg/emulator/graphemu"
	"appreg/emulator/internal/token"
)

// uniqueNameTaken is Entra's message for a uniqueName in use, by a live or a soft-deleted app.
const uniqueNameTaken = "Another object with the same value for property uniqueName already exists."

// Graph app roles the tests grant.
const (
	roleOwnedBy = "Application.ReadWrite.OwnedBy"
	roleAll     = "Application.ReadWrite.All"
	roleRead    = "Application.Read.All"
)

// clock is a settable test clock shared by the emulators and their token issuer.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testEnv is a Graph emulator plus callers with different permissions.
type testEnv struct {
	srv   *graphemu.Server
	clock *clock
	logs  *testutil.Buffer
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newEnv(tb testing.TB) *testEnv { return newEnvWith(tb, graphemu.Options{}) }

// newEnvWith is newEnv with options; the clock, issuer and logger are the test's.
func newEnvWith(tb testing.TB, opts graphemu.Options) *testEnv {
	tb.Helper()
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	iss, err := token.NewIssuer(clk.Now)
	if err != nil {
		tb.Fatal(err)
	}
	logs := &testutil.Buffer{}
	opts.Issuer, opts.Now, opts.Logger = iss, clk.Now, newLogger(logs)
	srv, err := graphemu.NewServer(&opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Close)
	return &testEnv{srv: srv, clock: clk, logs: logs}
}

// caller mints a Graph token for a principal with the given object ID and roles, as the Entra
// emulator would.
func (e *testEnv) caller(tb testing.TB, oid string, roles ...string) string {
	tb.Helper()
	raw, err := e.srv.Issuer().Sign(token.Claims{
		Audience: entraemu.GraphResource, TenantID: e.srv.TenantID(),
		AppID: "app-of-" + oid, ObjectID: oid, Subject: oid, Roles: roles, IDType: "app",
	})
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// seededCaller is a seeded client with roles and a token for it, as the appreg handler is.
func (e *testEnv) seededCaller(tb testing.TB, roles ...string) (spID, tok string) {
	tb.Helper()
	_, _, spID, _, err := e.srv.SeedClient("caller", roles)
	if err != nil {
		tb.Fatal(err)
	}
	return spID, e.caller(tb, spID, roles...)
}

// request is one REST call in the shape of Microsoft's documented examples.
type request struct {
	method  string
	path    string // after the service root, e.g. /v1.0/applications
	body    string
	gzip    bool
	token   string
	headers map[string]string
}

type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (e *testEnv) do(tb testing.TB, r request) response {
	tb.Helper()
	var rd io.Reader
	if r.body != "" {
		if r.gzip {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write([]byte(r.body))
			zw.Close()
			rd = &b
		} else {
			rd = strings.NewReader(r.body)
		}
	}
	req, err := http.NewRequestWithContext(tb.Context(), r.method, e.srv.URL()+r.path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
		if r.gzip {
			req.Header.Set("Content-Encoding", "gzip")
		}
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	out := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			tb.Fatalf("%s %s: body %q is not a JSON object: %v", r.method, r.path, raw, err)
		}
	}
	return out
}

// must fails the test unless the response has the status.
func (r response) must(tb testing.TB, status int) response {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status = %d, want %d; body %s", r.status, status, redact(r.raw))
	}
	return r
}

// redact hides secretText values, so a failing test never prints a secret.
func redact(raw []byte) []byte {
	return secretTextRE.ReplaceAll(raw, []byte(`"secretText":"[redacted]"`))
}

var secretTextRE = regexp.MustCompile(`"secretText"\s*:\s*"[^"]*"`)

// odataError checks Graph's error envelope and returns its code and message.
func (r response) odataError(tb testing.TB) (code, message string) {
	tb.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Errorf("error Content-Type = %q", ct)
	}
	e, _ := r.body["error"].(map[string]any)
	code, _ = e["code"].(string)
	message, _ = e["message"].(string)
	if code == "" || message == "" {
		tb.Errorf("error body lacks code or message: %s", redact(r.raw))
	}
	inner, _ := e["innerError"].(map[string]any)
	for _, k := range []string{"date", "request-id", "client-request-id"} {
		if s, _ := inner[k].(string); s == "" {
			tb.Errorf("innerError.%s missing: %s", k, redact(r.raw))
		}
	}
	return code, message
}

func (r response) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

// tokenClaims are the claims of a token for an all-powerful caller at the given audience.
func tokenClaims(e *testEnv, audience string) token.Claims {
	return token.Claims{Audience: audience, TenantID: e.srv.TenantID(), AppID: "x", ObjectID: "x", Roles: []string{roleAll}}
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
