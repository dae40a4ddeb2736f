package azemu

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"appreg/emulator/armemu"
	"appreg/emulator/emu"
	"appreg/emulator/entraemu"
	"appreg/emulator/fhiremu"
	"appreg/emulator/graphemu"
	"appreg/emulator/internal/ca"
	"appreg/emulator/internal/token"
	"appreg/emulator/keyvaultemu"
	"appreg/emulator/servicebusemu"
	"appreg/internal/endpoints"
)

// HandlerClientName is the display name of the seeded identity appreg's handler runs as.
const HandlerClientName = "appreg-handler"

// GraphRole is the one Graph application permission appreg needs.
const GraphRole = "Application.ReadWrite.OwnedBy"

// Profile is how harsh the local Azure is.
type Profile string

const (
	// Realistic is as harsh as Azure where it matters to appreg, and the default: Graph's
	// replicas lag and flap (reads, lists and filters; new secrets at Entra), managed-identity
	// tokens are cached by the platform with the roles they were issued with and last 24 h.
	// Quotas, soft delete, app management policies, unknown-resource refusals and write
	// throttling are on in both profiles: they cost a test nothing unless it meets them.
	Realistic Profile = "realistic"
	// Kind has no replication lag and no token cache, for fast tests of something else.
	Kind Profile = "kind"
)

// ParseProfile reads a profile name; "" is Realistic.
func ParseProfile(s string) (Profile, error) {
	switch p := Profile(strings.ToLower(strings.TrimSpace(s))); p {
	case "":
		return Realistic, nil
	case Realistic, Kind:
		return p, nil
	}
	return "", fmt.Errorf("unknown profile %q: want %s or %s", s, Realistic, Kind)
}

// Options configure a Server; nil or zero fields take the defaults.
type Options struct {
	// Profile is how harsh the services are; "" is Realistic.
	Profile Profile
	// Seed seeds the random lag of Graph's replicas so a failing run can be repeated; 0 picks
	// one, which Server.Seed reports and the startup log prints.
	Seed uint64
	// Replication, if set, replaces the profile's Graph replication lag.
	Replication      *graphemu.Replication
	HTTPSAddr        string                // Entra, Graph, Key Vault; "" = 127.0.0.1:0
	MSIAddr          string                // the managed-identity endpoint, plain HTTP; "" = 127.0.0.1:0
	AMQPAddr         string                // Service Bus; "" = 127.0.0.1:0
	TenantID         string                // "" = a random GUID
	ServiceBusConfig *servicebusemu.Config // nil = servicebusemu.DefaultConfig()
	// KeyVaultDeleteLag is how long Key Vault deletes take to settle; 0 = Key Vault emulator's default.
	KeyVaultDeleteLag time.Duration
	// FHIRServices are the FHIR services to serve; nil = DefaultFHIRServices.
	FHIRServices []FHIRService
	// DelegatedFHIRRoles are the FHIR role GUIDs appreg's identities may assign on them; nil =
	// DefaultDelegatedFHIRRoles.
	DelegatedFHIRRoles []string
	// FHIRPropagationDelay and KeyVaultPropagationDelay are how late role assignments take
	// effect at the FHIR services and the vault; 0 = each emulator's default, negative = at once.
	FHIRPropagationDelay, KeyVaultPropagationDelay time.Duration
	// PrincipalLag is how long Resource Manager's directory lookups miss a new principal; 0 =
	// armemu.DefaultPrincipalLag.
	PrincipalLag time.Duration
	// Now drives Graph and Key Vault state: password and secret lifetimes, creation times, soft
	// delete. Token lifetimes and Service Bus timing (locks, TTL) always follow the wall clock,
	// because the SDKs cache tokens and time locks in real time; a test that moves Now forward by
	// days must not make every cached token look expired. nil = time.Now.
	Now    func() time.Time
	Logger *slog.Logger // nil = discard
}

// Server is a running local Azure. The four services' own values are exported for tests that
// drive one of them in Go; over HTTP the same controls are under /_emu/<service>/.
type Server struct {
	Entra      *entraemu.Server
	Graph      *graphemu.Server
	KeyVault   *keyvaultemu.Server
	ServiceBus *servicebusemu.Server
	ARM        *armemu.Server
	FHIR       *fhiremu.Server

	authority  *ca.Authority
	https, msi *emu.HTTPServer
	url        string
	endpoints  endpoints.Endpoints
	client     *http.Client
	profile    Profile
}

