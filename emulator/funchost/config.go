package funchost

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"time"

	"appreg/emulator/funchost/ncrontab"
)

// Defaults the host applies when host.json is silent.
const (
	DefaultMaxConcurrentCalls         = 16
	DefaultMaxAutoLockRenewalDuration = 5 * time.Minute
	// DefaultMaxConcurrentSessions is extension 5.x's; 2.x-4.x had 2000 under sessionHandlerOptions.
	DefaultMaxConcurrentSessions = 8
	// DefaultSessionIdleTimeout stands in for the extension's unset value (the SDK's one-minute
	// try timeout); host.json should set it.
	DefaultSessionIdleTimeout = time.Minute
	// DefaultFunctionTimeout is the Consumption plan's default; on Premium and
	// Dedicated plans the host defaults to 30 minutes.
	DefaultFunctionTimeout = 5 * time.Minute
	// DefaultConnection is the setting a serviceBusTrigger without
	// "connection" reads, as in the Service Bus extension.
	DefaultConnection = "AzureWebJobsServiceBus"
)

// App is a staged Functions app directory, loaded and validated.
type App struct {
	Dir       string            // absolute script root: host.json and one folder per function
	Settings  map[string]string // app settings, passed to the handler as its environment
	Host      HostConfig
	Functions []*Function // sorted by name; disabled functions are left out
	// Warnings lists settings that are accepted but behave differently here
	// than in Azure; Host.Run logs them.
	Warnings []string
}

// HostConfig is what funchost uses from host.json.
type HostConfig struct {
	ExecutablePath   string   // absolute path of customHandler.description.defaultExecutablePath
	WorkingDirectory string   // absolute; the app root by default
	Arguments        []string // %SETTING% references expanded
	Port             int      // customHandler.port; 0 picks a free port
	// FunctionTimeout bounds each invocation; 0 means unbounded ("-1").
	FunctionTimeout time.Duration
	ServiceBus      ServiceBusOptions
}

// ServiceBusOptions is extensions.serviceBus in host.json.
type ServiceBusOptions struct {
	MaxConcurrentCalls         int           // per function, without sessions
	MaxAutoLockRenewalDuration time.Duration // 0 disables lock renewal
	PrefetchCount              int           // accepted; azservicebus has no prefetch
	// MaxConcurrentSessions is how many sessions a session-enabled function holds at once;
	// SessionIdleTimeout how long a held session may go without a message before it is let go.
	MaxConcurrentSessions int
	SessionIdleTimeout    time.Duration
}

// Function is one <Name>/function.json. Exactly one trigger is set.
type Function struct {
	Name       string
	Dir        string
	ServiceBus *ServiceBusTrigger
	Timer      *TimerTrigger
}

// TriggerType returns the function.json type of the function's trigger.
func (f *Function) TriggerType() string {
	if f.Timer != nil {
		return "timerTrigger"
	}
	return "serviceBusTrigger"
}

// ServiceBusTrigger is a serviceBusTrigger binding with its expressions
// resolved.
type ServiceBusTrigger struct {
	BindingName      string
	QueueName        string // set for a queue, or
	TopicName        string // TopicName and SubscriptionName for a subscription
	SubscriptionName string
	Connection       Connection
	// Binary is dataType "binary": the body reaches the handler as base64
	// rather than as a JSON-encoded string.
	Binary bool
	// Sessions is isSessionsEnabled: the function accepts sessions and runs each session's
	// messages one at a time, in order.
	Sessions bool
}

// Entity names the queue or topic/subscription for logs.
func (t *ServiceBusTrigger) Entity() string {
	if t.QueueName != "" {
		return t.QueueName
	}
	return t.TopicName + "/Subscriptions/" + t.SubscriptionName
}

// Connection is a resolved Service Bus connection: a connection string, or a
// namespace reached with an Entra credential. It never prints the
// connection string or a client secret.
type Connection struct {
	Name string // the binding's connection setting prefix
	// Endpoint is the connection string's Endpoint host, for logs.
	Endpoint string
	// FullyQualifiedNamespace is set for an identity-based connection.
	FullyQualifiedNamespace string
	Credential              string // <prefix>__credential, e.g. "managedidentity"
	ClientID                string // <prefix>__clientId
	TenantID                string // <prefix>__tenantId

	connectionString string
	clientSecret     string
}

