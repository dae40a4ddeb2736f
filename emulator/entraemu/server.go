package entraemu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"appreg/emulator/emu"
	"appreg/emulator/internal/ca"
	"appreg/emulator/internal/token"
)

// ClientAuthenticator is how Entra checks a client secret. The Graph emulator implements it, so a
// secret works exactly while it is a live password of that app (startDateTime <= now <
// endDateTime) and the app has a service principal in the tenant, as in Entra.
//
// AuthenticateClient and ManagedIdentity report failures with ErrUnknownClient, ErrInvalidSecret,
// ErrExpiredSecret or ErrNoServicePrincipal (possibly wrapped); the token endpoint turns each into
// the matching AADSTS error. Any other error becomes a 500.
type ClientAuthenticator interface {
	AuthenticateClient(ctx context.Context, clientID, secret string) (Principal, error)
	// ManagedIdentity finds an identity by client ID; "" means the system-assigned one.
	ManagedIdentity(ctx context.Context, clientID string) (Principal, error)
}

// Principal is the identity a token is issued to.
type Principal struct {
	AppID    string // the client (application) ID: the token's appid
	ObjectID string // the service principal's object ID: the token's oid and sub
	// Roles are the Microsoft Graph app roles granted to the service principal, such as
	// Application.ReadWrite.OwnedBy. They go into tokens for Graph only, because app roles are
	// granted per resource and no other emulated resource defines any.
	Roles []string
}

// Errors a ClientAuthenticator returns; each maps to one AADSTS code.
var (
	ErrUnknownClient      = errors.New("application not found in the directory")                    // AADSTS700016
	ErrInvalidSecret      = errors.New("invalid client secret")                                     // AADSTS7000215
	ErrExpiredSecret      = errors.New("client secret expired")                                     // AADSTS7000222
	ErrNoServicePrincipal = errors.New("client application has no service principal in the tenant") // AADSTS7000229
)

// GraphResource is the audience of Microsoft Graph tokens, the only audience that carries roles.
// GraphAppID names the same resource by its application ID, which clients may use in scopes.
const (
	GraphResource = "https://graph.microsoft.com"
	GraphAppID    = "00000003-0000-0000-c000-000000000000"
)

// IsGraph reports whether a token audience names Microsoft Graph.
func IsGraph(audience string) bool {
	a := strings.TrimSuffix(audience, "/")
	return strings.EqualFold(a, GraphResource) || strings.EqualFold(a, GraphAppID)
}

// Options configure a Server; nil or zero fields take the defaults.
type Options struct {
	Authority *ca.Authority // nil: a new CA
	Issuer    *token.Issuer // nil: a new signing key on Now
	TenantID  string        // "": a random GUID
	Clients   ClientAuthenticator
	Now       func() time.Time // nil: time.Now
	Logger    *slog.Logger     // nil: discard
	// NoListener opens no socket: the caller mounts Handler (HTTPS) and MSIHandler (plain HTTP)
	// on listeners of its own, as azemu does. URL and MSIURL are then "".
	NoListener bool
	// Resources are the token audiences the tenant knows besides the directory's own apps (see
	// ResourceDirectory); a scope naming any other gets AADSTS500011. nil: DefaultResources.
	// AddResource adds more later.
	Resources []string
	// CacheManagedIdentityTokens makes the managed-identity endpoint hand out the token it issued
	// before, with the roles it was issued with, until five minutes before it expires, as the
	// App Service platform does: a role granted meanwhile reaches no token. ForgetTokens ends
	// it early.
	CacheManagedIdentityTokens bool
	// ManagedIdentityTokenLifetime is how long managed-identity tokens last; 0: 3599 s, as app
	// tokens do. Azure's last about 24 h.
	ManagedIdentityTokenLifetime time.Duration
}

// Server is a running Entra emulator: HTTPS for the authority, plain HTTP on loopback for the App
// Service managed-identity endpoint (as App Service itself serves it). Its embedded Controls are
// the shared test controls (see package emu), also served under /_emu/entra/.
type Server struct {
	*emu.Controls

	authority *ca.Authority
	issuer    *token.Issuer
	tenantID  string
	clients   ClientAuthenticator
	now       func() time.Time
	log       *slog.Logger

	handler, msiHandler http.Handler
	srv, msiSrv         *emu.HTTPServer
	url, msiURL         string
	msiHeader           string
	client              *http.Client

	mu        sync.Mutex
	issued    map[string]int // tokens per client ID
	resources []string       // normalised known audiences
	cacheMI   bool
	miLife    time.Duration
	miTokens  map[miKey]miToken // the platform's cache of managed-identity tokens
}

type miKey struct{ clientID, resource string }

type miToken struct {
	raw string
	exp time.Time
}

