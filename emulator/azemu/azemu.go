package azemu

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"appreg/emulator/entraemu"
	"appreg/emulator/graphemu"
	"appreg/emulator/internal/ca"
	"appreg/emulator/internal/token"
	"appreg/emulator/keyvaultemu"
	"appreg/emulator/servicebusemu"
)

// HandlerClientName is the display name of the seeded identity appreg's handler runs as.
const HandlerClientName = "appreg-handler"

// GraphRole is the one Graph application permission appreg needs.
const GraphRole = "Application.ReadWrite.OwnedBy"

// Options configure a Server; nil or zero fields take the defaults.
type Options struct {
	HTTPSAddr        string                // Entra, Graph, Key Vault; "" = 127.0.0.1:0
	AMQPAddr         string                // Service Bus; "" = 127.0.0.1:0
	TenantID         string                // "" = a random GUID
	ServiceBusConfig *servicebusemu.Config // nil = servicebus.DefaultConfig()
	// KeyVaultDeleteLag is how long Key Vault deletes take to settle; 0 = Key Vault emulator's default.
	KeyVaultDeleteLag time.Duration
	// Now drives Graph and Key Vault state: password and secret lifetimes, creation times, soft
	// delete. Token lifetimes and Service Bus timing (locks, TTL) always follow the wall clock,
	// because the SDKs cache tokens and time locks in real time; a test that moves Now forward by
	// days must not make every cached token look expired. nil = time.Now.
	Now    func() time.Time
	Logger *slog.Logger // nil = discard
}

// Endpoints is what a client needs to reach the local Azure: the shape of endpoints.json.
type Endpoints struct {
	TenantID                   string          `json:"tenantId"`
	AuthorityHost              string          `json:"authorityHost"`
	GraphBaseURL               string          `json:"graphBaseUrl"`
	KeyVaultURL                string          `json:"keyVaultUrl"`
	ManagedIdentity            ManagedIdentity `json:"managedIdentity"`
	ServiceBusConnectionString string          `json:"serviceBusConnectionString"`
	Clients                    []Client        `json:"clients"`
	CAFile                     string          `json:"caFile"`
	Controls                   string          `json:"controls"`
}

// ManagedIdentity is the App Service managed-identity endpoint: a process that sets
// IDENTITY_ENDPOINT and IDENTITY_HEADER to these values gets tokens as ClientID.
type ManagedIdentity struct {
	Endpoint string `json:"endpoint"`
	Header   string `json:"header"`
	ClientID string `json:"clientId"`
}

