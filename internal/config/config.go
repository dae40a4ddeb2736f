// Package config reads appreg's settings — the Function App's app settings, which the host
// passes to the handler as environment variables — in one place, applies the documented
// defaults, and validates everything at start, naming each bad setting, so a misconfigured
// deployment fails on its first start instead of on its first message.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config is the validated configuration of the handler and the CLI.
type Config struct {
	TenantID      string
	ClientID      string // user-assigned managed identity, or the app of ClientSecret
	ClientSecret  string // local development and the emulator only
	AuthorityHost string
	GraphBaseURL  string
	KeyVaultURL   string
	CAFile        string // extra CA to trust (the local emulator's ca.pem)

	ServiceBusNamespace        string // identity-based connection
	ServiceBusConnectionString string // connection-string alternative

	RegistrationQueue string
	RotationQueue     string
	EventsTopic       string
	RotationSchedule  string

	MaxLifetimeDays     int
	DefaultLifetimeDays int
	RotateBefore        time.Duration
	RetireAfter         time.Duration
	OrphanAfter         time.Duration
	MaxDeliveryCount    int
	EditSpacing         time.Duration
	ReplicationTimeout  time.Duration
	ScanConcurrency     int
	VerifyTimeout       time.Duration // 0: new secrets are not test-signed-in
	VerifyScope         string
	AppNamePrefix       string
	SecretNamePrefix    string

	Port     int // FUNCTIONS_CUSTOMHANDLER_PORT; only the handler needs it
	LogLevel slog.Level
}

// Setting names. The Service Bus pair follows the Functions convention for a connection named
// "ServiceBusConnection", so the host's trigger and the handler's sender read the same settings.
const (
	EnvTenantID           = "AZURE_TENANT_ID"
	EnvClientID           = "AZURE_CLIENT_ID"
	EnvClientSecret       = "AZURE_CLIENT_SECRET"
	EnvAuthorityHost      = "AZURE_AUTHORITY_HOST"
	EnvGraphBaseURL       = "GRAPH_BASE_URL"
	EnvKeyVaultURL        = "KEY_VAULT_URL"
	EnvCAFile             = "APPREG_CA_FILE"
	EnvSBNamespace        = "ServiceBusConnection__fullyQualifiedNamespace"
	EnvSBConnection       = "ServiceBusConnection"
	EnvRegistrationQueue  = "REGISTRATION_QUEUE"
	EnvRotationQueue      = "ROTATION_QUEUE"
	EnvEventsTopic        = "EVENTS_TOPIC"
	EnvRotationSchedule   = "ROTATION_SCHEDULE"
	EnvMaxLifetime        = "MAX_SECRET_LIFETIME_DAYS"
	EnvDefaultLifetime    = "DEFAULT_SECRET_LIFETIME_DAYS"
	EnvRotateBefore       = "ROTATE_BEFORE"
	EnvRetireAfter        = "RETIRE_AFTER"
	EnvOrphanAfter        = "ORPHAN_AFTER"
	EnvMaxDeliveryCount   = "MAX_DELIVERY_COUNT"
	EnvEditSpacing        = "CREDENTIAL_EDIT_SPACING"
	EnvReplicationTimeout = "REPLICATION_TIMEOUT"
	EnvScanConcurrency    = "SCAN_CONCURRENCY"
	EnvVerifyTimeout      = "SECRET_VERIFY_TIMEOUT"
	EnvVerifyScope        = "SECRET_VERIFY_SCOPE"
	EnvAppNamePrefix      = "APP_NAME_PREFIX"
	EnvSecretNamePrefix   = "SECRET_NAME_PREFIX"
	EnvPort               = "FUNCTIONS_CUSTOMHANDLER_PORT"
	EnvLogLevel           = "LOG_LEVEL"
)

// Setting documents one setting; Settings is the table the README and `appreg --help` print.
type Setting struct {
	Name, Default, Meaning string
}

