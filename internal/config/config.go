// Package config reads appreg's settings — the Function App's app settings, which the host
// passes to the handler as environment variables — in one place, applies the documented
// defaults, and validates everything at start, naming each bad setting, so a misconfigured
// deployment fails on its first start instead of on its first message.
//
// Settings is the one table of every setting: its name, its default, what it means and how it is
// parsed. Load, `handler --help`, `appreg --help`, the README's settings table and
// local.settings.json.example all follow it (tests compare them), and the defaults the domain
// applies (registrar.Defaults) are the ones this table documents.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"appreg/internal/registrar"
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

	CommandQueue     string
	EventsTopic      string
	RotationSchedule string

	MaxLifetimeDays     int
	DefaultLifetimeDays int
	RotateBefore        time.Duration
	RetireAfter         time.Duration
	OrphanAfter         time.Duration
	MaxDeliveryCount    int
	RetryBudget         time.Duration
	AttemptTimeout      time.Duration
	EditSpacing         time.Duration
	ReplicationTimeout  time.Duration
	VerifyTimeout       time.Duration // 0: new secrets are not test-signed-in
	VerifySuccesses     int
	VerifyScope         string
	AppNamePrefix       string
	SecretNamePrefix    string

	ARMEndpoint        string
	ARMAudience        string
	FHIRServices       []registrar.FHIRService
	FHIRDefaultService string
	FHIRAllowedRoles   []string
	FHIRAccessTimeout  time.Duration
	FHIRAccessDelay    time.Duration

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
	EnvCommandQueue       = "COMMAND_QUEUE"
	EnvEventsTopic        = "EVENTS_TOPIC"
	EnvRotationSchedule   = "ROTATION_SCHEDULE"
	EnvMaxLifetime        = "MAX_SECRET_LIFETIME_DAYS"
	EnvDefaultLifetime    = "DEFAULT_SECRET_LIFETIME_DAYS"
	EnvRotateBefore       = "ROTATE_BEFORE"
	EnvRetireAfter        = "RETIRE_AFTER"
	EnvOrphanAfter        = "ORPHAN_AFTER"
	EnvMaxDeliveryCount   = "MAX_DELIVERY_COUNT"
	EnvRetryBudget        = "RETRY_BUDGET"
	EnvAttemptTimeout     = "ATTEMPT_TIMEOUT"
	EnvEditSpacing        = "CREDENTIAL_EDIT_SPACING"
	EnvReplicationTimeout = "REPLICATION_TIMEOUT"
	EnvVerifyTimeout      = "SECRET_VERIFY_TIMEOUT"
	EnvVerifyScope        = "SECRET_VERIFY_SCOPE"
	EnvVerifySuccesses    = "SECRET_VERIFY_SUCCESSES"
	EnvAppNamePrefix      = "APP_NAME_PREFIX"
	EnvSecretNamePrefix   = "SECRET_NAME_PREFIX"
	EnvARMEndpoint        = "ARM_ENDPOINT"
	EnvARMAudience        = "ARM_AUDIENCE"
	EnvFHIRServices       = "FHIR_SERVICES"
	EnvFHIRDefaultService = "FHIR_DEFAULT_SERVICE"
	EnvFHIRAllowedRoles   = "FHIR_ALLOWED_ROLES"
	EnvFHIRAccessTimeout  = "FHIR_ACCESS_TIMEOUT"
	EnvFHIRAccessDelay    = "FHIR_ACCESS_CHECK_DELAY"
	EnvPort               = "FUNCTIONS_CUSTOMHANDLER_PORT"
	EnvLogLevel           = "LOG_LEVEL"
)

// Placeholders for a setting with no default, as --help and the README show them.
const (
	Required  = "(required)"
	SetByHost = "(set by the host)"
)

// Setting is one app setting: its name, its default as it would be written in the environment
// ("" for none, or one of the placeholders above), what it means, and how Load reads it.
type Setting struct {
	Name    string
	Default string
	Meaning string
	// Placeholder is the value local.settings.json.example shows when the default will not do:
	// an obvious stand-in that Load refuses, or "" to show the default.
	Placeholder string
	load        func(p *parser, c *Config, v string)
}

var d = registrar.Defaults