// String describes the connection without its secrets.
func (c Connection) String() string {
	if c.FullyQualifiedNamespace != "" {
		return c.Name + " (identity, " + c.FullyQualifiedNamespace + ")"
	}
	return c.Name + " (connection string, " + c.Endpoint + ")"
}

// LogValue keeps secrets out of structured logs.
func (c Connection) LogValue() slog.Value { return slog.StringValue(c.String()) }

// key identifies connections that can share one client.
func (c Connection) key() string {
	return strings.Join([]string{c.connectionString, c.FullyQualifiedNamespace, c.Credential, c.ClientID, c.TenantID, c.clientSecret}, "\x00")
}

// TimerTrigger is a timerTrigger binding.
type TimerTrigger struct {
	BindingName  string
	Schedule     *ncrontab.Schedule
	RunOnStartup bool
	UseMonitor   bool
}

type hostFile struct {
	Version         *string         `json:"version"`
	FunctionTimeout json.RawMessage `json:"functionTimeout"`
	CustomHandler   *struct {
		Description *struct {
			DefaultExecutablePath string   `json:"defaultExecutablePath"`
			WorkingDirectory      string   `json:"workingDirectory"`
			Arguments             []string `json:"arguments"`
			DefaultWorkerPath     string   `json:"defaultWorkerPath"`
			WorkerArguments       []string `json:"workerArguments"`
		} `json:"description"`
		Port *int `json:"port"`
	} `json:"customHandler"`
	Extensions struct {
		ServiceBus struct {
			MaxConcurrentCalls         *int    `json:"maxConcurrentCalls"`
			MaxAutoLockRenewalDuration *string `json:"maxAutoLockRenewalDuration"`
			MaxConcurrentSessions      *int    `json:"maxConcurrentSessions"`
			SessionIdleTimeout         *string `json:"sessionIdleTimeout"`
			PrefetchCount              *int    `json:"prefetchCount"`
			AutoCompleteMessages       *bool   `json:"autoCompleteMessages"`
		} `json:"serviceBus"`
	} `json:"extensions"`
}

type functionFile struct {
	Disabled bool          `json:"disabled"`
	Bindings []bindingFile `json:"bindings"`
}

type bindingFile struct {
	Name                 string `json:"name"`
	Type                 string `json:"type"`
	Direction            string `json:"direction"`
	DataType             string `json:"dataType"`
	QueueName            string `json:"queueName"`
	TopicName            string `json:"topicName"`
	SubscriptionName     string `json:"subscriptionName"`
	Connection           string `json:"connection"`
	Cardinality          string `json:"cardinality"`
	IsSessionsEnabled    bool   `json:"isSessionsEnabled"`
	AutoCompleteMessages *bool  `json:"autoCompleteMessages"`
	Schedule             string `json:"schedule"`
	RunOnStartup         bool   `json:"runOnStartup"`
	UseMonitor           *bool  `json:"useMonitor"`
}

// loader accumulates every problem so one run reports them all.
type loader struct {
	dir      string
	settings map[string]string
	errs     []error
	warnings []string
}

func (l *loader) errorf(file, format string, args ...any) {
	l.errs = append(l.errs, fmt.Errorf("%s: %s", file, fmt.Sprintf(format, args...)))
}

// Load reads and validates the app in dir: host.json, then every
// <Name>/function.json, resolving %NAME% binding expressions from settings
// (the app settings, e.g. from LoadSettings). The error lists every problem
// found, each naming its file and field.
func Load(dir string, settings map[string]string) (*App, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("app directory %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("app directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("app directory %s is not a directory", dir)
	}
	l := &loader{dir: abs, settings: make(map[string]string, len(settings))}
	for k, v := range settings {
		l.settings[k] = v
	}
	app := &App{Dir: abs, Settings: l.settings}
	l.loadHost(app, filepath.Join(dir, "host.json"))
	l.loadFunctions(app, dir)
	app.Warnings = l.warnings
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return app, nil
}