// Settings lists every setting with its default.
var Settings = []Setting{
	{EnvTenantID, "(required)", "Entra tenant of the apps"},
	{EnvClientID, "", "client id of a user-assigned managed identity (or of the app for AZURE_CLIENT_SECRET)"},
	{EnvClientSecret, "", "client secret of appreg's own identity: local development and the emulator only"},
	{EnvAuthorityHost, "https://login.microsoftonline.com", "Entra authority (sovereign clouds, emulator)"},
	{EnvGraphBaseURL, "https://graph.microsoft.com", "Microsoft Graph endpoint (sovereign clouds, emulator)"},
	{EnvKeyVaultURL, "(required)", "vault that holds the client secrets, https://<name>.vault.azure.net/"},
	{EnvCAFile, "", "PEM file of an extra CA to trust (the local emulator's ca.pem)"},
	{EnvSBNamespace, "", "Service Bus namespace for an identity-based connection, <ns>.servicebus.windows.net"},
	{EnvSBConnection, "", "Service Bus connection string, the alternative to the namespace (emulator)"},
	{EnvRegistrationQueue, "app-registrations", "queue of registration requests"},
	{EnvRotationQueue, "secret-rotations", "queue of rotation jobs"},
	{EnvEventsTopic, "app-registration-events", "topic of outcome events"},
	{EnvRotationSchedule, "0 0 */6 * * *", "NCRONTAB (six fields) of ScheduleRotations"},
	{EnvMaxLifetime, "180", "longest secret lifetime a request may ask for, in days (at most 730)"},
	{EnvDefaultLifetime, "90", "lifetime of a secret when the request names none, in days"},
	{EnvRotateBefore, "720h", "rotate when expiry is this close (capped at a third of the lifetime)"},
	{EnvRetireAfter, "168h", "remove a superseded password this long after its replacement was stored"},
	{EnvOrphanAfter, "15m", "remove an appreg password that no Key Vault version holds after this long"},
	{EnvMaxDeliveryCount, "10", "the queues' MaxDeliveryCount; the attempt that reaches it publishes a failed event"},
	{EnvEditSpacing, "10s", "minimum gap between credential edits on one app (Graph answers 500 to rapid edits)"},
	{EnvReplicationTimeout, "3m", "how long to wait out Entra replication of a new app or service principal"},
	{EnvScanConcurrency, "4", "apps ScheduleRotations examines in parallel"},
	{EnvVerifyTimeout, "2m", "how long to keep signing in with a new secret until Entra accepts it, before announcing it (0s: do not check)"},
	{EnvVerifyScope, "https://graph.microsoft.com/.default", "token scope of that sign-in; set your FHIR service's https://<workspace>-<fhir>.fhir.azurehealthcareapis.com/.default to prove the token clients will use"},
	{EnvAppNamePrefix, "appreg-", "prefix of each app's uniqueName"},
	{EnvSecretNamePrefix, "", "prefix of each Key Vault secret name (<prefix><clientName>-client-secret)"},
	{EnvPort, "(set by the host)", "port the handler listens on, on 127.0.0.1"},
	{EnvLogLevel, "info", "debug, info, warn or error"},
}

// Need says which parts of the configuration a program requires.
type Need struct {
	Tenant     bool // AZURE_TENANT_ID
	Vault      bool // KEY_VAULT_URL
	Port       bool // FUNCTIONS_CUSTOMHANDLER_PORT
	ServiceBus bool // a Service Bus connection
}

