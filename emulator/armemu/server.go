package armemu

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"appreg/emulator/emu"
	"appreg/emulator/internal/ca"
	"appreg/emulator/internal/token"
)

// Audiences Resource Manager accepts in a token: the public cloud's two resource URIs and the
// Azure Service Management application ID, as Entra mints them for scopes naming any of them.
var Audiences = []string{"https://management.azure.com", "https://management.core.windows.net", "797f4846-ba00-4fd7-ba43-dac1f8f63013"}

// DefaultSubscriptionID is the one subscription when Options.SubscriptionID is empty: the one
// the local Entra's managed identities already name in their resource ids.
const DefaultSubscriptionID = "00000000-0000-0000-0000-000000000000"

// DefaultPrincipalLag is how long a new principal stays unknown to Resource Manager's own
// directory lookups when Options.PrincipalLag is zero: Azure's is seconds to minutes.
const DefaultPrincipalLag = 10 * time.Second

// maxAssignments is Azure's limit of role assignments per subscription.
const maxAssignments = 4000

// Directory is Entra ID as Resource Manager sees it: whether a principal exists, of which type
// (User, Group, ServicePrincipal) and since when. The Graph emulator implements it.
type Directory interface {
	LookupPrincipal(ctx context.Context, objectID string) (typ string, created time.Time, ok bool)
}

// Options configure a Server; nil or zero fields take the defaults.
type Options struct {
	Addr       string        // listen address; "" = 127.0.0.1:0
	NoListener bool          // mounted on a listener of the caller's (azemu); URL is then ""
	Authority  *ca.Authority // nil: a new CA
	// Issuer verifies bearer tokens; share the Entra emulator's. nil: a new key.
	Issuer         *token.Issuer
	TenantID       string // "": a random GUID
	TenantDomain   string // the tenant's default domain in GET /tenants; "": azemu.onmicrosoft.com
	SubscriptionID string // "": DefaultSubscriptionID
	// AuthorityURL is the Entra authority host named in 401 challenges; "": the public cloud's.
	AuthorityURL string
	// Directory answers principal lookups; nil: no principal is known, so a request without
	// principalType always fails with PrincipalNotFound.
	Directory Directory
	// PrincipalLag: 0 = DefaultPrincipalLag, negative = none.
	PrincipalLag time.Duration
	Now          func() time.Time // nil: time.Now
	Logger       *slog.Logger     // nil: discard
}

// Server is Azure Resource Manager's role-assignment surface on HTTPS. Its embedded Controls are
// the shared test controls (see package emu), also served under /_emu/arm/.
type Server struct {
	*emu.Controls

	authority    *ca.Authority
	issuer       *token.Issuer
	tenantID     string
	domain       string
	subscription string
	authorityURL string
	dir          Directory
	now          func() time.Time
	log          *slog.Logger

	handler  http.Handler
	controls http.Handler
	srv      *emu.HTTPServer
	url      string
	client   *http.Client

	mu           sync.Mutex
	live         map[string]*assignment // by lower-case name
	history      []*assignment          // every assignment ever made since Reset, for propagation
	resources    map[string]string      // lower-case ARM id → id as registered
	principalLag time.Duration
	lagWithType  bool
}

