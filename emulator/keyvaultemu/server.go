package keyvaultemu

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"appreg/emulator/emu"
	"appreg/emulator/internal/ca"
	"appreg/emulator/internal/token"
)

// Audience is the resource Key Vault tokens are minted for and the resource the challenge names.
const Audience = "https://vault.azure.net"

// appIDAudience is Key Vault's first-party application ID; Entra mints it as aud for v1 resource
// requests made with the app ID instead of the URI, and Key Vault accepts both.
const appIDAudience = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"

// DefaultDeleteLag is how long a delete, purge or recover takes to settle when Options.DeleteLag
// is zero. The real service takes seconds; a short default keeps polling tests quick.
const DefaultDeleteLag = 500 * time.Millisecond

// Values the real service sends on every response; the region says where the answer came from.
const (
	serviceVersion = "1.9.3347.1"
	region         = "local"
)

// Options configure a Server. The zero value (or nil) gives a fresh CA, issuer and tenant.
type Options struct {
	// Addr is the listen address; default 127.0.0.1:0.
	Addr string
	// NoListener opens no socket: the emulator is reached only through Handler, mounted on a
	// listener of the caller's (azemu's shared origin). URL is then "".
	NoListener bool
	// Authority serves the TLS certificate; nil makes a fresh one.
	Authority *ca.Authority
	// Issuer verifies bearer tokens (aud must be https://vault.azure.net); nil makes a fresh one
	// on the server's clock, reachable through Server.Issuer.
	Issuer *token.Issuer
	// TenantID is the vault's tenant: the challenge names it and tokens must carry it as tid.
	// Empty makes a random one.
	TenantID string
	// AuthorityURL is the Entra authority host in the challenge; default
	// https://login.microsoftonline.com.
	AuthorityURL string
	// RecoverableDays is the soft-delete retention, 7..90; default 90.
	RecoverableDays int
	// DeleteLag is how long deletes, purges and recoveries take to become visible; zero means
	// DefaultDeleteLag and a negative value means at once.
	DeleteLag time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives one line per request (never bodies); default discards.
	Logger *slog.Logger
	// IDs makes 32-hex version identifiers; default random.
	IDs func() string
	// Authorizer makes the vault use Azure RBAC for data access (the Resource Manager
	// emulator); nil: any token of the tenant may do anything. ResourceID is then the vault's
	// ARM id, the scope its roles are assigned at (secrets below it at /secrets/<name>).
	Authorizer Authorizer
	ResourceID string
	// PropagationDelay: 0 = DefaultPropagationDelay, negative = none.
	PropagationDelay time.Duration
}

// Server is a Key Vault (secrets) data plane on a loopback HTTPS listener. Its embedded
// Controls are the shared test controls (see package emu), also served under /_emu/keyvault/.
type Server struct {
	*emu.Controls

	authority    *ca.Authority
	issuer       *token.Issuer
	tenant       string
	authorityURL string
	days         int
	lag          time.Duration
	now          func() time.Time
	log          *slog.Logger
	ids          func() string
	authz        Authorizer
	resourceID   string

	mux      *http.ServeMux
	controls http.Handler
	http     *emu.HTTPServer
	client   *http.Client
	url      string

	backupKey []byte // seals backup blobs; restore works only on the server that made them

	mu    sync.Mutex
	vault vault
	delay *emu.Delay // how late role assignments take effect
}

// NewServer starts the emulator; it is accepting connections when NewServer returns.
func NewServer(opts *Options) (*Server, error) {
	if opts == nil {
		opts = &Options{}
	}
	s := &Server{
		authority:    opts.Authority,
		issuer:       opts.Issuer,
		tenant:       opts.TenantID,
		authorityURL: strings.TrimSuffix(opts.AuthorityURL, "/"),
		days:         opts.RecoverableDays,
		lag:          opts.DeleteLag,
		now:          opts.Now,
		log:          opts.Logger,
		ids:          opts.IDs,
		authz:        opts.Authorizer,
		resourceID:   strings.TrimSuffix(opts.ResourceID, "/"),
		delay:        emu.NewDelay(opts.PropagationDelay, DefaultPropagationDelay),
	}
	if s.authz != nil && !strings.Contains(strings.ToLower(s.resourceID), "/providers/microsoft.keyvault/vaults/") {
		return nil, fmt.Errorf("keyvault: an Authorizer needs the vault's ARM id as ResourceID, got %q", s.resourceID)
	}
	if s.days == 0 {
		s.days = 90
	}
	if s.days < 7 || s.days > 90 {
		return nil, fmt.Errorf("keyvault: RecoverableDays %d outside 7..90", s.days)
	}
	switch {
	case s.lag == 0:
		s.lag = DefaultDeleteLag
	case s.lag < 0:
		s.lag = 0
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.ids == nil {
		s.ids = randomID
	}
	if s.tenant == "" {
		s.tenant = uuid.NewString()
	}
	if s.authorityURL == "" {
		s.authorityURL = "https://login.microsoftonline.com"
	}
	if strings.ContainsAny(s.authorityURL, " =\"") {
		// azsecrets splits the challenge on spaces and '='; such a URL would break every client.
		return nil, fmt.Errorf("keyvault: AuthorityURL %q must not contain spaces, '=' or quotes", s.authorityURL)
	}
	var err error
	if s.authority == nil {
		if s.authority, err = ca.New(); err != nil {
			return nil, fmt.Errorf("keyvault: %w", err)
		}
	}
	if s.issuer == nil {
		if s.issuer, err = token.NewIssuer(s.now); err != nil {
			return nil, fmt.Errorf("keyvault: %w", err)
		}
	}
	s.backupKey = make([]byte, 32)
	if _, err := rand.Read(s.backupKey); err != nil {
		return nil, fmt.Errorf("keyvault: backup key: %w", err)
	}
	s.vault.reset()
	s.mux = s.routes()
	s.Controls = emu.New(emu.Config{
		Service: "keyvault", Operations: operations, ResetData: s.resetData,
		State: func() any { return s.State() },
	})
	s.controls = emu.Handler(s.Controls)
	s.client = emu.Client(s.authority.Pool())
	if opts.NoListener {
		return s, nil
	}
	ln, err := emu.Listen(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("keyvault: %w", err)
	}
	s.http = emu.Serve(ln, s, s.authority.ServerTLS(), s.log)
	s.url = s.http.URL + "/"
	return s, nil
}

// URL is the vault URL, https://127.0.0.1:port/, as a client's vaultURL; "" with NoListener.
func (s *Server) URL() string { return s.url }

// Client is an HTTP client that trusts the emulator's CA and nothing else.
func (s *Server) Client() *http.Client { return s.client }

// Handler serves the data plane and the /_emu/ controls, for mounting on another listener.
// Identifiers and nextLinks follow the request's Host.
func (s *Server) Handler() http.Handler { return s }

// TenantID is the vault's tenant.
func (s *Server) TenantID() string { return s.tenant }

// Issuer verifies the bearer tokens; tests sign with it.
func (s *Server) Issuer() *token.Issuer { return s.issuer }

// Authority is the CA whose root the clients must trust.
func (s *Server) Authority() *ca.Authority { return s.authority }

// Close stops accepting, waits briefly for requests in flight, and releases the listener.
func (s *Server) Close() {
	// Our own client's idle HTTP/2 connections would otherwise hold Shutdown for the server's
	// one-second GOAWAY grace.
	emu.CloseClient(s.client)
	s.http.Close()
	emu.CloseClient(s.client)
}

func randomID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}