func (l *loader) loadHost(app *App, path string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		l.errs = append(l.errs, err) // names the file
		return
	}
	var hf hostFile
	if err := decodeJSONC(raw, &hf); err != nil {
		l.errorf(path, "%v", err)
		return
	}
	switch {
	case hf.Version == nil:
		l.errorf(path, `version: missing; want "2.0"`)
	case *hf.Version != "2.0":
		l.errorf(path, `version: %q is not supported; want "2.0"`, *hf.Version)
	}

	h := &app.Host
	h.FunctionTimeout = DefaultFunctionTimeout
	if len(hf.FunctionTimeout) > 0 && string(hf.FunctionTimeout) != "null" {
		var s string
		if err := json.Unmarshal(hf.FunctionTimeout, &s); err != nil {
			l.errorf(path, `functionTimeout: must be a string such as "00:05:00" or "-1"`)
		} else if s == "-1" {
			h.FunctionTimeout = 0
		} else if d, err := parseTimeSpan(s); err != nil {
			l.errorf(path, "functionTimeout: %v", err)
		} else if d <= 0 {
			l.errorf(path, `functionTimeout: %q must be positive, or "-1" for no limit`, s)
		} else {
			h.FunctionTimeout = d
		}
	}

	ch := hf.CustomHandler
	switch {
	case ch == nil:
		l.errorf(path, "customHandler: missing; funchost runs custom handlers only")
	case ch.Description == nil || ch.Description.DefaultExecutablePath == "":
		l.errorf(path, "customHandler.description.defaultExecutablePath: missing")
	default:
		d := ch.Description
		exe, err := l.resolveExecutable(d.DefaultExecutablePath)
		if err != nil {
			l.errorf(path, "customHandler.description.defaultExecutablePath: %v", err)
		}
		h.ExecutablePath = exe
		h.WorkingDirectory = l.dir
		if d.WorkingDirectory != "" {
			wd := d.WorkingDirectory
			if !filepath.IsAbs(wd) {
				wd = filepath.Join(l.dir, wd)
			}
			if fi, err := os.Stat(wd); err != nil || !fi.IsDir() {
				l.errorf(path, "customHandler.description.workingDirectory: %q is not a directory", d.WorkingDirectory)
			}
			h.WorkingDirectory = wd
		}
		for i, a := range d.Arguments {
			v, err := l.expand(a)
			if err != nil {
				l.errorf(path, "customHandler.description.arguments[%d]: %v", i, err)
			}
			h.Arguments = append(h.Arguments, v)
		}
		if d.DefaultWorkerPath != "" || len(d.WorkerArguments) > 0 {
			l.warnings = append(l.warnings, path+": customHandler.description.defaultWorkerPath and workerArguments are ignored by funchost")
		}
		if ch.Port != nil {
			if *ch.Port < 1 || *ch.Port > 65535 {
				l.errorf(path, "customHandler.port: %d is not a TCP port", *ch.Port)
			}
			h.Port = *ch.Port
		}
	}

	sb := hf.Extensions.ServiceBus
	h.ServiceBus = ServiceBusOptions{
		MaxConcurrentCalls:         DefaultMaxConcurrentCalls,
		MaxAutoLockRenewalDuration: DefaultMaxAutoLockRenewalDuration,
		MaxConcurrentSessions:      DefaultMaxConcurrentSessions,
		SessionIdleTimeout:         DefaultSessionIdleTimeout,
	}
	if sb.MaxConcurrentSessions != nil {
		if *sb.MaxConcurrentSessions < 1 {
			l.errorf(path, "extensions.serviceBus.maxConcurrentSessions: %d must be at least 1", *sb.MaxConcurrentSessions)
		}
		h.ServiceBus.MaxConcurrentSessions = *sb.MaxConcurrentSessions
	}
	if sb.SessionIdleTimeout != nil {
		d, err := parseTimeSpan(*sb.SessionIdleTimeout)
		switch {
		case err != nil:
			l.errorf(path, "extensions.serviceBus.sessionIdleTimeout: %v", err)
		case d <= 0:
			l.errorf(path, "extensions.serviceBus.sessionIdleTimeout: %q must be positive", *sb.SessionIdleTimeout)
		default:
			h.ServiceBus.SessionIdleTimeout = d
		}
	}
	if sb.MaxConcurrentCalls != nil {
		if *sb.MaxConcurrentCalls < 1 {
			l.errorf(path, "extensions.serviceBus.maxConcurrentCalls: %d must be at least 1", *sb.MaxConcurrentCalls)
		}
		h.ServiceBus.MaxConcurrentCalls = *sb.MaxConcurrentCalls
	}
	if sb.MaxAutoLockRenewalDuration != nil {
		d, err := parseTimeSpan(*sb.MaxAutoLockRenewalDuration)
		switch {
		case err != nil:
			l.errorf(path, "extensions.serviceBus.maxAutoLockRenewalDuration: %v", err)
		case d < 0:
			l.errorf(path, "extensions.serviceBus.maxAutoLockRenewalDuration: %q must not be negative", *sb.MaxAutoLockRenewalDuration)
		default:
			h.ServiceBus.MaxAutoLockRenewalDuration = d
		}
	}
	if sb.PrefetchCount != nil {
		if *sb.PrefetchCount < 0 {
			l.errorf(path, "extensions.serviceBus.prefetchCount: %d must not be negative", *sb.PrefetchCount)
		} else if *sb.PrefetchCount > 0 {
			l.warnings = append(l.warnings, path+": extensions.serviceBus.prefetchCount has no effect in funchost (azservicebus does not prefetch)")
		}
		h.ServiceBus.PrefetchCount = *sb.PrefetchCount
	}
	if sb.AutoCompleteMessages != nil && !*sb.AutoCompleteMessages {
		l.errorf(path, "extensions.serviceBus.autoCompleteMessages: false is not supported: a custom handler cannot settle messages, so every message would be redelivered when its lock expires")
	}
}