// NewServer starts every service; all accept connections when it returns. It listens on exactly
// three sockets, the ones endpoints.json names: the HTTPS origin, the managed-identity endpoint
// and Service Bus. The HTTP emulators run without listeners of their own, mounted on the origin.
func NewServer(opts *Options) (_ *Server, err error) {
	if opts == nil {
		opts = &Options{}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	profile, err := ParseProfile(string(opts.Profile))
	if err != nil {
		return nil, fmt.Errorf("azemu: %w", err)
	}
	s := &Server{profile: profile}
	var httpsLn, msiLn net.Listener
	defer func() {
		if err != nil {
			for _, ln := range []net.Listener{httpsLn, msiLn} {
				if ln != nil {
					ln.Close()
				}
			}
			s.Close()
		}
	}()
	if s.authority, err = ca.New(); err != nil {
		return nil, err
	}
	issuer, err := token.NewIssuer(time.Now)
	if err != nil {
		return nil, err
	}
	if httpsLn, err = emu.Listen(opts.HTTPSAddr); err != nil {
		return nil, fmt.Errorf("azemu: %w", err)
	}
	if msiLn, err = emu.Listen(opts.MSIAddr); err != nil {
		return nil, fmt.Errorf("azemu: managed identity: %w", err)
	}
	s.url = "https://" + httpsLn.Addr().String()
	msiURL := "http://" + msiLn.Addr().String() + "/msi/token"

	var repl graphemu.Replication
	var miLife time.Duration
	if profile == Realistic {
		repl, miLife = graphemu.Realistic, 24*time.Hour
	}
	if opts.Replication != nil {
		repl = *opts.Replication
	}
	if s.Graph, err = graphemu.NewServer(&graphemu.Options{
		Authority: s.authority, Issuer: issuer, TenantID: opts.TenantID, Now: now, Logger: log.With("service", "graph"),
		NoListener: true, Replication: repl, Seed: opts.Seed,
	}); err != nil {
		return nil, err
	}
	tenant := s.Graph.TenantID()
	if s.Entra, err = entraemu.NewServer(&entraemu.Options{
		Authority: s.authority, Issuer: issuer, TenantID: tenant, Clients: s.Graph, Now: time.Now, Logger: log.With("service", "entra"),
		NoListener: true, CacheManagedIdentityTokens: profile == Realistic, ManagedIdentityTokenLifetime: miLife,
	}); err != nil {
		return nil, err
	}
	if s.ARM, err = armemu.NewServer(&armemu.Options{
		Authority: s.authority, Issuer: issuer, TenantID: tenant, AuthorityURL: s.url, Directory: s.Graph,
		PrincipalLag: opts.PrincipalLag, Now: now, Logger: log.With("service", "arm"), NoListener: true,
	}); err != nil {
		return nil, err
	}
	sub := s.ARM.SubscriptionID()
	kvID := resourceID(sub, "Microsoft.KeyVault", "vaults/azemu")
	sbID := resourceID(sub, "Microsoft.ServiceBus", "namespaces/azemu")
	if s.KeyVault, err = keyvaultemu.NewServer(&keyvaultemu.Options{
		Authority: s.authority, Issuer: issuer, TenantID: tenant, AuthorityURL: s.url,
		DeleteLag: opts.KeyVaultDeleteLag, Now: now, Logger: log.With("service", "keyvault"),
		Authorizer: s.ARM, ResourceID: kvID, PropagationDelay: opts.KeyVaultPropagationDelay,
		NoListener: true,
	}); err != nil {
		return nil, err
	}
	if s.ServiceBus, err = servicebusemu.NewServer(&servicebusemu.Options{
		Addr: opts.AMQPAddr, Config: opts.ServiceBusConfig, Logger: log.With("service", "servicebus"),
		Issuer: issuer, TenantID: tenant, Authorizer: s.ARM, ResourceID: sbID,
	}); err != nil {
		return nil, err
	}

	services := opts.FHIRServices
	if services == nil {
		services = DefaultFHIRServices
	}
	var fhirIDs []string
	for _, f := range services {
		fhirIDs = append(fhirIDs, FHIRServiceID(sub, f))
	}
	if s.FHIR, err = fhiremu.NewServer(&fhiremu.Options{
		Authority: s.authority, Issuer: issuer, TenantID: tenant, AuthorityURL: s.url, Services: fhirIDs,
		Authorizer: s.ARM, PropagationDelay: opts.FHIRPropagationDelay, Now: now, Logger: log.With("service", "fhir"), NoListener: true,
	}); err != nil {
		return nil, err
	}

	appID, _, handlerSP, secret, err := s.Graph.SeedClient(HandlerClientName, []string{GraphRole})
	if err != nil {
		return nil, fmt.Errorf("azemu: seed %s: %w", HandlerClientName, err)
	}
	operatorID, _, operatorSP, operatorSecret, err := s.Graph.SeedClient(OperatorClientName, nil)
	if err != nil {
		return nil, fmt.Errorf("azemu: seed %s: %w", OperatorClientName, err)
	}
	miClientID, miSP := s.Graph.SeedManagedIdentity([]string{GraphRole})

	s.endpoints = endpoints.Endpoints{
		TenantID:      tenant,
		AuthorityHost: s.url,
		GraphBaseURL:  s.url,
		KeyVaultURL:   s.url + "/",
		ManagedIdentity: endpoints.ManagedIdentity{
			Endpoint: msiURL, Header: s.Entra.MSIHeader(), ClientID: miClientID,
		},
		ServiceBusConnectionString: s.ServiceBus.ConnectionString(),
		Clients: []endpoints.Client{
			{Name: HandlerClientName, ClientID: appID, ClientSecret: secret},
			{Name: OperatorClientName, ClientID: operatorID, ClientSecret: operatorSecret},
		},
		CAFile:         "ca.pem",
		Controls:       s.url + emu.Prefix,
		ARMEndpoint:    s.url,
		ARMAudience:    armemu.Audiences[0],
		SubscriptionID: sub,
		KeyVaultID:     kvID,
		ServiceBusID:   sbID,
	}
	// Entra issues tokens only for resources the tenant knows: Resource Manager, and each FHIR
	// service by its URL, as a deployed service's audience is.
	known := slices.Clone(armemu.Audiences)
	for _, svc := range s.FHIR.Services() {
		s.endpoints.FHIRServices = append(s.endpoints.FHIRServices, endpoints.FHIRService{ID: svc.ID, URL: s.url + svc.BasePath()})
		known = append(known, s.url+svc.BasePath())
	}
	for _, r := range known {
		if err := s.Entra.AddResource(r); err != nil {
			return nil, err
		}
	}
	delegated := opts.DelegatedFHIRRoles
	if delegated == nil {
		delegated = DefaultDelegatedFHIRRoles
	}
	if err := s.seedRBAC([]string{miSP, handlerSP}, operatorSP, fhirIDs, delegated); err != nil {
		return nil, err
	}
	s.client = emu.Client(s.authority.Pool())
	s.https = emu.Serve(httpsLn, s.routes(), s.authority.ServerTLS(), log)
	s.msi = emu.Serve(msiLn, s.Entra.MSIHandler(), nil, log)
	httpsLn, msiLn = nil, nil // served: Close releases them now
	log.Info("azemu listening", "url", s.url, "amqp", s.ServiceBus.Addr(), "msi", msiURL, "tenant", tenant,
		"profile", profile, "seed", s.Graph.Seed())
	return s, nil
}

// routes splits the shared origin between the services. Each service serves its own controls
// under /_emu/<service>/, so they are routed by that prefix unchanged.
func (s *Server) routes() http.Handler {
	controls := map[string]http.Handler{
		"entra":      s.Entra.Handler(),
		"graph":      s.Graph.Handler(),
		"keyvault":   s.KeyVault.Handler(),
		"servicebus": s.ServiceBus.Handler(),
		"arm":        s.ARM.Handler(),
		"fhir":       s.FHIR.Handler(),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == emu.Prefix+"endpoints" && r.Method == http.MethodGet:
			emu.WriteJSON(w, http.StatusOK, s.endpoints)
		case p == emu.Prefix+"profile" && r.Method == http.MethodGet:
			emu.WriteJSON(w, http.StatusOK, s.ProfileInfo())
		case p == emu.Prefix+"reset" && r.Method == http.MethodPost:
			s.Reset()
			w.WriteHeader(http.StatusNoContent)
		case strings.HasPrefix(p, emu.Prefix):
			svc, _, _ := strings.Cut(strings.TrimPrefix(p, emu.Prefix), "/")
			h := controls[svc]
			if h == nil {
				emu.WriteError(w, http.StatusNotFound, "NotFound", "no emulator control at "+p+"; services: entra, graph, keyvault, servicebus, arm, fhir")
				return
			}
			h.ServeHTTP(w, r)
		case strings.HasPrefix(p, "/v1.0/") || p == "/v1.0":
			s.Graph.Handler().ServeHTTP(w, r)
		case strings.HasPrefix(p, "/secrets") || strings.HasPrefix(p, "/deletedsecrets"):
			s.KeyVault.Handler().ServeHTTP(w, r)
		case strings.HasPrefix(p, "/fhir/"):
			s.FHIR.Handler().ServeHTTP(w, r)
		case p == "/subscriptions" || strings.HasPrefix(p, "/subscriptions/") || p == "/tenants" || strings.HasPrefix(p, "/providers/") || p == "/metadata/endpoints":
			s.ARM.Handler().ServeHTTP(w, r)
		default:
			s.Entra.Handler().ServeHTTP(w, r)
		}
	})
}

