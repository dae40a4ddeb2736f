package keyvaultemu_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"appreg/emulator/internal/token"
	"appreg/emulator/keyvaultemu"
)

// epoch is the tests' "now": 2026-05-28T20:26:40Z.
var epoch = time.Unix(1_780_000_000, 0).UTC()

const testTenant = "11111111-2222-3333-4444-555555555555"

// clock is the injected clock: time moves only when a test says so.
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

// sequentialIDs hands out 00…01, 00…02, … so bodies are reproducible.
func sequentialIDs() func() string {
	var n atomic.Int64
	return func() string { return fmt.Sprintf("%032x", n.Add(1)) }
}

// newServer starts an emulator on an injected clock; opts may preset anything but Now.
func newServer(tb testing.TB, opts *keyvaultemu.Options) (*keyvaultemu.Server, *clock) {
	tb.Helper()
	clk := &clock{t: epoch}
	if opts == nil {
		opts = &keyvaultemu.Options{}
	}
	o := *opts
	o.Now = clk.Now
	if o.TenantID == "" {
		o.TenantID = testTenant
	}
	srv, err := keyvaultemu.NewServer(&o)
	if err != nil {
		tb.Fatalf("NewServer: %v", err)
	}
	tb.Cleanup(srv.Close)
	return srv, clk
}

// credential is the small stand-in for azidentity: it signs with the emulator's issuer for the
// scope and tenant azsecrets asks for, unless told to get one of them wrong.
type credential struct {
	issuer   *token.Issuer
	clk      *clock
	audience string // "" = derived from the scope
	tenant   string // "" = the tenant from the challenge
	oid      string // "" = 00000000-0000-0000-0000-0000000000b1
	calls    atomic.Int32
}

func newCredential(srv *keyvaultemu.Server, clk *clock) *credential {
	return &credential{issuer: srv.Issuer(), clk: clk}
}

func (c *credential) GetToken(_ context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.calls.Add(1)
	if len(opts.Scopes) != 1 {
		return azcore.AccessToken{}, fmt.Errorf("want one scope, got %v", opts.Scopes)
	}
	aud := c.audience
	if aud == "" {
		aud = strings.TrimSuffix(opts.Scopes[0], "/.default")
	}
	tid := c.tenant
	if tid == "" {
		tid = opts.TenantID
	}
	oid := c.oid
	if oid == "" {
		oid = "00000000-0000-0000-0000-0000000000b1"
	}
	raw, err := c.issuer.Sign(token.Claims{
		Issuer: "https://sts.windows.net/" + tid + "/", Audience: aud, TenantID: tid,
		AppID: "00000000-0000-0000-0000-0000000000a1", ObjectID: oid,
		// Valid for a long stretch of test time, so advancing the clock by days keeps it good.
		ExpiresAt: c.clk.Now().Add(1000 * 24 * time.Hour).Unix(),
	})
	// azcore caches on the real clock; an hour is plenty for a test.
	return azcore.AccessToken{Token: raw, ExpiresOn: time.Now().Add(time.Hour)}, err
}

// newClient is the real azsecrets client over the emulator's TLS, with retries kept short.
func newClient(tb testing.TB, srv *keyvaultemu.Server, cred azcore.TokenCredential) *azsecrets.Client {
	tb.Helper()
	c, err := azsecrets.NewClient(srv.URL(), cred, &azsecrets.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			Transport: srv.Client(),
			Retry:     policy.RetryOptions{MaxRetries: 3, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond},
		},
		DisableChallengeResourceVerification: true,
	})
	if err != nil {
		tb.Fatalf("azsecrets.NewClient: %v", err)
	}
	return c
}

// serviceError unpacks an SDK error into status, code and inner code.
func serviceError(tb testing.TB, err error) (status int, code, inner, message string) {
	tb.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		tb.Fatalf("want *azcore.ResponseError, got %T: %v", err, err)
	}
	body, _ := runtime.Payload(re.RawResponse)
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Inner   *struct {
				Code string `json:"code"`
			} `json:"innererror"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		tb.Fatalf("error body is not Key Vault's shape: %v", err)
	}
	if e.Error.Inner != nil {
		inner = e.Error.Inner.Code
	}
	return re.StatusCode, re.ErrorCode, inner, e.Error.Message
}

// bearer mints a good token for raw HTTP requests.
func bearer(tb testing.TB, srv *keyvaultemu.Server) string {
	tb.Helper()
	raw, err := srv.Issuer().Sign(token.Claims{Audience: keyvaultemu.Audience, TenantID: srv.TenantID(), ExpiresAt: epoch.Add(1000 * 24 * time.Hour).Unix()})
	if err != nil {
		tb.Fatal(err)
	}
	return "Bearer " + raw
}

// call makes one raw HTTPS request, the way curl would, and returns the response and its body.
func call(tb testing.TB, srv *keyvaultemu.Server, method, url, auth, body string) (*http.Response, []byte) {
	tb.Helper()
	if strings.HasPrefix(url, "/") {
		url = strings.TrimSuffix(srv.URL(), "/") + url
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, b
}