// resolveExecutable mirrors the host: a relative path is taken from the app
// root, and a bare name that is not there is looked up on PATH.
func (l *loader) resolveExecutable(p string) (string, error) {
	p, err := l.expand(p)
	if err != nil {
		return "", err
	}
	cand := p
	if !filepath.IsAbs(cand) {
		cand = filepath.Join(l.dir, p)
	}
	fi, err := os.Stat(cand)
	if err != nil && !strings.ContainsAny(p, `/\`) {
		if found, lerr := exec.LookPath(p); lerr == nil {
			return found, nil
		}
	}
	switch {
	case err != nil:
		return "", fmt.Errorf("%q not found in the app directory (stage the handler next to host.json)", p)
	case fi.IsDir():
		return "", fmt.Errorf("%q is a directory", p)
	case runtime.GOOS != "windows" && fi.Mode()&0o111 == 0:
		return "", fmt.Errorf("%q is not executable (chmod +x)", p)
	}
	return cand, nil
}

var settingRef = regexp.MustCompile(`%([^%\s]+)%`)

// expand resolves %NAME% references from the app settings, as the host does
// for binding expressions and handler arguments.
func (l *loader) expand(s string) (string, error) {
	var missing []string
	out := settingRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[1 : len(ref)-1]
		v, ok := l.settings[name]
		if !ok || v == "" {
			missing = append(missing, name)
			return ref
		}
		return v
	})
	if len(missing) > 0 {
		msgs := make([]string, len(missing))
		for i, m := range missing {
			msgs[i] = fmt.Sprintf("app setting %s (referenced as %%%s%%) is not set", m, m)
		}
		return "", errors.New(strings.Join(msgs, "; "))
	}
	return out, nil
}

var functionNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_\-]{0,127}$`)

func (l *loader) loadFunctions(app *App, dir string) {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("app directory: %w", err))
		return
	}
	found := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		path := filepath.Join(dir, e.Name(), "function.json")
		raw, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // the host ignores folders without function.json
		}
		found++
		if err != nil {
			l.errs = append(l.errs, err)
			continue
		}
		if !functionNameRE.MatchString(e.Name()) {
			l.errorf(path, "folder name %q is not a valid function name (a letter, then letters, digits, _ or -)", e.Name())
			continue
		}
		fn := l.loadFunction(path, e.Name(), raw)
		if fn != nil {
			fn.Dir = filepath.Join(l.dir, e.Name())
			app.Functions = append(app.Functions, fn)
		}
	}
	if found == 0 {
		l.errs = append(l.errs, fmt.Errorf("%s: no functions found (want <Name>/function.json next to host.json)", dir))
	}
	sort.Slice(app.Functions, func(i, j int) bool { return app.Functions[i].Name < app.Functions[j].Name })
}

