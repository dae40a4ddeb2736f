package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	khttp "github.com/microsoft/kiota-http-go"
	msgraph "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	graphauth "github.com/microsoftgraph/msgraph-sdk-go-core/authentication"

	"appreg/internal/registrar"
)

// DefaultBaseURL is global Microsoft Graph.
const DefaultBaseURL = "https://graph.microsoft.com"

// globalScope is the token scope of global Microsoft Graph.
const globalScope = "https://graph.microsoft.com/.default"

// sovereignHosts are the national-cloud Graph endpoints. Each is its own resource, so a token for
// one is only accepted there and the scope has to name that host.
var sovereignHosts = map[string]bool{
	"graph.microsoft.us":              true, // US Government L4
	"dod-graph.microsoft.us":          true, // US Government L5 (DoD)
	"microsoftgraph.chinacloudapi.cn": true, // operated by 21Vianet
}

// Options configure a Client; nil or zero fields take the defaults.
type Options struct {
	// BaseURL is the Graph endpoint without the version, e.g. https://graph.microsoft.us.
	// "" means DefaultBaseURL. The client appends /v1.0.
	BaseURL string
	// HTTPClient supplies the transport (TLS roots, proxy) and timeout. The SDK's middleware —
	// retry with Retry-After, redirects, telemetry headers — is always
	// layered on top of its Transport, so a test that passes an emulator's client still gets
	// the SDK's real behaviour on the wire. nil means the SDK's default client.
	HTTPClient *http.Client
	// PageSize is the $top of list requests; 0 leaves it to Graph (100 for applications).
	PageSize int32
	// Logger receives one debug record per Graph call; nil discards. No record carries a
	// request or response body.
	Logger *slog.Logger
}

// Client is the Microsoft Graph adapter. It is safe for concurrent use; build one and reuse it,
// since the SDK client caches tokens and connections.
type Client struct {
	sdk      *msgraph.GraphServiceClient
	log      *slog.Logger
	pageSize int32
	pressure *writePressure
}

var _ registrar.Directory = (*Client)(nil)

// New builds a Client that authenticates with cred.
func New(cred azcore.TokenCredential, opts *Options) (*Client, error) {
	if cred == nil {
		return nil, errors.New("graph: nil credential")
	}
	if opts == nil {
		opts = &Options{}
	}
	base, err := parseBaseURL(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	// kiota attaches a token only to hosts on this list and silently sends the request without
	// one elsewhere, so the list is exactly the host we were told to call.
	auth, err := graphauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred, []string{scopeFor(base)}, []string{base.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("graph: authentication provider: %w", err)
	}
	pressure := &writePressure{now: time.Now}
	adapter, err := msgraph.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, httpClient(opts.HTTPClient, pressure))
	if err != nil {
		return nil, fmt.Errorf("graph: request adapter: %w", err)
	}
	adapter.SetBaseUrl(strings.TrimSuffix(base.String(), "/") + "/v1.0")
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{sdk: msgraph.NewGraphServiceClient(adapter), log: log, pageSize: max(opts.PageSize, 0), pressure: pressure}, nil
}

func parseBaseURL(raw string) (*url.URL, error) {
	if raw == "" {
		raw = DefaultBaseURL
	}
	u, err := url.Parse(strings.TrimSuffix(strings.TrimSuffix(raw, "/"), "/v1.0"))
	if err != nil {
		return nil, fmt.Errorf("graph: base URL %q: %w", raw, err)
	}
	// Bearer tokens never travel in clear text, not even to an emulator on loopback.
	if u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("graph: base URL %q: want https://host[:port]", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("graph: base URL %q: no query, fragment or credentials allowed", raw)
	}
	return u, nil
}

// Scope is the token scope for the Graph endpoint at baseURL ("" for global Graph).
func Scope(baseURL string) string {
	u, err := parseBaseURL(baseURL)
	if err != nil {
		return globalScope
	}
	return scopeFor(u)
}

// scopeFor picks the token scope for a Graph endpoint. A national cloud is a separate resource
// whose tokens carry its own host as audience, so its scope is <BaseURL>/.default. Any other
// host — global Graph, canary, a private-link or proxy name, a local emulator — stands in for
// global Graph and needs a token for https://graph.microsoft.com: that is what Entra issues for
// global Graph wherever it is reached, and what a Graph emulator checks as the audience. A
// scope built from an emulator's 127.0.0.1:port would name a resource that does not exist.
func scopeFor(base *url.URL) string {
	host := strings.ToLower(base.Hostname())
	if sovereignHosts[host] {
		return "https://" + host + "/.default"
	}
	return globalScope
}

// httpClient layers the Graph SDK's middleware over the caller's transport, less its request
// compression: Graph does not ask for compressed bodies, appreg's are a few hundred bytes, and a
// fresh gzip writer per request was an eighth of the handler's CPU per registration. Without it
// there is also no compressed-header-on-an-uncompressed-retry to get wrong (kiota orders its
// middleware by map iteration).
func httpClient(given *http.Client, pressure *writePressure) *http.Client {
	opts := msgraph.GetDefaultClientOptions()
	middleware := slices.DeleteFunc(msgraphcore.GetDefaultMiddlewaresWithOptions(&opts), func(m khttp.Middleware) bool {
		_, ok := m.(*khttp.CompressionHandler)
		return ok
	})
	middleware = append(middleware, pressure, freshBody{})
	if given == nil {
		return msgraphcore.GetDefaultClient(&opts, middleware...)
	}
	c := *given
	c.Transport = khttp.NewCustomTransportWithParentTransport(given.Transport, middleware...)
	// kiota's redirect handler follows redirects itself; net/http must hand them back.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// freshBody is the innermost middleware: it hands the transport a private copy of the request
// body on every attempt. net/http may still be reading an attempt's body after the response has
// arrived (Graph answers a 429 without reading the request, and HTTP/2 writes bodies from another
// goroutine), so when kiota's retry handler rewinds the shared body and sends it again, the two
// readers race and the retry carries a truncated body. A copy per attempt leaves nothing to share.
type freshBody struct{}

func (freshBody) Intercept(p khttp.Pipeline, i int, req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return p.Next(req, i)
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	attempt := req.Clone(req.Context())
	attempt.Body = io.NopCloser(bytes.NewReader(b))
	attempt.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	attempt.ContentLength = int64(len(b))
	return p.Next(attempt, i)
}

// logCall records one Graph call at debug level: the operation, its identifiers, duration and,
// on failure, the translated error (which never holds a body).
func (c *Client) logCall(ctx context.Context, op string, start time.Time, err error, attrs ...slog.Attr) {
	if !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs = append(attrs, slog.String("op", op), slog.Duration("elapsed", time.Since(start)))
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "graph call", attrs...)
}
