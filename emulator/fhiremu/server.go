package fhiremu

import (
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"appreg/emulator/emu"
	"appreg/emulator/internal/ca"
	"appreg/emulator/internal/token"
)

// Authorizer is Azure RBAC as a FHIR service consults it: whether a principal held a data
// action at a scope as of a time. The Resource Manager emulator implements it.
type Authorizer interface {
	Authorized(principalID, scope, dataAction string, asOf time.Time) bool
}

// Data actions of an Azure Health Data Services FHIR service that the emulator checks.
const (
	actionRead  = "Microsoft.HealthcareApis/workspaces/fhirservices/resources/read"
	actionWrite = "Microsoft.HealthcareApis/workspaces/fhirservices/resources/write"
)

// DefaultPropagationDelay is how long a role assignment (or its removal) takes to reach a FHIR
// service when Options.PropagationDelay is zero. Azure documents up to 10 minutes; seconds keep
// tests and `make run` quick while still making appreg wait.
const DefaultPropagationDelay = 5 * time.Second

// Options configure a Server; nil or zero fields take the defaults.
type Options struct {
	Addr       string        // listen address; "" = 127.0.0.1:0
	NoListener bool          // mounted on a listener of the caller's (azemu); URL is then ""
	Authority  *ca.Authority // nil: a new CA
	// Issuer verifies bearer tokens; share the Entra emulator's. nil: a new key.
	Issuer   *token.Issuer
	TenantID string // the tenant whose tokens are accepted; "": a random GUID
	// AuthorityURL is the Entra authority host, for the 401 challenge and the CapabilityStatement's
	// OAuth URIs; "": https://login.microsoftonline.com.
	AuthorityURL string
	// Services are the FHIR services' ARM resource ids; each is served at /fhir/<name>, where
	// name is <workspace>-<fhir> (AHDS) or <service> (Azure API for FHIR). nil: none.
	Services []string
	// Authorizer decides on data actions; nil: nobody is authorized (every read is 403).
	Authorizer Authorizer
	// PropagationDelay: 0 = DefaultPropagationDelay, negative = none.
	PropagationDelay time.Duration
	Now              func() time.Time // nil: time.Now
	Logger           *slog.Logger     // nil: discard
}

// Service is one emulated FHIR service.
type Service struct {
	ID   string // ARM resource id: the scope its role assignments are made at
	Name string // the last segment of its base path, /fhir/<Name>
}

// BasePath is the service's path on the server: its base URL is the origin plus this, and that
// base URL is also the audience its tokens must carry.
func (s Service) BasePath() string { return "/fhir/" + s.Name }

// Server is a set of FHIR services on HTTPS. Its embedded Controls are the shared test controls
// (see package emu), also served under /_emu/fhir/.
type Server struct {
	*emu.Controls

	authority    *ca.Authority
	issuer       *token.Issuer
	tenantID     string
	authorityURL string
	authz        Authorizer
	now          func() time.Time
	log          *slog.Logger
	services     []Service
	data         map[string][]resource // by service name: its seeded resources

	handler  http.Handler
	controls http.Handler
	srv      *emu.HTTPServer
	url      string
	client   *http.Client

	delay *emu.Delay // how late role assignments take effect
}

var (
	ahdsID = regexp.MustCompile(`(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.HealthcareApis/workspaces/([^/]+)/fhirservices/([^/]+)$`)
	apiID  = regexp.MustCompile(`(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.HealthcareApis/services/([^/]+)$`)
)

// ServiceFor names the service an ARM resource id describes.
func ServiceFor(id string) (Service, error) {
	id = "/" + strings.Trim(id, "/")
	if m := ahdsID.FindStringSubmatch(id); m != nil {
		return Service{ID: id, Name: strings.ToLower(m[1] + "-" + m[2])}, nil
	}
	if m := apiID.FindStringSubmatch(id); m != nil {
		return Service{ID: id, Name: strings.ToLower(m[1])}, nil
	}
	return Service{}, fmt.Errorf("fhir: %q is not the ARM id of a FHIR service", id)
}

// NewServer starts the emulator; it accepts connections when NewServer returns.
func NewServer(opts *Options) (*Server, error) {
	if opts == nil {
		opts = &Options{}
	}
	base := emu.Base{Authority: opts.Authority, Issuer: opts.Issuer, TenantID: strings.ToLower(opts.TenantID), Now: opts.Now, Log: opts.Logger}
	if err := base.Defaults("fhir"); err != nil {
		return nil, err
	}
	s := &Server{
		authority:    base.Authority,
		issuer:       base.Issuer,
		tenantID:     base.TenantID,
		authorityURL: strings.TrimSuffix(opts.AuthorityURL, "/"),
		authz:        opts.Authorizer,
		now:          base.Now,
		log:          base.Log,
		delay:        emu.NewDelay(opts.PropagationDelay, DefaultPropagationDelay),
		data:         map[string][]resource{},
	}
	if s.authorityURL == "" {
		s.authorityURL = "https://login.microsoftonline.com"
	}
	for _, id := range opts.Services {
		svc, err := ServiceFor(id)
		if err != nil {
			return nil, err
		}
		for _, have := range s.services {
			if have.Name == svc.Name {
				return nil, fmt.Errorf("fhir: two services are named %s", svc.Name)
			}
		}
		s.services = append(s.services, svc)
		s.data[svc.Name] = seedPatients()
	}
	s.Controls = emu.New(emu.Config{
		Service: "fhir", Operations: operations,
		State: func() any { return s.State() },
	})
	s.controls = emu.Handler(s.Controls, s.controlRoutes()...)
	s.handler = s.routes()
	s.client = emu.Client(s.authority.Pool())
	if opts.NoListener {
		return s, nil
	}
	var err error
	if s.srv, err = base.ServeTLS("fhir", opts.Addr, s.handler); err != nil {
		return nil, err
	}
	s.url = s.srv.URL
	s.log.Info("fhir emulator listening", "url", s.url, "services", len(s.services))
	return s, nil
}

// URL is the server's origin, https://127.0.0.1:port; "" with NoListener. A service's base URL
// is URL() + Service.BasePath().
func (s *Server) URL() string { return s.url }

// Services lists the services served.
func (s *Server) Services() []Service { return append([]Service(nil), s.services...) }

// Client is an HTTP client that trusts the emulator's CA.
func (s *Server) Client() *http.Client { return s.client }

// Handler serves every service and /_emu/fhir/, for mounting on another listener.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the listener and waits for requests in flight, like httptest.Server.Close.
func (s *Server) Close() {
	emu.CloseClient(s.client)
	s.srv.Close()
}

// SetPropagationDelay sets how late role assignments and their removals take effect here.
func (s *Server) SetPropagationDelay(d time.Duration) { s.delay.Set(d) }

func (s *Server) propagationDelay() time.Duration { return s.delay.Get() }