// Reset resets every service (see package emu): faults, latency and statistics are cleared,
// Graph keeps only the seeded identities, Key Vault and Service Bus are emptied. Endpoints, the
// CA and the seeded identities' credentials stay valid.
func (s *Server) Reset() {
	s.Entra.Reset()
	s.Graph.Reset()
	s.KeyVault.Reset()
	s.ServiceBus.Reset()
	s.ARM.Reset()
	s.FHIR.Reset()
}

// Profile is how harsh the services are.
func (s *Server) Profile() Profile { return s.profile }

// Seed is the seed of Graph's replication lag; Options.Seed repeats it.
func (s *Server) Seed() uint64 { return s.Graph.Seed() }

// ProfileInfo is what GET /_emu/profile answers: the profile, the seed and Graph's replication.
type ProfileInfo struct {
	Profile  Profile `json:"profile"`
	Seed     uint64  `json:"seed"`
	Replicas int     `json:"replicas"`
	MinLagMS int64   `json:"minLagMs"`
	MaxLagMS int64   `json:"maxLagMs"`
}

// ProfileInfo describes the running profile.
func (s *Server) ProfileInfo() ProfileInfo {
	r := s.Graph.Replication()
	return ProfileInfo{Profile: s.profile, Seed: s.Seed(), Replicas: r.Replicas, MinLagMS: r.MinLag.Milliseconds(), MaxLagMS: r.MaxLag.Milliseconds()}
}