// Client is a seeded app registration with a client secret.
type Client struct {
	Name         string `json:"name"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
}

// Server is a running local Azure.
type Server struct {
	Entra      *entraemu.Server
	Graph      *graphemu.Server
	KeyVault   *keyvaultemu.Server
	ServiceBus *servicebusemu.Server

	authority *ca.Authority
	https     *http.Server
	url       string
	endpoints Endpoints
	client    *http.Client
}

// NewServer starts every service; all accept connections when it returns.
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
	s := &Server{}
	defer func() {
		if err != nil {
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
	ln, err := net.Listen("tcp", orDefault(opts.HTTPSAddr, "127.0.0.1:0"))
	if err != nil {
		return nil, fmt.Errorf("azemu: listen: %w", err)
	}
	s.url = "https://" + ln.Addr().String()

	if s.Graph, err = graphemu.NewServer(&graphemu.Options{
		Authority: s.authority, Issuer: issuer, TenantID: opts.TenantID, Now: now, Logger: log.With("service", "graph"),
	}); err != nil {
		ln.Close()
		return nil, err
	}
	tenant := s.Graph.TenantID()
	if s.Entra, err = entraemu.NewServer(&entraemu.Options{
		Authority: s.authority, Issuer: issuer, TenantID: tenant, Clients: s.Graph, Now: time.Now, Logger: log.With("service", "entra"),
	}); err != nil {
		ln.Close()
		return nil, err
	}
	if s.KeyVault, err = keyvaultemu.NewServer(&keyvaultemu.Options{
		Authority: s.authority, Issuer: issuer, TenantID: tenant, AuthorityURL: s.url,
		DeleteLag: opts.KeyVaultDeleteLag, Now: now, Logger: log.With("service", "keyvault"),
	}); err != nil {
		ln.Close()
		return nil, err
	}
	if s.ServiceBus, err = servicebusemu.NewServer(&servicebusemu.Options{
		Addr: opts.AMQPAddr, Config: opts.ServiceBusConfig, Logger: log.With("service", "servicebus"),
	}); err != nil {
		ln.Close()
		return nil, err
	}

	appID, _, _, secret, err := s.Graph.SeedClient(HandlerClientName, []string{GraphRole})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("azemu: seed %s: %w", HandlerClientName, err)
	}
	miClientID, _ := s.Graph.SeedManagedIdentity([]string{GraphRole})

	s.endpoints = Endpoints{
		TenantID:      tenant,
		AuthorityHost: s.url,
		GraphBaseURL:  s.url,
		KeyVaultURL:   s.url + "/",
		ManagedIdentity: ManagedIdentity{
			Endpoint: s.Entra.MSIURL(), Header: s.Entra.MSIHeader(), ClientID: miClientID,
		},
		ServiceBusConnectionString: s.ServiceBus.ConnectionString(),
		Clients:                    []Client{{Name: HandlerClientName, ClientID: appID, ClientSecret: secret}},
		CAFile:                     "ca.pem",
		Controls:                   s.url + "/_emu/",
	}
	s.client = &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: s.authority.Pool(), MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}}
	s.https = &http.Server{
		Handler: s.routes(), TLSConfig: s.authority.ServerTLS(),
		ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() { _ = s.https.ServeTLS(ln, "", "") }()
	log.Info("azemu listening", "url", s.url, "amqp", s.ServiceBus.Addr(), "msi", s.Entra.MSIURL(), "tenant", tenant)
	return s, nil
}

// routes splits the shared origin between the services.
func (s *Server) routes() http.Handler {
	controls := map[string]http.Handler{
		"entra":      s.Entra.Handler(),
		"graph":      s.Graph.Handler(),
		"keyvault":   s.KeyVault.Handler(),
		"servicebus": nil, // its ControlHandler already serves /_emu/servicebus/…
	}
	sbControls := s.ServiceBus.ControlHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/_emu/endpoints":
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			_ = json.NewEncoder(w).Encode(s.endpoints)
		case strings.HasPrefix(p, "/_emu/servicebus/"):
			sbControls.ServeHTTP(w, r)
		case strings.HasPrefix(p, "/_emu/graph/"):
			s.Graph.Handler().ServeHTTP(w, r)
		case strings.HasPrefix(p, "/_emu/keyvault/"):
			s.KeyVault.Handler().ServeHTTP(w, r)
		case strings.HasPrefix(p, "/_emu/"):
			svc, rest, _ := strings.Cut(strings.TrimPrefix(p, "/_emu/"), "/")
			h := controls[svc]
			if h == nil {
				http.Error(w, `{"error":{"code":"NotFound","message":"no such emulator control"}}`, http.StatusNotFound)
				return
			}
			// Each emulator serves its controls at its own /_emu/; strip the service name.
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/_emu/" + rest
			r2.URL.RawPath = ""
			h.ServeHTTP(w, r2)
		case strings.HasPrefix(p, "/v1.0/") || p == "/v1.0":
			s.Graph.Handler().ServeHTTP(w, r)
		case strings.HasPrefix(p, "/secrets") || strings.HasPrefix(p, "/deletedsecrets"):
			s.KeyVault.Handler().ServeHTTP(w, r)
		default:
			s.Entra.Handler().ServeHTTP(w, r)
		}
	})
}

// URL is the shared HTTPS origin.
func (s *Server) URL() string { return s.url }

// Endpoints returns what endpoints.json holds (CAFile relative to the directory it is written in).
func (s *Server) Endpoints() Endpoints { return s.endpoints }

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
	return writeAtomic(filepath.Join(dir, "endpoints.json"), append(b, '\n'), 0o600)
}

// Close stops every service.
func (s *Server) Close() {
	if s.https != nil {
		_ = s.https.Close()
	}
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
	if s.client != nil {
		s.client.CloseIdleConnections()
	}
}

// ReadEndpoints loads an endpoints.json written by WriteDir and makes CAFile absolute.
func ReadEndpoints(dir string) (Endpoints, error) {
	var e Endpoints
	b, err := os.ReadFile(filepath.Join(dir, "endpoints.json"))
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("%s: %w", filepath.Join(dir, "endpoints.json"), err)
	}
	if e.CAFile == "" {
		return e, errors.New("endpoints.json has no caFile")
	}
	if !filepath.IsAbs(e.CAFile) {
		e.CAFile = filepath.Join(dir, e.CAFile)
	}
	return e, nil
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