var (
	guidRE     = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	entityRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,259}$`)
	prefixRE   = regexp.MustCompile(`^[A-Za-z0-9-]{0,40}$`)
	settingRef = regexp.MustCompile(`^%[A-Za-z0-9_]+%$`)
)

// Load reads settings through getenv (os.Getenv in production) and validates them, reporting
// every bad setting at once.
func Load(getenv func(string) string, need Need) (Config, error) {
	p := &parser{getenv: getenv}
	c := Config{
		TenantID:      p.str(EnvTenantID, ""),
		ClientID:      p.str(EnvClientID, ""),
		ClientSecret:  p.str(EnvClientSecret, ""),
		AuthorityHost: p.httpsURL(EnvAuthorityHost, "https://login.microsoftonline.com"),
		GraphBaseURL:  strings.TrimSuffix(p.httpsURL(EnvGraphBaseURL, "https://graph.microsoft.com"), "/"),
		KeyVaultURL:   p.httpsURL(EnvKeyVaultURL, ""),
		CAFile:        p.str(EnvCAFile, ""),

		ServiceBusNamespace:        p.str(EnvSBNamespace, ""),
		ServiceBusConnectionString: p.str(EnvSBConnection, ""),

		RegistrationQueue: p.entity(EnvRegistrationQueue, "app-registrations"),
		RotationQueue:     p.entity(EnvRotationQueue, "secret-rotations"),
		EventsTopic:       p.entity(EnvEventsTopic, "app-registration-events"),
		RotationSchedule:  p.schedule(EnvRotationSchedule, "0 0 */6 * * *"),

		MaxLifetimeDays:    p.integer(EnvMaxLifetime, 180, 1, 730),
		RotateBefore:       p.duration(EnvRotateBefore, 720*time.Hour, time.Minute),
		RetireAfter:        p.duration(EnvRetireAfter, 168*time.Hour, time.Second),
		OrphanAfter:        p.duration(EnvOrphanAfter, 15*time.Minute, time.Minute),
		MaxDeliveryCount:   p.integer(EnvMaxDeliveryCount, 10, 1, 2000),
		EditSpacing:        p.duration(EnvEditSpacing, 10*time.Second, time.Millisecond),
		ReplicationTimeout: p.duration(EnvReplicationTimeout, 3*time.Minute, time.Second),
		ScanConcurrency:    p.integer(EnvScanConcurrency, 4, 1, 64),
		VerifyTimeout:      p.duration(EnvVerifyTimeout, 2*time.Minute, 0),
		VerifyScope:        p.scope(EnvVerifyScope, "https://graph.microsoft.com/.default"),
		AppNamePrefix:      p.prefix(EnvAppNamePrefix, "appreg-"),
		SecretNamePrefix:   p.prefix(EnvSecretNamePrefix, ""),
		LogLevel:           p.level(EnvLogLevel),
	}
	c.DefaultLifetimeDays = p.integer(EnvDefaultLifetime, 90, 1, 730)
	if c.DefaultLifetimeDays > c.MaxLifetimeDays {
		p.fail(EnvDefaultLifetime, fmt.Sprintf("(%d) must not exceed %s (%d)", c.DefaultLifetimeDays, EnvMaxLifetime, c.MaxLifetimeDays))
	}

	if c.TenantID == "" {
		if need.Tenant {
			p.fail(EnvTenantID, "is required")
		}
	} else if !guidRE.MatchString(c.TenantID) {
		p.fail(EnvTenantID, "must be a tenant GUID")
	}
	if c.ClientID != "" && !guidRE.MatchString(c.ClientID) {
		p.fail(EnvClientID, "must be a client id GUID")
	}
	if c.ClientSecret != "" && c.ClientID == "" {
		p.fail(EnvClientSecret, "needs "+EnvClientID)
	}
	if need.Vault && p.getenv(EnvKeyVaultURL) == "" {
		p.fail(EnvKeyVaultURL, "is required")
	}
	if need.Port {
		c.Port = p.integer(EnvPort, 0, 1, 65535)
		if p.getenv(EnvPort) == "" {
			p.fail(EnvPort, "is required (the Functions host sets it)")
		}
	}
	if need.ServiceBus {
		switch {
		case c.ServiceBusNamespace == "" && c.ServiceBusConnectionString == "":
			p.fail(EnvSBNamespace, "or "+EnvSBConnection+" is required")
		case c.ServiceBusConnectionString != "" && !strings.Contains(c.ServiceBusConnectionString, "Endpoint=sb://"):
			// Never echo the value: a connection string carries a key.
			p.fail(EnvSBConnection, "must be a Service Bus connection string (Endpoint=sb://...)")
		case c.ServiceBusNamespace != "" && strings.Contains(c.ServiceBusNamespace, "://"):
			p.fail(EnvSBNamespace, "must be a host name such as <ns>.servicebus.windows.net, without a scheme")
		}
	}
	return c, errors.Join(p.errs...)
}

// Loopback reports whether u points at this machine: the emulator, never Azure.
func Loopback(u string) bool {
	parsed, err := url.Parse(u)
	if err != nil {
		return false
	}
	h := parsed.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

type parser struct {
	getenv func(string) string
	errs   []error
}

func (p *parser) fail(name, msg string) {
	p.errs = append(p.errs, fmt.Errorf("setting %s %s", name, msg))
}

func (p *parser) str(name, def string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	return def
}

func (p *parser) httpsURL(name, def string) string {
	v := p.str(name, def)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		// The Azure SDKs refuse to send bearer tokens over anything but TLS.
		p.fail(name, fmt.Sprintf("must be an https:// URL with no query, got %q", v))
		return ""
	}
	return v
}

func (p *parser) entity(name, def string) string {
	v := p.str(name, def)
	if !entityRE.MatchString(v) {
		p.fail(name, fmt.Sprintf("must be a Service Bus entity name, got %q", v))
	}
	return v
}

func (p *parser) prefix(name, def string) string {
	v, set := p.getenv(name), p.getenv(name) != ""
	if !set {
		return def
	}
	if !prefixRE.MatchString(v) {
		p.fail(name, "must be at most 40 letters, digits or '-'")
	}
	return v
}

func (p *parser) schedule(name, def string) string {
	v := p.str(name, def)
	if settingRef.MatchString(v) {
		return v
	}
	if n := len(strings.Fields(v)); n != 6 {
		p.fail(name, fmt.Sprintf("must be an NCRONTAB expression with six fields (second minute hour day month weekday), got %d fields", n))
	}
	return v
}

func (p *parser) scope(name, def string) string {
	v := p.str(name, def)
	if u, err := url.Parse(v); err != nil || u.Scheme != "https" || u.Host == "" || !strings.HasSuffix(v, "/.default") {
		p.fail(name, fmt.Sprintf("must be a resource's https://…/.default scope, got %q", v))
	}
	return v
}

func (p *parser) integer(name string, def, lo, hi int) int {
	v := p.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(name, fmt.Sprintf("must be a whole number from %d to %d, got %q", lo, hi, v))
		return def
	}
	return n
}

// duration accepts Go durations ("720h", "15m") and whole days ("30d"), because lifetimes and
// grace periods are naturally said in days.
func (p *parser) duration(name string, def, least time.Duration) time.Duration {
	v := p.str(name, "")
	if v == "" {
		return def
	}
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(v, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(v)
	}
	if err != nil || d < least {
		p.fail(name, fmt.Sprintf("must be a duration such as 720h, 15m or 30d, at least %v, got %q", least, v))
		return def
	}
	return d
}

func (p *parser) level(name string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(p.str(name, "info"))); err != nil {
		p.fail(name, "must be debug, info, warn or error")
	}
	return l
}