// URL is the shared HTTPS origin.
func (s *Server) URL() string { return s.url }

// Endpoints returns what endpoints.json holds (CAFile relative to the directory it is written in).
func (s *Server) Endpoints() endpoints.Endpoints { return s.endpoints }

// CertPool trusts the local CA and nothing else.
func (s *Server) CertPool() *x509.CertPool { return s.authority.Pool() }

// CAPEM is the local CA's certificate, as written to ca.pem.
func (s *Server) CAPEM() []byte { return s.authority.PEM() }

// Client is an HTTP client that trusts the local CA.
func (s *Server) Client() *http.Client { return s.client }

// WriteDir writes ca.pem and then endpoints.json into dir. endpoints.json is written last and
// renamed into place, so a watcher that sees it can rely on the CA file and on the services
// accepting connections.
func (s *Server) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, "ca.pem"), s.CAPEM(), 0o644); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s.endpoints, "", "  ")
	if err != nil {
		return err
	}
	// endpoints.json holds the seeded test identity's client secret: owner-only.
	return writeAtomic(filepath.Join(dir, endpoints.FileName), append(b, '\n'), 0o600)
}

// Close stops every service and its listeners.
func (s *Server) Close() {
	s.https.Close()
	s.msi.Close()
	if s.ServiceBus != nil {
		_ = s.ServiceBus.Close()
	}
	if s.KeyVault != nil {
		s.KeyVault.Close()
	}
	if s.Entra != nil {
		s.Entra.Close()
	}
	if s.Graph != nil {
		s.Graph.Close()
	}
	if s.ARM != nil {
		s.ARM.Close()
	}
	if s.FHIR != nil {
		s.FHIR.Close()
	}
	emu.CloseClient(s.client)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