func (l *loader) loadFunction(path, name string, raw []byte) *Function {
	var ff functionFile
	if err := decodeJSONC(raw, &ff); err != nil {
		l.errorf(path, "%v", err)
		return nil
	}
	if ff.Disabled {
		l.warnings = append(l.warnings, path+": disabled")
		return nil
	}
	if v := l.settings["AzureWebJobs."+name+".Disabled"]; strings.EqualFold(v, "true") || v == "1" {
		l.warnings = append(l.warnings, fmt.Sprintf("function %s disabled by app setting AzureWebJobs.%s.Disabled", name, name))
		return nil
	}
	fn := &Function{Name: name}
	triggers := 0
	for i, b := range ff.Bindings {
		field := fmt.Sprintf("bindings[%d]", i)
		switch {
		case strings.EqualFold(b.Type, "serviceBusTrigger"):
			triggers++
			fn.ServiceBus = l.serviceBusTrigger(path, field, b)
		case strings.EqualFold(b.Type, "timerTrigger"):
			triggers++
			fn.Timer = l.timerTrigger(path, field, b)
		case b.Type == "":
			l.errorf(path, "%s.type: missing", field)
		case strings.HasSuffix(strings.ToLower(b.Type), "trigger"):
			triggers++
			l.errorf(path, "%s.type: %q is not supported by funchost (serviceBusTrigger and timerTrigger are)", field, b.Type)
		default:
			l.errorf(path, "%s.type: %q (direction %q) is not supported by funchost: only serviceBusTrigger and timerTrigger bindings are", field, b.Type, b.Direction)
		}
	}
	switch {
	case len(ff.Bindings) == 0:
		l.errorf(path, "bindings: missing; want one serviceBusTrigger or timerTrigger")
		return nil
	case triggers == 0:
		l.errorf(path, "bindings: no trigger binding")
		return nil
	case triggers > 1:
		l.errorf(path, "bindings: %d trigger bindings; a function has exactly one", triggers)
		return nil
	case fn.ServiceBus == nil && fn.Timer == nil:
		return nil
	}
	return fn
}

func (l *loader) bindingCommon(path, field string, b bindingFile) {
	if b.Name == "" {
		l.errorf(path, "%s.name: missing", field)
	}
	if b.Direction != "" && !strings.EqualFold(b.Direction, "in") {
		l.errorf(path, "%s.direction: %q; a trigger's direction is \"in\"", field, b.Direction)
	}
}

func (l *loader) serviceBusTrigger(path, field string, b bindingFile) *ServiceBusTrigger {
	before := len(l.errs)
	l.bindingCommon(path, field, b)
	t := &ServiceBusTrigger{BindingName: b.Name}
	resolve := func(prop, v string) string {
		out, err := l.expand(v)
		if err != nil {
			l.errorf(path, "%s.%s: %v", field, prop, err)
		}
		return out
	}
	switch {
	case b.QueueName != "" && (b.TopicName != "" || b.SubscriptionName != ""):
		l.errorf(path, "%s: set queueName, or topicName and subscriptionName, not both", field)
	case b.QueueName != "":
		t.QueueName = resolve("queueName", b.QueueName)
	case b.TopicName != "" && b.SubscriptionName != "":
		t.TopicName = resolve("topicName", b.TopicName)
		t.SubscriptionName = resolve("subscriptionName", b.SubscriptionName)
	case b.TopicName != "":
		l.errorf(path, "%s.subscriptionName: missing (topicName is set)", field)
	case b.SubscriptionName != "":
		l.errorf(path, "%s.topicName: missing (subscriptionName is set)", field)
	default:
		l.errorf(path, "%s.queueName: missing (or topicName and subscriptionName)", field)
	}
	switch strings.ToLower(b.Cardinality) {
	case "", "one":
	case "many":
		l.errorf(path, "%s.cardinality: \"many\" is not supported by funchost; use \"one\"", field)
	default:
		l.errorf(path, "%s.cardinality: %q; want \"one\"", field, b.Cardinality)
	}
	t.Sessions = b.IsSessionsEnabled
	if b.AutoCompleteMessages != nil && !*b.AutoCompleteMessages {
		l.errorf(path, "%s.autoCompleteMessages: false is not supported: a custom handler cannot settle messages", field)
	}
	switch strings.ToLower(b.DataType) {
	case "", "string":
	case "binary":
		t.Binary = true
	default:
		l.errorf(path, "%s.dataType: %q; want \"string\" or \"binary\"", field, b.DataType)
	}
	conn, err := l.connection(b.Connection)
	if err != nil {
		l.errorf(path, "%s.connection: %v", field, err)
	}
	t.Connection = conn
	if len(l.errs) > before {
		return nil
	}
	return t
}

// lookup reads a setting, accepting the "__" form environment variables use
// and the ":" form local.settings.json may use for nested keys.
func (l *loader) lookup(prefix, suffix string) string {
	if suffix == "" {
		return l.settings[prefix]
	}
	if v := l.settings[prefix+"__"+suffix]; v != "" {
		return v
	}
	return l.settings[prefix+":"+suffix]
}