// NewServer starts the emulator; it accepts connections when NewServer returns.
func NewServer(opts *Options) (*Server, error) {
	if opts == nil {
		opts = &Options{}
	}
	base := emu.Base{Authority: opts.Authority, Issuer: opts.Issuer, TenantID: strings.ToLower(opts.TenantID), Now: opts.Now, Log: opts.Logger}
	if err := base.Defaults("arm"); err != nil {
		return nil, err
	}
	s := &Server{
		authority:    base.Authority,
		issuer:       base.Issuer,
		tenantID:     base.TenantID,
		domain:       opts.TenantDomain,
		subscription: strings.ToLower(opts.SubscriptionID),
		authorityURL: strings.TrimSuffix(opts.AuthorityURL, "/"),
		dir:          opts.Directory,
		now:          base.Now,
		log:          base.Log,
		live:         map[string]*assignment{},
		resources:    map[string]string{},
		principalLag: emu.NewDelay(opts.PrincipalLag, DefaultPrincipalLag).Get(),
	}
	if s.domain == "" {
		s.domain = "azemu.onmicrosoft.com"
	}
	if s.subscription == "" {
		s.subscription = DefaultSubscriptionID
	}
	if s.authorityURL == "" {
		s.authorityURL = "https://login.microsoftonline.com"
	}
	s.Controls = emu.New(emu.Config{
		Service: "arm", Operations: operations, ResetData: s.resetData,
		State: func() any { return s.State() },
	})
	s.controls = emu.Handler(s.Controls, s.controlRoutes()...)
	s.handler = http.HandlerFunc(s.serve)
	s.client = emu.Client(s.authority.Pool())
	if opts.NoListener {
		return s, nil
	}
	var err error
	if s.srv, err = base.ServeTLS("arm", opts.Addr, s.handler); err != nil {
		return nil, err
	}
	s.url = s.srv.URL
	s.log.Info("arm emulator listening", "url", s.url, "tenant", s.tenantID, "subscription", s.subscription)
	return s, nil
}

// URL is the Resource Manager endpoint, https://127.0.0.1:port; "" with NoListener.
func (s *Server) URL() string { return s.url }

// Client is an HTTP client that trusts the emulator's CA.
func (s *Server) Client() *http.Client { return s.client }

// Handler serves Resource Manager and /_emu/arm/, for mounting on another listener.
func (s *Server) Handler() http.Handler { return s.handler }

// TenantID is the tenant the subscription belongs to.
func (s *Server) TenantID() string { return s.tenantID }

// SubscriptionID is the one subscription.
func (s *Server) SubscriptionID() string { return s.subscription }

// Issuer verifies the bearer tokens.
func (s *Server) Issuer() *token.Issuer { return s.issuer }

// Close stops the listener and waits for requests in flight, like httptest.Server.Close.
func (s *Server) Close() {
	emu.CloseClient(s.client)
	s.srv.Close()
}

// AddResource makes an ARM resource exist, so that roles can be assigned on it and below it:
// /subscriptions/<sub>/resourceGroups/<rg>/providers/<namespace>/<type>/<name>[/<type>/<name>…].
func (s *Server) AddResource(id string) error {
	id = normScope(id)
	if !strings.HasPrefix(strings.ToLower(id), "/subscriptions/"+s.subscription+"/resourcegroups/") || !strings.Contains(strings.ToLower(id), "/providers/") {
		return fmt.Errorf("arm: %q is not a resource id in subscription %s", id, s.subscription)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resources[strings.ToLower(id)] = id
	return nil
}

// normScope gives a scope one spelling: a leading slash, no trailing one ("/" for the root).
func normScope(scope string) string {
	return "/" + strings.Trim(scope, "/")
}

// covers reports whether an assignment at scope applies at target: the same scope or one below.
func covers(scope, target string) bool {
	a, t := strings.ToLower(strings.Trim(scope, "/")), strings.ToLower(strings.Trim(target, "/"))
	return a == "" || t == a || strings.HasPrefix(t, a+"/")
}

// knownScope reports whether a scope exists: the root, the subscription, a resource group that
// holds a registered resource, a registered resource or anything below one.
func (s *Server) knownScope(scope string) bool {
	t := strings.ToLower(strings.Trim(scope, "/"))
	sub := "subscriptions/" + s.subscription
	if t == "" || t == sub {
		return true
	}
	if !strings.HasPrefix(t, sub+"/") {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.resources {
		r := strings.Trim(id, "/")
		rg := r[:strings.Index(r, "/providers/")]
		if t == rg || t == r || strings.HasPrefix(t, r+"/") {
			return true
		}
	}
	return false
}