// NewServer starts the emulator; it accepts connections when NewServer returns.
func NewServer(opts *Options) (*Server, error) {
	if opts == nil {
		opts = &Options{}
	}
	s := &Server{
		authority: opts.Authority,
		issuer:    opts.Issuer,
		tenantID:  strings.ToLower(opts.TenantID),
		clients:   opts.Clients,
		now:       opts.Now,
		log:       opts.Logger,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.tenantID == "" {
		s.tenantID = uuid.NewString()
	}
	if s.clients == nil {
		s.clients = noClients{}
	}
	var err error
	if s.authority == nil {
		if s.authority, err = ca.New(); err != nil {
			return nil, fmt.Errorf("entra: %w", err)
		}
	}
	if s.issuer == nil {
		if s.issuer, err = token.NewIssuer(s.now); err != nil {
			return nil, fmt.Errorf("entra: %w", err)
		}
	}
	s.msiHeader = randomHex(16)
	s.issued = map[string]int{}
	s.miTokens = map[miKey]miToken{}
	s.cacheMI, s.miLife = opts.CacheManagedIdentityTokens, opts.ManagedIdentityTokenLifetime
	if s.miLife <= 0 {
		s.miLife = tokenLifetime
	}
	resources := opts.Resources
	if resources == nil {
		resources = DefaultResources
	}
	for _, r := range resources {
		if n := normalResource(r); n != "" && !slices.Contains(s.resources, n) {
			s.resources = append(s.resources, n)
		}
	}
	s.Controls = emu.New(emu.Config{
		Service: "entra", Operations: []string{OpToken, OpMSI}, ResetData: s.resetData,
		State: func() any { return s.State() },
	})
	s.handler, s.msiHandler = s.routes(), s.msiRoutes()
	s.client = emu.Client(s.authority.Pool())
	if opts.NoListener {
		return s, nil
	}
	ln, err := emu.Listen("")
	if err != nil {
		return nil, fmt.Errorf("entra: %w", err)
	}
	msiLn, err := emu.Listen("")
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("entra: managed identity: %w", err)
	}
	s.srv = emu.Serve(ln, s.handler, s.authority.ServerTLS(), s.log)
	s.msiSrv = emu.Serve(msiLn, s.msiHandler, nil, s.log)
	s.url, s.msiURL = s.srv.URL, s.msiSrv.URL+"/msi/token"
	s.log.Info("entra emulator listening", "url", s.url, "msi", s.msiURL, "tenant", s.tenantID)
	return s, nil
}

// URL is the authority host, https://127.0.0.1:port, for Cloud.ActiveDirectoryAuthorityHost;
// "" with NoListener.
func (s *Server) URL() string { return s.url }

// TenantID is the one tenant this Entra knows.
func (s *Server) TenantID() string { return s.tenantID }

// MSIURL is the App Service managed-identity endpoint, the value of IDENTITY_ENDPOINT; "" with
// NoListener.
func (s *Server) MSIURL() string { return s.msiURL }

// MSIHeader is the secret the managed-identity endpoint requires, the value of IDENTITY_HEADER.
func (s *Server) MSIHeader() string { return s.msiHeader }

// Client is an HTTP client that trusts the emulator's CA.
func (s *Server) Client() *http.Client { return s.client }

// Authority is the CA the server's certificate chains to.
func (s *Server) Authority() *ca.Authority { return s.authority }

// Issuer signs the tokens this server hands out; resource emulators verify with it.
func (s *Server) Issuer() *token.Issuer { return s.issuer }

// Handler serves the authority endpoints and /_emu/, for mounting the emulator on another
// listener; URLs in responses follow the request's Host.
func (s *Server) Handler() http.Handler { return s.handler }

// MSIHandler serves the managed-identity endpoint at /msi/token.
func (s *Server) MSIHandler() http.Handler { return s.msiHandler }

// Close stops both listeners and waits for in-flight requests, like httptest.Server.Close.
func (s *Server) Close() {
	emu.CloseClient(s.client)
	s.srv.Close()
	s.msiSrv.Close()
}

// routes lists every endpoint of the authority host.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.openIDConfiguration)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", s.keys)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.token)
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/token", s.tokenWrongMethod)
	mux.HandleFunc("GET /common/discovery/instance", s.instanceDiscovery)

	mux.Handle(emu.Prefix+"entra/", emu.Handler(s.Controls, s.controlRoutes()...))
	return mux
}

func (s *Server) msiRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /msi/token", s.managedIdentityToken)
	return mux
}

// noClients is the authenticator of an Entra with no directory behind it: nobody signs in.
type noClients struct{}

func (noClients) AuthenticateClient(context.Context, string, string) (Principal, error) {
	return Principal{}, ErrUnknownClient
}

func (noClients) ManagedIdentity(context.Context, string) (Principal, error) {
	return Principal{}, ErrUnknownClient
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