// connection resolves a binding's connection the way the Service Bus
// extension does: a connection string in <name> (or AzureWebJobs<name>), else
// an identity-based connection from <name>__fullyQualifiedNamespace.
func (l *loader) connection(name string) (Connection, error) {
	if name == "" {
		name = DefaultConnection
	}
	c := Connection{Name: name}
	cs := l.lookup(name, "")
	if cs == "" && !strings.HasPrefix(name, "AzureWebJobs") {
		cs = l.lookup("AzureWebJobs"+name, "")
	}
	if cs != "" {
		endpoint, err := connectionStringEndpoint(cs)
		if err != nil {
			return c, fmt.Errorf("app setting %s: %w", name, err)
		}
		c.connectionString, c.Endpoint = cs, endpoint
		return c, nil
	}
	ns := l.lookup(name, "fullyQualifiedNamespace")
	if ns == "" {
		return c, fmt.Errorf("neither app setting %s (a connection string) nor %s__fullyQualifiedNamespace is set", name, name)
	}
	if strings.Contains(ns, "://") || strings.Contains(ns, "/") {
		return c, fmt.Errorf("app setting %s__fullyQualifiedNamespace: %q must be a host name such as contoso.servicebus.windows.net", name, ns)
	}
	c.FullyQualifiedNamespace = ns
	c.Credential = l.lookup(name, "credential")
	c.ClientID = l.lookup(name, "clientId")
	c.TenantID = l.lookup(name, "tenantId")
	c.clientSecret = l.lookup(name, "clientSecret")
	if c.Credential != "" && !strings.EqualFold(c.Credential, "managedidentity") {
		return c, fmt.Errorf("app setting %s__credential: %q; the only supported value is \"managedidentity\"", name, c.Credential)
	}
	if c.clientSecret != "" && (c.ClientID == "" || c.TenantID == "") {
		return c, fmt.Errorf("app setting %s__clientSecret needs %s__clientId and %s__tenantId", name, name, name)
	}
	return c, nil
}

// connectionStringEndpoint checks a Service Bus connection string's shape and
// returns its endpoint host. The error never repeats the string: it holds a key.
func connectionStringEndpoint(cs string) (string, error) {
	var endpoint string
	hasKey, hasSAS := false, false
	for _, part := range strings.Split(cs, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch strings.ToLower(k) {
		case "endpoint":
			endpoint = v
		case "sharedaccesskey", "sharedaccesskeyname":
			hasKey = true
		case "sharedaccesssignature":
			hasSAS = true
		}
	}
	if endpoint == "" {
		return "", errors.New("not a Service Bus connection string (no Endpoint=sb://...)")
	}
	host, ok := strings.CutPrefix(endpoint, "sb://")
	if !ok {
		return "", errors.New("the Endpoint must start with sb://")
	}
	if !hasKey && !hasSAS {
		return "", errors.New("connection string has no SharedAccessKeyName/SharedAccessKey or SharedAccessSignature")
	}
	return strings.TrimSuffix(host, "/"), nil
}

func (l *loader) timerTrigger(path, field string, b bindingFile) *TimerTrigger {
	before := len(l.errs)
	l.bindingCommon(path, field, b)
	t := &TimerTrigger{BindingName: b.Name, RunOnStartup: b.RunOnStartup}
	if b.Schedule == "" {
		l.errorf(path, "%s.schedule: missing (a six-field NCRONTAB expression such as \"0 */5 * * * *\")", field)
		return nil
	}
	expr, err := l.expand(b.Schedule)
	if err != nil {
		l.errorf(path, "%s.schedule: %v", field, err)
		return nil
	}
	if strings.Contains(expr, ":") && !strings.Contains(expr, " ") {
		l.errorf(path, "%s.schedule: TimeSpan schedules (%q) are not supported by funchost; use a six-field NCRONTAB expression", field, expr)
		return nil
	}
	s, err := ncrontab.Parse(expr)
	if err != nil {
		l.errorf(path, "%s.schedule: %v", field, err)
		return nil
	}
	first := s.Next(time.Now())
	if first.IsZero() {
		l.errorf(path, "%s.schedule: %q never fires", field, expr)
		return nil
	}
	t.Schedule = s
	// The host turns the monitor on by default unless occurrences are less
	// than a minute apart.
	t.UseMonitor = s.Next(first).Sub(first) >= time.Minute
	if b.UseMonitor != nil {
		t.UseMonitor = *b.UseMonitor
	}
	if len(l.errs) > before {
		return nil
	}
	return t
}