// Settings lists every setting the handler reads, in the order help and the README show them.
var Settings = []Setting{
	{Name: EnvTenantID, Default: Required, Meaning: "Entra tenant of the apps", Placeholder: "<your-tenant-id>",
		load: func(p *parser, c *Config, v string) { c.TenantID = p.guid(EnvTenantID, v, "a tenant GUID") }},
	{Name: EnvClientID, Meaning: "client id of a user-assigned managed identity (or of the app for AZURE_CLIENT_SECRET)",
		load: func(p *parser, c *Config, v string) { c.ClientID = p.guid(EnvClientID, v, "a client id GUID") }},
	{Name: EnvClientSecret, Meaning: "client secret of appreg's own identity: local development and the emulator only",
		load: func(_ *parser, c *Config, v string) { c.ClientSecret = v }},
	{Name: EnvAuthorityHost, Default: "https://login.microsoftonline.com", Meaning: "Entra authority (sovereign clouds, emulator)",
		load: func(p *parser, c *Config, v string) { c.AuthorityHost = p.httpsURL(EnvAuthorityHost, v) }},
	{Name: EnvGraphBaseURL, Default: "https://graph.microsoft.com", Meaning: "Microsoft Graph endpoint (sovereign clouds, emulator)",
		load: func(p *parser, c *Config, v string) {
			c.GraphBaseURL = strings.TrimSuffix(p.httpsURL(EnvGraphBaseURL, v), "/")
		}},
	{Name: EnvKeyVaultURL, Default: Required, Meaning: "vault that holds the client secrets, https://<name>.vault.azure.net/", Placeholder: "https://<your-vault>.vault.azure.net/",
		load: func(p *parser, c *Config, v string) { c.KeyVaultURL = p.httpsURL(EnvKeyVaultURL, v) }},
	{Name: EnvCAFile, Meaning: "PEM file of an extra CA to trust (the local emulator's ca.pem)",
		load: func(_ *parser, c *Config, v string) { c.CAFile = v }},
	{Name: EnvSBNamespace, Meaning: "Service Bus namespace for an identity-based connection, <ns>.servicebus.windows.net", Placeholder: "<your-namespace>.servicebus.windows.net",
		load: func(p *parser, c *Config, v string) { c.ServiceBusNamespace = p.hostName(EnvSBNamespace, v) }},
	{Name: EnvSBConnection, Meaning: "Service Bus connection string, the alternative to the namespace (emulator)",
		load: func(_ *parser, c *Config, v string) { c.ServiceBusConnectionString = v }},
	{Name: EnvCommandQueue, Default: "app-commands", Meaning: "session-enabled queue of every command for a client (register, rotate, maintain); SessionId = clientName",
		load: func(p *parser, c *Config, v string) { c.CommandQueue = p.entity(EnvCommandQueue, v) }},
	{Name: EnvEventsTopic, Default: "app-registration-events", Meaning: "topic of outcome events",
		load: func(p *parser, c *Config, v string) { c.EventsTopic = p.entity(EnvEventsTopic, v) }},
	{Name: EnvRotationSchedule, Default: "0 0 */6 * * *", Meaning: "NCRONTAB (six fields) of ScheduleRotations",
		load: func(p *parser, c *Config, v string) { c.RotationSchedule = p.schedule(EnvRotationSchedule, v) }},
	{Name: EnvMaxLifetime, Default: strconv.Itoa(d.MaxLifetimeDays), Meaning: "longest secret lifetime a request may ask for, in days (at most 730)",
		load: func(p *parser, c *Config, v string) { c.MaxLifetimeDays = p.integer(EnvMaxLifetime, v, 1, 730) }},
	{Name: EnvDefaultLifetime, Default: strconv.Itoa(d.DefaultLifetimeDays), Meaning: "lifetime of a secret when the request names none, in days",
		load: func(p *parser, c *Config, v string) { c.DefaultLifetimeDays = p.integer(EnvDefaultLifetime, v, 1, 730) }},
	{Name: EnvRotateBefore, Default: durationText(d.RotateBefore), Meaning: "rotate when expiry is this close (capped at a third of the lifetime)",
		load: func(p *parser, c *Config, v string) { c.RotateBefore = p.duration(EnvRotateBefore, v, time.Minute) }},
	{Name: EnvRetireAfter, Default: durationText(d.RetireAfter), Meaning: "remove a superseded password this long after its replacement was stored",
		load: func(p *parser, c *Config, v string) { c.RetireAfter = p.duration(EnvRetireAfter, v, time.Second) }},
	{Name: EnvOrphanAfter, Default: durationText(d.OrphanAfter), Meaning: "remove an appreg password that no Key Vault version holds after this long",
		load: func(p *parser, c *Config, v string) { c.OrphanAfter = p.duration(EnvOrphanAfter, v, time.Minute) }},
	{Name: EnvMaxDeliveryCount, Default: strconv.Itoa(d.MaxDeliveryCount), Meaning: "the command queue's MaxDeliveryCount; the delivery that reaches it publishes a failed event",
		load: func(p *parser, c *Config, v string) { c.MaxDeliveryCount = p.integer(EnvMaxDeliveryCount, v, 1, 2000) }},
	{Name: EnvRetryBudget, Default: durationText(d.RetryBudget), Meaning: "how long, from when a command was enqueued, its transient failures are retried across deliveries before it is dead-lettered",
		load: func(p *parser, c *Config, v string) { c.RetryBudget = p.duration(EnvRetryBudget, v, time.Second) }},
	{Name: EnvAttemptTimeout, Default: durationText(d.AttemptTimeout), Meaning: "the longest one delivery keeps retrying before handing the message back; keep it below host.json's functionTimeout",
		load: func(p *parser, c *Config, v string) { c.AttemptTimeout = p.duration(EnvAttemptTimeout, v, time.Second) }},
	{Name: EnvEditSpacing, Default: durationText(d.EditSpacing), Meaning: "minimum gap between credential edits on one app (Graph answers 500 to rapid edits)",
		load: func(p *parser, c *Config, v string) { c.EditSpacing = p.duration(EnvEditSpacing, v, time.Millisecond) }},
	{Name: EnvReplicationTimeout, Default: durationText(d.ReplicationTimeout), Meaning: "how long to wait out Entra replication of a new app or service principal",
		load: func(p *parser, c *Config, v string) {
			c.ReplicationTimeout = p.duration(EnvReplicationTimeout, v, time.Second)
		}},
	{Name: EnvVerifyTimeout, Default: durationText(d.VerifyTimeout), Meaning: "how long to keep signing in with a new secret until Entra accepts it, before announcing it (0s: do not check)",
		load: func(p *parser, c *Config, v string) { c.VerifyTimeout = p.duration(EnvVerifyTimeout, v, 0) }},
	{Name: EnvVerifySuccesses, Default: strconv.Itoa(d.VerifySuccesses), Meaning: "sign-ins in a row, " + durationText(d.VerifyInterval) + " apart, that a new secret must pass before it is announced verified (Entra's replicas can accept a new password and refuse it again)",
		load: func(p *parser, c *Config, v string) { c.VerifySuccesses = p.integer(EnvVerifySuccesses, v, 1, 100) }},
	{Name: EnvVerifyScope, Default: "https://graph.microsoft.com/.default", Placeholder: "https://<workspace>-<fhir>.fhir.azurehealthcareapis.com/.default", Meaning: "token scope of that sign-in; set your FHIR service's https://<workspace>-<fhir>.fhir.azurehealthcareapis.com/.default to prove the token clients will use",
		load: func(p *parser, c *Config, v string) { c.VerifyScope = p.scope(EnvVerifyScope, v) }},
	{Name: EnvAppNamePrefix, Default: d.AppNamePrefix, Meaning: "prefix of each app's uniqueName",
		load: func(p *parser, c *Config, v string) { c.AppNamePrefix = p.prefix(EnvAppNamePrefix, v) }},
	{Name: EnvSecretNamePrefix, Meaning: "prefix of each Key Vault secret name (<prefix><clientName>" + d.SecretNameSuffix + ")",
		load: func(p *parser, c *Config, v string) { c.SecretNamePrefix = p.prefix(EnvSecretNamePrefix, v) }},
	{Name: EnvARMEndpoint, Default: "https://management.azure.com", Meaning: "Azure Resource Manager endpoint, where FHIR role assignments are made (sovereign clouds, emulator)",
		load: func(p *parser, c *Config, v string) {
			c.ARMEndpoint = strings.TrimSuffix(p.httpsURL(EnvARMEndpoint, v), "/")
		}},
	{Name: EnvARMAudience, Default: "https://management.azure.com", Meaning: "token audience of that endpoint",
		load: func(p *parser, c *Config, v string) { c.ARMAudience = p.httpsURL(EnvARMAudience, v) }},
	{Name: EnvFHIRServices, Meaning: "FHIR services a request may be granted roles on: ARM resource ids, comma-separated, each optionally followed by =<base URL> when that is not https://<workspace>-<fhir>.fhir.azurehealthcareapis.com; none: fhirAccess is refused",
		load: func(p *parser, c *Config, v string) { c.FHIRServices = p.fhirServices(EnvFHIRServices, v) }},
	{Name: EnvFHIRDefaultService, Meaning: "the FHIR service (one of FHIR_SERVICES) a fhirAccess grant that names none is for",
		load: func(_ *parser, c *Config, v string) { c.FHIRDefaultService = v }},
	{Name: EnvFHIRAllowedRoles, Default: strings.Join(d.FHIR.Roles, ","), Meaning: "FHIR roles a request may ask for, by built-in name, comma-separated",
		load: func(p *parser, c *Config, v string) { c.FHIRAllowedRoles = p.fhirRoles(EnvFHIRAllowedRoles, v) }},
	{Name: EnvFHIRAccessTimeout, Default: durationText(d.AccessVerifyTimeout), Meaning: "how long after a registration appreg keeps proving FHIR access before it announces access-unverified (Azure RBAC takes up to 10 minutes)",
		load: func(p *parser, c *Config, v string) {
			c.FHIRAccessTimeout = p.duration(EnvFHIRAccessTimeout, v, time.Minute)
		}},
	{Name: EnvFHIRAccessDelay, Default: durationText(d.AccessCheckDelay), Meaning: "how long after a registration appreg first tries to prove FHIR access; later tries wait twice as long each time, up to 2m",
		load: func(p *parser, c *Config, v string) {
			c.FHIRAccessDelay = p.duration(EnvFHIRAccessDelay, v, time.Second)
		}},
	{Name: EnvPort, Default: SetByHost, Meaning: "port the handler listens on, on 127.0.0.1",
		load: func(p *parser, c *Config, v string) { c.Port = p.integer(EnvPort, v, 1, 65535) }},
	{Name: EnvLogLevel, Default: "info", Meaning: "debug, info, warn or error",
		load: func(p *parser, c *Config, v string) { c.LogLevel = p.level(EnvLogLevel, v) }},
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
	p := &parser{}
	var c Config
	required := map[string]bool{EnvTenantID: need.Tenant, EnvKeyVaultURL: need.Vault, EnvPort: need.Port}
	for _, s := range Settings {
		v := strings.TrimSpace(getenv(s.Name))
		if v == "" {
			v = s.Default
		}
		if v == "" {
			continue // optional, unset, no default
		}
		if v == Required || v == SetByHost {
			if required[s.Name] {
				why := "is required"
				if v == SetByHost {
					why = "is required (the Functions host sets it)"
				}
				p.fail(s.Name, why)
			}
			continue
		}
		s.load(p, &c, v)
	}
	if c.MaxLifetimeDays > 0 && c.DefaultLifetimeDays > c.MaxLifetimeDays {
		p.fail(EnvDefaultLifetime, fmt.Sprintf("(%d) must not exceed %s (%d)", c.DefaultLifetimeDays, EnvMaxLifetime, c.MaxLifetimeDays))
	}
	if c.FHIRDefaultService != "" {
		if _, ok := (registrar.FHIRPolicy{Services: c.FHIRServices}).Service(c.FHIRDefaultService); !ok {
			p.fail(EnvFHIRDefaultService, "must be one of "+EnvFHIRServices)
		}
	}
	if c.ClientSecret != "" && c.ClientID == "" {
		p.fail(EnvClientSecret, "needs "+EnvClientID)
	}
	if need.ServiceBus {
		switch {
		case c.ServiceBusNamespace == "" && c.ServiceBusConnectionString == "":
			p.fail(EnvSBNamespace, "or "+EnvSBConnection+" is required")
		case c.ServiceBusConnectionString != "" && !strings.Contains(c.ServiceBusConnectionString, "Endpoint=sb://"):
			// Never echo the value: a connection string carries a key.
			p.fail(EnvSBConnection, "must be a Service Bus connection string (Endpoint=sb://...)")
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

// Help writes one line per setting, for --help: its name, what it means, and its default.
func Help(w io.Writer) {
	for _, s := range Settings {
		fmt.Fprintf(w, "  %-46s %s (%s)\n", s.Name, s.Meaning, s.DefaultText())
	}
}

// DefaultText says what an unset setting means: "default X", "required", "set by the host" or
// "no default".
func (s Setting) DefaultText() string {
	switch s.Default {
	case "":
		return "no default"
	case Required:
		return "required"
	case SetByHost:
		return "set by the host"
	}
	return "default " + s.Default
}

// durationText writes a default the way an operator would: 720h, 15m, 10s.
func durationText(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	default:
		return d.String()
	}
}

type parser struct {
	errs []error
}

func (p *parser) fail(name, msg string) {
	p.errs = append(p.errs, fmt.Errorf("setting %s %s", name, msg))
}

func (p *parser) guid(name, v, what string) string {
	if !guidRE.MatchString(v) {
		p.fail(name, "must be "+what)
	}
	return v
}

func (p *parser) httpsURL(name, v string) string {
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" || !hostRE.MatchString(u.Host) || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		// The Azure SDKs refuse to send bearer tokens over anything but TLS.
		p.fail(name, fmt.Sprintf("must be an https:// URL with no query, got %q", v))
		return ""
	}
	return v
}

var hostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:[0-9]{1,5})?$`)

func (p *parser) hostName(name, v string) string {
	if !hostRE.MatchString(v) {
		p.fail(name, fmt.Sprintf("must be a host name such as <ns>.servicebus.windows.net, without a scheme, got %q", v))
	}
	return v
}

func (p *parser) entity(name, v string) string {
	if !entityRE.MatchString(v) {
		p.fail(name, fmt.Sprintf("must be a Service Bus entity name, got %q", v))
	}
	return v
}

func (p *parser) prefix(name, v string) string {
	if !prefixRE.MatchString(v) {
		p.fail(name, "must be at most 40 letters, digits or '-'")
	}
	return v
}

func (p *parser) schedule(name, v string) string {
	if settingRef.MatchString(v) {
		return v
	}
	if n := len(strings.Fields(v)); n != 6 {
		p.fail(name, fmt.Sprintf("must be an NCRONTAB expression with six fields (second minute hour day month weekday), got %d fields", n))
	}
	return v
}

func (p *parser) scope(name, v string) string {
	if u, err := url.Parse(v); err != nil || u.Scheme != "https" || !hostRE.MatchString(u.Host) || !strings.HasSuffix(v, "/.default") {
		p.fail(name, fmt.Sprintf("must be a resource's https://…/.default scope, got %q", v))
	}
	return v
}

func (p *parser) integer(name, v string, lo, hi int) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(name, fmt.Sprintf("must be a whole number from %d to %d, got %q", lo, hi, v))
		return 0
	}
	return n
}

// duration accepts Go durations ("720h", "15m") and whole days ("30d"), because lifetimes and
// grace periods are naturally said in days.
func (p *parser) duration(name, v string, least time.Duration) time.Duration {
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
		return 0
	}
	return d
}

// fhirServiceID matches the ARM id of an Azure Health Data Services FHIR service, or of an Azure
// API for FHIR (retired 2026-09-30, still accepted while tenants migrate).
var fhirServiceID = regexp.MustCompile(`(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.HealthcareApis/(workspaces/([^/]+)/fhirservices/([^/]+)|services/([^/]+))$`)

func (p *parser) fhirServices(name, v string) []registrar.FHIRService {
	var out []registrar.FHIRService
	for _, item := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		id, url, hasURL := strings.Cut(item, "=")
		id = strings.TrimSuffix(id, "/")
		m := fhirServiceID.FindStringSubmatch(id)
		if m == nil {
			p.fail(name, fmt.Sprintf("%q is not the ARM id of a FHIR service (/subscriptions/…/providers/Microsoft.HealthcareApis/workspaces/<ws>/fhirservices/<fhir>)", id))
			continue
		}
		switch {
		case hasURL:
			url = strings.TrimSuffix(p.httpsURL(name, url), "/")
		case m[2] != "":
			url = "https://" + strings.ToLower(m[2]+"-"+m[3]) + ".fhir.azurehealthcareapis.com"
		default:
			url = "https://" + strings.ToLower(m[4]) + ".azurehealthcareapis.com"
		}
		out = append(out, registrar.FHIRService{ID: id, URL: url})
	}
	return out
}

func (p *parser) fhirRoles(name, v string) []string {
	var out []string
	for _, r := range strings.Split(v, ",") {
		if strings.TrimSpace(r) == "" {
			continue
		}
		canon := registrar.FHIRRoleName(r)
		if canon == "" {
			p.fail(name, fmt.Sprintf("%q is not a FHIR built-in role (FHIR Data Reader, FHIR Data Writer, FHIR Data Exporter, …)", strings.TrimSpace(r)))
			continue
		}
		out = append(out, canon)
	}
	return out
}

func (p *parser) level(name, v string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		p.fail(name, "must be debug, info, warn or error")
	}
	return l
}
