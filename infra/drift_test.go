// Package infra_test guards what a Bicep compiler cannot: that infra/ agrees with the code it
// deploys. No Bicep CLI runs here, so the checks read the templates as text, with regular
// expressions over the few shapes the templates use (a `var appSettings = {…}` table, `param`
// defaults, `resource` blocks), and every check returns its findings instead of failing, so the
// tests below can also prove that each one notices a broken copy.
package infra_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	servicebus "appreg/emulator/servicebusemu"
	"appreg/internal/config"
	"appreg/internal/registrar"
)

// The templates, by path from the repository root.
const (
	mainBicep       = "infra/main.bicep"
	serviceBusBicep = "infra/app/servicebus.bicep"
	fhirBicep       = "infra/app/fhir-delegation.bicep"
	runbook         = "README.md"
	exampleSettings = "local.settings.json.example"
)

// documentedIDs are the only GUIDs infra/ may contain, by the name a template gives them in a
// comment or a key. Azure built-in roles: Microsoft's built-in roles reference as quoted in
// shared/reference/fhir-access.md §1.1 (2026-04-09) and deploy.md §2.5 (the Flex samples'
// rbac.bicep). Graph: the Microsoft Graph permissions reference
// (https://learn.microsoft.com/graph/permissions-reference#applicationreadwriteownedby).
var documentedIDs = map[string]string{
	"Key Vault Secrets Officer":                      "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
	"Key Vault Secrets User":                         "4633458b-17de-408a-b874-0445c86b69e6",
	"Azure Service Bus Data Owner":                   "090c5cfd-751d-490a-894a-3ce6f1109419",
	"Azure Service Bus Data Receiver":                "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",
	"Azure Service Bus Data Sender":                  "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
	"Role Based Access Control Administrator":        "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
	"User Access Administrator":                      "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
	"Storage Blob Data Owner":                        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
	"Storage Queue Data Contributor":                 "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
	"Storage Table Data Contributor":                 "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
	"Monitoring Metrics Publisher":                   "3913510d-42f4-4e42-8a64-420c390055eb",
	"FHIR Data Reader":                               "4c8d0bbc-75d3-4935-991f-5f3c56d81508",
	"FHIR Data Writer":                               "3f88fce4-5892-4214-ae73-ba5294559913",
	"FHIR Data Exporter":                             "3db33094-8700-4567-8da5-1501d4e7e843",
	"FHIR Data Contributor":                          "5a1fc7df-4bf1-4951-a576-89034ee01acd",
	"FHIR Data Importer":                             "4465e953-8ced-4406-a58e-0f6e3f3b530b",
	"FHIR Data Converter":                            "a1705bd2-3a8f-45a5-8683-466fcfd5cc24",
	"FHIR Data Bulk Operator":                        "804db8d3-32c7-4ad4-a975-3f6f90d5f5f5",
	"FHIR SMART User":                                "4ba50f17-9666-485c-a643-ff00808643f0",
	"Microsoft Graph (application id)":               "00000003-0000-0000-c000-000000000000",
	"Application.ReadWrite.OwnedBy (Graph app role)": "18a4783c-866b-4cc7-a460-3d5e5662c884",
}

// notInAzure are settings local.settings.json.example (or config.Settings) has that a Flex
// Consumption app must not: each would be wrong in Azure, so the check also insists they stay out.
var notInAzure = map[string]string{
	"FUNCTIONS_WORKER_RUNTIME":     "Flex Consumption refuses it; the runtime is functionAppConfig.runtime (custom 1.0)",
	"AzureWebJobsStorage":          "a connection string; in Azure the host uses the identity-based AzureWebJobsStorage__accountName/__credential/__clientId",
	"AZURE_CLIENT_SECRET":          "a secret for local development and the emulator; in Azure the handler signs in as its managed identity",
	"APPREG_CA_FILE":               "the local emulator's CA; Azure's endpoints chain to public roots",
	"ServiceBusConnection":         "a connection string with a key (the emulator's); the namespace has local auth disabled, and ServiceBusConnection__* sign in with the identity",
	"FUNCTIONS_CUSTOMHANDLER_PORT": "the Functions host sets it for each handler process",
}

// flexRefuses are app settings Flex Consumption rejects or ignores (functions-app-settings,
// "Flex Consumption plan deprecations"); setting one fails the deployment or misleads.
var flexRefuses = []string{"FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE", "WEBSITE_CONTENTSHARE", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "SCM_DO_BUILD_DURING_DEPLOYMENT"}

// files is infra/ and what it is compared with, by path from the repository root, so a test can
// change a copy and run the same checks.
type files map[string]string

func (f files) clone() files {
	c := files{}
	for k, v := range f {
		c[k] = v
	}
	return c
}

func load(t *testing.T) files {
	t.Helper()
	f := files{}
	var paths []string
	for _, pattern := range []string{"infra/*.bicep", "infra/*/*.bicep", "infra/*.json", "functions/*/function.json", "scripts/*.sh", runbook, exampleSettings} {
		m, err := filepath.Glob(filepath.Join("..", pattern))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, m...)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f[filepath.ToSlash(strings.TrimPrefix(p, ".."+string(filepath.Separator)))] = string(b)
	}
	for _, must := range []string{mainBicep, serviceBusBicep, fhirBicep, exampleSettings} {
		if _, ok := f[must]; !ok {
			t.Fatalf("%s is missing", must)
		}
	}
	return f
}

// --- a little Bicep reading -----------------------------------------------------------------

var (
	guidRE     = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	paramRE    = regexp.MustCompile(`(?m)^param\s+(\w+)\s+\w+\s*=\s*(.+?)\s*$`)
	varRE      = regexp.MustCompile(`(?m)^var\s+(\w+)\s*=\s*(.+?)\s*$`)
	resourceRE = regexp.MustCompile(`(?m)^resource\s+(\w+)\s+'([^'@]+)@[^']*'\s*(existing\s*)?=\s*(?:if\s*\(.*\)\s*)?\{`)
	moduleRE   = regexp.MustCompile(`(?m)^module\s+(\w+)\s+'([^']+)'\s*=\s*(?:if\s*\(.*\)\s*)?\{`)
	entryRE    = regexp.MustCompile(`^\s*([A-Za-z_]\w*|'[^']*')\s*:\s*(.*?)\s*$`)
	identRE    = regexp.MustCompile(`^[A-Za-z_]\w*$`)
)

// block returns the text between the '{' at open and its matching '}', skipping braces inside
// '…' strings and // comments.
func block(text string, open int) string {
	depth, inStr := 0, false
	for i := open; i < len(text); i++ {
		c := text[i]
		switch {
		case inStr:
			if c == '\\' {
				i++
			} else if c == '\'' {
				inStr = false
			}
		case c == '\'':
			inStr = true
		case c == '/' && i+1 < len(text) && text[i+1] == '/':
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case c == '{':
			depth++
		case c == '}':
			depth--
			if depth == 0 {
				return text[open+1 : i]
			}
		}
	}
	return text[open+1:]
}

// entries are the `key: value` lines of a block, at any depth, in order; comments dropped.
func entries(body string) [][2]string {
	var out [][2]string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "//") {
			continue
		}
		if m := entryRE.FindStringSubmatch(stripComment(line)); m != nil {
			out = append(out, [2]string{strings.Trim(m[1], "'"), m[2]})
		}
	}
	return out
}

// stripComment drops a trailing // comment that is not inside a string.
func stripComment(line string) string {
	inStr := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case inStr && c == '\\':
			i++
		case c == '\'':
			inStr = !inStr
		case !inStr && c == '/' && i+1 < len(line) && line[i+1] == '/':
			return strings.TrimRight(line[:i], " \t")
		}
	}
	return line
}

func prop(body, key string) (string, bool) {
	for _, e := range entries(body) {
		if e[0] == key {
			return e[1], true
		}
	}
	return "", false
}

type resource struct {
	file, symbol, typ, body string
	existing                bool
}

func resources(f files, typ string) []resource {
	var out []resource
	for _, name := range sortedKeys(f) {
		if !strings.HasSuffix(name, ".bicep") {
			continue
		}
		text := f[name]
		for _, m := range resourceRE.FindAllStringSubmatchIndex(text, -1) {
			if text[m[4]:m[5]] != typ {
				continue
			}
			out = append(out, resource{file: name, symbol: text[m[2]:m[3]], typ: typ, body: block(text, m[1]-1), existing: m[6] >= 0})
		}
	}
	return out
}

// appSettings is main.bicep's `var appSettings = {…}` table: setting → Bicep expression.
func appSettings(f files) (map[string]string, error) {
	text := f[mainBicep]
	i := strings.Index(text, "var appSettings = {")
	if i < 0 {
		return nil, fmt.Errorf("%s: no `var appSettings = {…}` table; keep every app setting in that one object", mainBicep)
	}
	out := map[string]string{}
	for _, e := range entries(block(text, i+len("var appSettings = {")-1)) {
		out[e[0]] = e[1]
	}
	return out, nil
}

// literal reads a Bicep literal: 'string', a number, true or false.
func literal(expr string) (string, bool) {
	expr = strings.TrimSpace(expr)
	if len(expr) >= 2 && expr[0] == '\'' && expr[len(expr)-1] == '\'' && !strings.Contains(expr[1:len(expr)-1], "${") {
		return strings.ReplaceAll(expr[1:len(expr)-1], `\'`, `'`), true
	}
	if _, err := strconv.Atoi(expr); err == nil || expr == "true" || expr == "false" {
		return expr, true
	}
	return "", false
}

// resolve follows an expression to a literal through string(…), params with literal defaults,
// vars, and the module call that passes a module's param. origin names the param or var the
// value comes from, so two settings can be shown to share one.
func resolve(f files, file, expr string) (val, origin string, ok bool) {
	expr = strings.TrimSpace(expr)
	if inner, found := strings.CutPrefix(expr, "string("); found && strings.HasSuffix(inner, ")") {
		expr = strings.TrimSuffix(inner, ")")
	}
	if v, ok := literal(expr); ok {
		return v, file + " literal", true
	}
	if !identRE.MatchString(expr) {
		return "", "", false
	}
	text := f[file]
	for _, m := range paramRE.FindAllStringSubmatch(text, -1) {
		if m[1] == expr {
			v, ok := literal(m[2])
			return v, file + " param " + expr, ok
		}
	}
	for _, m := range varRE.FindAllStringSubmatch(text, -1) {
		if m[1] == expr {
			if v, ok := literal(m[2]); ok {
				return v, file + " var " + expr, true
			}
			return "", "", false
		}
	}
	if regexp.MustCompile(`(?m)^param\s+` + expr + `\s`).MatchString(text) {
		// A module's param without default: the caller passes it.
		for _, caller := range sortedKeys(f) {
			ct := f[caller]
			for _, m := range moduleRE.FindAllStringSubmatchIndex(ct, -1) {
				if path.Join(path.Dir(caller), ct[m[4]:m[5]]) != file {
					continue
				}
				if arg, found := prop(block(ct, m[1]-1), expr); found {
					return resolve(f, caller, arg)
				}
			}
		}
	}
	return "", "", false
}

func isoDuration(s string) (time.Duration, error) {
	m := regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$`).FindStringSubmatch(s)
	if m == nil || s == "P" || s == "PT" {
		return 0, fmt.Errorf("%q is not an ISO 8601 duration", s)
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second} {
		if m[i+1] != "" {
			n, _ := strconv.Atoi(m[i+1])
			d += time.Duration(n) * unit
		}
	}
	return d, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func settingDefault(name string) (config.Setting, bool) {
	for _, s := range config.Settings {
		if s.Name == name {
			return s, true
		}
	}
	return config.Setting{}, false
}

// --- the checks -------------------------------------------------------------------------------

// hostResolved are the settings the Functions host itself needs from function.json: every
// %NAME% binding expression (the host has no defaults for them) and, for each trigger
// connection, the identity-based connection with a user-assigned identity.
func hostResolved(f files) map[string]string {
	out := map[string]string{}
	for _, name := range sortedKeys(f) {
		if !strings.HasPrefix(name, "functions/") {
			continue
		}
		for _, m := range regexp.MustCompile(`%(\w+)%`).FindAllStringSubmatch(f[name], -1) {
			out[m[1]] = fmt.Sprintf("%s names %%%s%%, which the host resolves from app settings and has no default for", name, m[1])
		}
		for _, m := range regexp.MustCompile(`"connection"\s*:\s*"(\w+)"`).FindAllStringSubmatch(f[name], -1) {
			for _, suffix := range []string{"__fullyQualifiedNamespace", "__credential", "__clientId"} {
				out[m[1]+suffix] = fmt.Sprintf("%s's trigger connection %q signs in with the user-assigned identity only when %s__credential is managedidentity and %s__clientId names it", name, m[1], m[1], m[1])
			}
		}
	}
	return out
}

// checkAppSettings: every setting the handler requires and the host resolves is in main.bicep's
// appSettings, every handler setting is there unless it does not belong in Azure, nothing Flex
// refuses is, and each literal equals the code's default.
func checkAppSettings(f files) []string {
	settings, err := appSettings(f)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	missing := func(name, why string) {
		problems = append(problems, fmt.Sprintf("%s: app setting %s is missing from var appSettings; %s. Add `%s: <value>` to that table.", mainBicep, name, why, name))
	}
	required := map[string]string{
		config.EnvEventsTopic:                       "the handler publishes every outcome event to it",
		config.EnvClientID:                          "without it the handler asks for a system-assigned identity, and the app has only the user-assigned one",
		"AzureWebJobsStorage__accountName":          "the host's storage, identity-based (Flex needs AzureWebJobsStorage)",
		"AzureWebJobsStorage__credential":           "the host's storage connection signs in with the managed identity only when this is managedidentity",
		"AzureWebJobsStorage__clientId":             "the host's storage connection must name the user-assigned identity",
		"APPLICATIONINSIGHTS_CONNECTION_STRING":     "without it the host sends no telemetry, and the preflight and failure logs the runbook queries go nowhere",
		"APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Application Insights has local auth disabled; without it the host's telemetry is refused",
	}
	for _, s := range config.Settings {
		if s.Default == config.Required {
			required[s.Name] = "the handler refuses to start without it (config.Settings: " + s.Meaning + ")"
		}
	}
	for name, why := range hostResolved(f) {
		required[name] = why
	}
	for _, name := range sortedKeys(required) {
		if _, ok := settings[name]; !ok {
			missing(name, required[name])
		}
	}
	for _, s := range config.Settings {
		_, in := settings[s.Name]
		_, req := required[s.Name]
		_, local := notInAzure[s.Name]
		if !in && !req && !local {
			missing(s.Name, "the handler reads it (config.Settings: "+s.Meaning+"); write it out ("+s.DefaultText()+" in the code), so the deployed app says what it runs with")
		}
	}
	for _, name := range flexRefuses {
		if _, in := settings[name]; in {
			problems = append(problems, fmt.Sprintf("%s: app setting %s is refused or ignored on Flex Consumption; remove it from var appSettings", mainBicep, name))
		}
	}
	for _, name := range sortedKeys(notInAzure) {
		if _, in := settings[name]; in {
			problems = append(problems, fmt.Sprintf("%s: app setting %s must not be set in Azure (%s); remove it from var appSettings", mainBicep, name, notInAzure[name]))
		}
	}
	// A literal that differs from the code's default is a default that moved in one place only.
	for _, name := range sortedKeys(settings) {
		s, ok := settingDefault(name)
		if !ok || s.Default == "" || s.Default == config.Required || s.Default == config.SetByHost {
			continue
		}
		if v, origin, ok := resolve(f, mainBicep, settings[name]); ok && v != s.Default {
			problems = append(problems, fmt.Sprintf("%s: app setting %s is %q (%s), but the code's default is %q; make them one value (change the infra, or the default in internal/config and registrar.Defaults)", mainBicep, name, v, origin, s.Default))
		}
	}
	return problems
}

// checkExample: every setting local.settings.json.example names reaches the app, unless it does
// not belong in Azure (notInAzure says why).
func checkExample(f files) []string {
	var example struct{ Values map[string]string }
	if err := json.Unmarshal([]byte(f[exampleSettings]), &example); err != nil {
		return []string{fmt.Sprintf("%s: %v", exampleSettings, err)}
	}
	settings, err := appSettings(f)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	for _, name := range sortedKeys(example.Values) {
		if _, local := notInAzure[name]; local {
			continue
		}
		if _, ok := settings[name]; !ok {
			problems = append(problems, fmt.Sprintf("%s: %s sets %s, but var appSettings does not; add it there (or, if it has no place in Azure, to notInAzure in infra/drift_test.go with the reason)", mainBicep, exampleSettings, name))
		}
	}
	return problems
}

// checkServiceBus: the entities infra creates are the ones the code names, with the properties
// the code relies on, and the emulator (what every local test runs against) declares them alike.
func checkServiceBus(f files) []string {
	var problems []string
	bad := func(file, format string, args ...any) {
		problems = append(problems, file+": "+fmt.Sprintf(format, args...))
	}
	settings, err := appSettings(f)
	if err != nil {
		return []string{err.Error()}
	}
	emu := servicebus.DefaultConfig()
	def := func(name string) string { s, _ := settingDefault(name); return s.Default }

	one := func(typ string) (resource, bool) {
		var rs []resource
		for _, r := range resources(f, typ) {
			if r.file == serviceBusBicep && !r.existing {
				rs = append(rs, r)
			}
		}
		if len(rs) != 1 {
			bad(serviceBusBicep, "want exactly one %s resource, found %d", typ, len(rs))
			return resource{}, false
		}
		return rs[0], true
	}
	// name checks that an entity's name is the code's default and the same param its setting uses.
	name := func(r resource, setting, want, emuName string) {
		expr, _ := prop(r.body, "name")
		got, origin, ok := resolve(f, r.file, expr)
		switch {
		case !ok:
			bad(r.file, "%s's name %q does not resolve to a literal through main.bicep's params", r.symbol, expr)
		case got != want:
			bad(r.file, "%s is named %q (%s), but the code's default is %q", r.symbol, got, origin, want)
		case emuName != want:
			bad(r.file, "%s: the emulator's DefaultConfig names it %q, the code %q; emulator/servicebusemu/config.go must follow", r.symbol, emuName, want)
		}
		if setting == "" {
			return
		}
		_, sOrigin, sOK := resolve(f, mainBicep, settings[setting])
		if ok && sOK && sOrigin != origin {
			bad(mainBicep, "app setting %s comes from %s but %s's name from %s; use one param for both", setting, sOrigin, r.symbol, origin)
		}
	}
	is := func(r resource, key, want string) {
		v, ok := prop(r.body, key)
		if !ok {
			v = "(absent)"
		}
		if v != want {
			bad(r.file, "%s.%s is %s, want %s", r.symbol, key, v, want)
		}
	}
	duration := func(r resource, key string, want time.Duration, why string) {
		v, ok := prop(r.body, key)
		lit, _ := literal(v)
		d, err := isoDuration(lit)
		switch {
		case !ok:
			bad(r.file, "%s.%s is absent, want %v (%s)", r.symbol, key, want, why)
		case err != nil:
			bad(r.file, "%s.%s: %v", r.symbol, key, err)
		case d != want:
			bad(r.file, "%s.%s is %s (%v), want %v (%s)", r.symbol, key, lit, d, want, why)
		}
	}
	emuDefaults := func(p servicebus.EntityProperties) servicebus.EntityProperties {
		if p.LockDuration <= 0 {
			p.LockDuration = servicebus.DefaultLockDuration
		}
		if p.MaxDeliveryCount <= 0 {
			p.MaxDeliveryCount = servicebus.DefaultMaxDeliveryCount
		}
		if p.RequiresDuplicateDetection && p.DuplicateDetectionHistoryTimeWindow <= 0 {
			p.DuplicateDetectionHistoryTimeWindow = servicebus.DefaultDuplicateWindow
		}
		return p
	}

	if q, ok := one("Microsoft.ServiceBus/namespaces/queues"); ok {
		var eq *servicebus.Queue
		for i := range emu.Queues {
			if emu.Queues[i].Name == def(config.EnvCommandQueue) {
				eq = &emu.Queues[i]
			}
		}
		if eq == nil {
			bad(serviceBusBicep, "the emulator's DefaultConfig has no queue %q (COMMAND_QUEUE's default)", def(config.EnvCommandQueue))
		} else {
			p := emuDefaults(eq.Properties)
			name(q, config.EnvCommandQueue, def(config.EnvCommandQueue), eq.Name)
			is(q, "requiresSession", strconv.FormatBool(p.RequiresSession))
			is(q, "requiresDuplicateDetection", strconv.FormatBool(p.RequiresDuplicateDetection))
			duration(q, "duplicateDetectionHistoryTimeWindow", p.DuplicateDetectionHistoryTimeWindow, "the emulator's window, which the tests run against")
			duration(q, "lockDuration", p.LockDuration, "the emulator's lock")
			if !p.RequiresSession {
				bad(serviceBusBicep, "the emulator's %s is not session-enabled; every command for a client must travel in its session", eq.Name)
			}
			// maxDeliveryCount: the queue, the handler's setting, the code and the emulator agree.
			expr, _ := prop(q.body, "maxDeliveryCount")
			got, origin, ok := resolve(f, q.file, expr)
			want := strconv.Itoa(registrar.Defaults.MaxDeliveryCount)
			switch {
			case !ok:
				bad(q.file, "%s.maxDeliveryCount %q does not resolve to a literal", q.symbol, expr)
			case got != want || def(config.EnvMaxDeliveryCount) != want || p.MaxDeliveryCount != registrar.Defaults.MaxDeliveryCount:
				bad(q.file, "%s.maxDeliveryCount is %s (%s); registrar.Defaults says %s, MAX_DELIVERY_COUNT's default %s, the emulator %d: they must be one number, or the last delivery never publishes \"failed\"", q.symbol, got, origin, want, def(config.EnvMaxDeliveryCount), p.MaxDeliveryCount)
			}
			if _, sOrigin, sOK := resolve(f, mainBicep, settings[config.EnvMaxDeliveryCount]); ok && (!sOK || sOrigin != origin) {
				bad(mainBicep, "app setting %s must come from the same param as %s.maxDeliveryCount (%s), e.g. string(maxDeliveryCount)", config.EnvMaxDeliveryCount, q.symbol, origin)
			}
		}
	}

	var et *servicebus.Topic
	for i := range emu.Topics {
		if emu.Topics[i].Name == def(config.EnvEventsTopic) {
			et = &emu.Topics[i]
		}
	}
	if et == nil {
		bad(serviceBusBicep, "the emulator's DefaultConfig has no topic %q (EVENTS_TOPIC's default)", def(config.EnvEventsTopic))
		return problems
	}
	tp := emuDefaults(et.Properties)
	if t, ok := one("Microsoft.ServiceBus/namespaces/topics"); ok {
		name(t, config.EnvEventsTopic, def(config.EnvEventsTopic), et.Name)
		is(t, "requiresDuplicateDetection", strconv.FormatBool(tp.RequiresDuplicateDetection))
		duration(t, "duplicateDetectionHistoryTimeWindow", tp.DuplicateDetectionHistoryTimeWindow, "the scheduler announces dead letters again and relies on this window to deliver each once")
		duration(t, "defaultMessageTimeToLive", tp.DefaultMessageTimeToLive, "readers only peek, so events must age out")
		if registrar.Defaults.DeadLetterLookback >= tp.DuplicateDetectionHistoryTimeWindow {
			bad(serviceBusBicep, "registrar.Defaults.DeadLetterLookback (%v) must stay inside the events topic's duplicate window (%v)", registrar.Defaults.DeadLetterLookback, tp.DuplicateDetectionHistoryTimeWindow)
		}
	}
	if s, ok := one("Microsoft.ServiceBus/namespaces/topics/subscriptions"); ok {
		if len(et.Subscriptions) != 1 {
			bad(serviceBusBicep, "the emulator's topic %s has %d subscriptions, want the one the CLI peeks", et.Name, len(et.Subscriptions))
		} else {
			es := et.Subscriptions[0]
			sp := emuDefaults(es.Properties)
			name(s, "", es.Name, es.Name)
			duration(s, "defaultMessageTimeToLive", sp.DefaultMessageTimeToLive, "the emulator's subscription TTL")
			if v, ok := prop(s.body, "requiresSession"); (ok && v != strconv.FormatBool(sp.RequiresSession)) || (!ok && sp.RequiresSession) {
				bad(s.file, "%s.requiresSession is %s, the emulator's is %v; events carry no SessionId", s.symbol, v, sp.RequiresSession)
			}
		}
	}
	return problems
}

// checkIDs: every GUID in infra/ (and the Graph grant script) is named, by a comment or its key,
// and is the documented id for that name; the runbook uses documented ids only.
func checkIDs(f files) []string {
	var problems []string
	for _, file := range sortedKeys(f) {
		isBicep, isScript := strings.HasSuffix(file, ".bicep"), strings.HasSuffix(file, ".sh")
		if !isBicep && !isScript && file != runbook {
			continue
		}
		inRunbook := false
		for n, line := range strings.Split(f[file], "\n") {
			if file == runbook && strings.HasPrefix(line, "## ") {
				// The README's examples hold made-up request ids; only its deploy section is the runbook.
				inRunbook = strings.HasPrefix(line, "## Deploying to Azure")
			}
			ids := guidRE.FindAllString(line, -1)
			if len(ids) == 0 || (file == runbook && !inRunbook) {
				continue
			}
			where := fmt.Sprintf("%s:%d", file, n+1)
			if file == runbook {
				for _, id := range ids {
					if !slices.Contains(mapValues(documentedIDs), strings.ToLower(id)) {
						problems = append(problems, fmt.Sprintf("%s: %s is no documented role or Graph id; use a <placeholder> for ids that differ per tenant", where, id))
					}
				}
				continue
			}
			if len(ids) > 1 {
				problems = append(problems, fmt.Sprintf("%s: one id per line, so its name is unambiguous", where))
				continue
			}
			code, comment := line, ""
			marker := "//"
			if isScript {
				marker = " #"
			}
			if i := strings.Index(line, marker); i >= 0 && !strings.Contains(line[:i], "https:") {
				code, comment = line[:i], strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(line[i:], " #"), "//"))
			}
			var key string
			if m := regexp.MustCompile(`^\s*(?:var\s+)?('[^']*'|[A-Za-z_]\w*)\s*[:=]`).FindStringSubmatch(code); m != nil {
				key = m[1]
			}
			name := comment
			if strings.HasPrefix(key, "'") {
				if name != "" && name != strings.Trim(key, "'") {
					problems = append(problems, fmt.Sprintf("%s: key %s and comment %q name different roles", where, key, comment))
				}
				name = strings.Trim(key, "'")
			}
			want, known := documentedIDs[name]
			switch {
			case name == "":
				problems = append(problems, fmt.Sprintf("%s: %s has no name; end the line with `%s <role name>` as documented in infra/drift_test.go", where, ids[0], strings.TrimSpace(marker)))
			case !known:
				problems = append(problems, fmt.Sprintf("%s: %q is not a documented role or Graph id name (documentedIDs in infra/drift_test.go); name it exactly as Microsoft does", where, name))
			case !strings.EqualFold(ids[0], want):
				problems = append(problems, fmt.Sprintf("%s: %s is not %s; the documented id is %s", where, ids[0], name, want))
			case key != "" && !strings.HasPrefix(key, "'") && !namesAgree(key, name):
				problems = append(problems, fmt.Sprintf("%s: %s holds the id of %s; rename one of them so they say the same thing", where, key, name))
			}
		}
	}
	// The code's own table of FHIR roles is the same.
	for name, id := range registrar.FHIRRoles {
		if documentedIDs[name] != id {
			problems = append(problems, fmt.Sprintf("internal/registrar/access.go: FHIRRoles[%q] = %s, but the documented id is %s", name, id, documentedIDs[name]))
		}
	}
	return problems
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, strings.ToLower(v))
	}
	return out
}

// namesAgree: a variable such as serviceBusDataSender or OWNED_BY names (part of) the role it
// holds, ignoring case, punctuation and a trailing Id.
func namesAgree(key, name string) bool {
	norm := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, strings.ToLower(s))
	}
	k := strings.TrimSuffix(strings.TrimSuffix(norm(key), "roleid"), "id")
	return k != "" && strings.Contains(norm(name), k)
}

// checkRoleAssignments: each is named guid(scope, principal, role) from its own scope, principal
// and role, names its principalType, and the managed identity's are ServicePrincipal.
func checkRoleAssignments(f files) []string {
	var problems []string
	nameRE := regexp.MustCompile(`^guid\((\w+)\.id,\s*(\w+),\s*([\w.]+)\)$`)
	roleRE := regexp.MustCompile(`^subscriptionResourceId\('Microsoft\.Authorization/roleDefinitions',\s*([\w.]+)\)$`)
	rs := resources(f, "Microsoft.Authorization/roleAssignments")
	if len(rs) == 0 {
		return []string{"infra/: no role assignments found"}
	}
	for _, r := range rs {
		where := r.file + ": role assignment " + r.symbol
		get := func(key string) string { v, _ := prop(r.body, key); return v }
		n := nameRE.FindStringSubmatch(get("name"))
		role := roleRE.FindStringSubmatch(get("roleDefinitionId"))
		switch {
		case n == nil:
			problems = append(problems, fmt.Sprintf("%s: name %q is not guid(<scope>.id, <principal>, <role id>)", where, get("name")))
		case role == nil:
			problems = append(problems, fmt.Sprintf("%s: roleDefinitionId %q is not subscriptionResourceId('Microsoft.Authorization/roleDefinitions', <role id>)", where, get("roleDefinitionId")))
		case n[1] != get("scope") || n[2] != get("principalId") || n[3] != role[1]:
			problems = append(problems, fmt.Sprintf("%s: name guid(%s.id, %s, %s) must be built from its own scope (%s), principalId (%s) and role (%s)", where, n[1], n[2], n[3], get("scope"), get("principalId"), role[1]))
		}
		pt := get("principalType")
		switch {
		case pt == "":
			problems = append(problems, fmt.Sprintf("%s: principalType is missing; ARM then looks the principal up and fails while a new identity replicates", where))
		case get("principalId") == "principalId" && pt != "'ServicePrincipal'":
			problems = append(problems, fmt.Sprintf("%s: the managed identity's principalType is %s, want 'ServicePrincipal'", where, pt))
		}
	}
	return problems
}

// checkFHIRDelegation: the RBAC Administrator assignment carries the documented ABAC condition,
// over the same roles the handler allows.
func checkFHIRDelegation(f files) []string {
	var problems []string
	text := f[fhirBicep]
	for _, want := range []string{
		`ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'}`,
		`ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'}`,
		`@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals`,
		`@Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'}`,
		`@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals`,
		`@Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'}`,
		`conditionVersion: '2.0'`,
	} {
		if !strings.Contains(text, want) {
			problems = append(problems, fmt.Sprintf("%s: the ABAC condition lacks %s (fhir-access.md §1.5: both the write and the delete sub-condition, each on role and principal type)", fhirBicep, want))
		}
	}
	// Its role map is the code's.
	i := strings.Index(text, "var fhirRoleIds = {")
	if i < 0 {
		return append(problems, fmt.Sprintf("%s: no `var fhirRoleIds = {…}` map of FHIR role names to ids", fhirBicep))
	}
	got := map[string]string{}
	for _, e := range entries(block(text, i+len("var fhirRoleIds = {")-1)) {
		v, _ := literal(e[1])
		got[e[0]] = v
	}
	for name, id := range registrar.FHIRRoles {
		if got[name] != id {
			problems = append(problems, fmt.Sprintf("%s: fhirRoleIds[%q] is %q, want %s (internal/registrar.FHIRRoles)", fhirBicep, name, got[name], id))
		}
	}
	// The allowed roles: main.bicep's default is registrar.Defaults, and the same param feeds both
	// FHIR_ALLOWED_ROLES and the condition.
	main := f[mainBicep]
	m := regexp.MustCompile(`(?s)param fhirAllowedRoles array = \[(.*?)\]`).FindStringSubmatch(main)
	if m == nil {
		return append(problems, fmt.Sprintf("%s: no `param fhirAllowedRoles array = [...]`", mainBicep))
	}
	var defaults []string
	for _, q := range regexp.MustCompile(`'([^']*)'`).FindAllStringSubmatch(m[1], -1) {
		defaults = append(defaults, q[1])
	}
	if !slices.Equal(defaults, registrar.Defaults.FHIR.Roles) {
		problems = append(problems, fmt.Sprintf("%s: fhirAllowedRoles defaults to %q, but registrar.Defaults.FHIR.Roles (FHIR_ALLOWED_ROLES's default) is %q", mainBicep, defaults, registrar.Defaults.FHIR.Roles))
	}
	settings, err := appSettings(f)
	if err != nil {
		return append(problems, err.Error())
	}
	if settings[config.EnvFHIRAllowedRoles] != "join(fhirAllowedRoles, ',')" {
		problems = append(problems, fmt.Sprintf("%s: app setting %s is %q; write join(fhirAllowedRoles, ',') so the handler allows exactly what the condition allows", mainBicep, config.EnvFHIRAllowedRoles, settings[config.EnvFHIRAllowedRoles]))
	}
	if !regexp.MustCompile(`(?m)^\s*allowedRoles:\s*fhirAllowedRoles\s*$`).MatchString(main) {
		problems = append(problems, fmt.Sprintf("%s: the fhirDelegation module must get allowedRoles: fhirAllowedRoles", mainBicep))
	}
	for _, s := range []string{config.EnvFHIRServices, config.EnvFHIRDefaultService} {
		if settings[s] != "fhirServiceId" {
			problems = append(problems, fmt.Sprintf("%s: app setting %s is %q; it must be fhirServiceId, the service the delegation is made on", mainBicep, s, settings[s]))
		}
	}
	return problems
}

// checkParameters: main.parameters.json only sets params main.bicep has.
func checkParameters(f files) []string {
	var p struct{ Parameters map[string]json.RawMessage }
	const file = "infra/main.parameters.json"
	if err := json.Unmarshal([]byte(f[file]), &p); err != nil {
		return []string{fmt.Sprintf("%s: %v", file, err)}
	}
	var problems []string
	for _, name := range sortedKeys(p.Parameters) {
		if !regexp.MustCompile(`(?m)^param\s+` + name + `\s`).MatchString(f[mainBicep]) {
			problems = append(problems, fmt.Sprintf("%s: sets %s, which %s does not declare", file, name, mainBicep))
		}
	}
	return problems
}

// checkModules stands in for the compiler on the templates' own modules: each call passes only
// params the module declares, every param without a default, and reads only outputs it has.
func checkModules(f files) []string {
	var problems []string
	for _, caller := range sortedKeys(f) {
		text := f[caller]
		for _, m := range moduleRE.FindAllStringSubmatchIndex(text, -1) {
			symbol, ref := text[m[2]:m[3]], text[m[4]:m[5]]
			if strings.Contains(ref, ":") { // a registry module (br/public:…); its own tests cover it
				continue
			}
			file := path.Join(path.Dir(caller), ref)
			mod, ok := f[file]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: module %s refers to %s, which does not exist", caller, symbol, file))
				continue
			}
			body := block(text, m[1]-1)
			i := strings.Index(body, "params: {")
			passed := map[string]bool{}
			if i >= 0 {
				for _, e := range regexp.MustCompile(`(?m)^    (\w+):`).FindAllStringSubmatch(block(body, i+len("params: {")-1), -1) {
					passed[e[1]] = true
				}
			}
			declared := map[string]bool{}
			for _, p := range regexp.MustCompile(`(?m)^param\s+(\w+)\s+\w+(\s*=)?`).FindAllStringSubmatch(mod, -1) {
				declared[p[1]] = true
				if p[2] == "" && !passed[p[1]] {
					problems = append(problems, fmt.Sprintf("%s: module %s does not pass %s, which %s requires", caller, symbol, p[1], file))
				}
			}
			for _, name := range sortedKeys(passed) {
				if !declared[name] {
					problems = append(problems, fmt.Sprintf("%s: module %s passes %s, which %s does not declare", caller, symbol, name, file))
				}
			}
			for _, o := range regexp.MustCompile(`\b`+symbol+`\.\??outputs\.(\w+)`).FindAllStringSubmatch(text, -1) {
				if !regexp.MustCompile(`(?m)^output\s+` + o[1] + `\s`).MatchString(mod) {
					problems = append(problems, fmt.Sprintf("%s: reads %s.outputs.%s, which %s does not declare", caller, symbol, o[1], file))
				}
			}
		}
	}
	return problems
}

var checks = map[string]func(files) []string{
	"app settings":     checkAppSettings,
	"example settings": checkExample,
	"service bus":      checkServiceBus,
	"ids":              checkIDs,
	"role assignments": checkRoleAssignments,
	"fhir delegation":  checkFHIRDelegation,
	"parameters":       checkParameters,
	"modules":          checkModules,
}

// --- the tests --------------------------------------------------------------------------------

func TestInfraAgreesWithTheCode(t *testing.T) {
	f := load(t)
	for _, name := range sortedKeys(checks) {
		t.Run(name, func(t *testing.T) {
			for _, p := range checks[name](f) {
				t.Error(p)
			}
		})
	}
}

// deleteLine returns text without the first line that matches re.
func deleteLine(t *testing.T, text, re string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	rx := regexp.MustCompile(re)
	for i, l := range lines {
		if rx.MatchString(l) {
			return strings.Join(append(lines[:i:i], lines[i+1:]...), "\n")
		}
	}
	t.Fatalf("no line matches %s", re)
	return ""
}

func replaceOnce(t *testing.T, text, old, new string) string {
	t.Helper()
	if !strings.Contains(text, old) {
		t.Fatalf("%q not found", old)
	}
	return strings.Replace(text, old, new, 1)
}

func reported(problems []string, all ...string) bool {
	for _, p := range problems {
		ok := true
		for _, s := range all {
			ok = ok && strings.Contains(p, s)
		}
		if ok {
			return true
		}
	}
	return false
}

// The checks are only worth something if they notice: removing any setting the app needs from a
// copy of main.bicep must be reported, naming the file, the setting and what to do.
func TestDriftCheckReportsARemovedSetting(t *testing.T) {
	f := load(t)
	settings, err := appSettings(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(checkAppSettings(f)) != 0 {
		t.Skip("the real main.bicep already fails; TestInfraAgreesWithTheCode says why")
	}
	for _, name := range sortedKeys(settings) {
		t.Run(name, func(t *testing.T) {
			broken := f.clone()
			broken[mainBicep] = deleteLine(t, f[mainBicep], `^\s+`+regexp.QuoteMeta(name)+`:`)
			problems := append(checkAppSettings(broken), checkExample(broken)...)
			if !reported(problems, mainBicep, "app setting "+name+" is missing", "Add `"+name+":") &&
				!reported(problems, mainBicep, "sets "+name+", but var appSettings does not") {
				t.Errorf("deleting %s from %s went unnoticed; the checks said:\n%s", name, mainBicep, strings.Join(problems, "\n"))
			}
		})
	}
	// The ones the app cannot start without, spelled out, so the loop above cannot pass vacuously.
	for _, name := range []string{"KEY_VAULT_URL", "AZURE_TENANT_ID", "COMMAND_QUEUE", "ROTATION_SCHEDULE", "EVENTS_TOPIC", "ServiceBusConnection__fullyQualifiedNamespace", "ServiceBusConnection__clientId", "AzureWebJobsStorage__accountName"} {
		broken := f.clone()
		broken[mainBicep] = deleteLine(t, f[mainBicep], `^\s+`+name+`:`)
		if p := checkAppSettings(broken); !reported(p, mainBicep, "app setting "+name+" is missing") {
			t.Errorf("deleting %s went unnoticed: %q", name, p)
		}
	}
}

// Each other check notices the drift it exists for.
func TestDriftCheckReportsChangedInfra(t *testing.T) {
	f := load(t)
	for _, name := range sortedKeys(checks) {
		if p := checks[name](f); len(p) != 0 {
			t.Skipf("the real infra already fails check %q; TestInfraAgreesWithTheCode says why", name)
		}
	}
	type edit struct {
		file, old, new string
	}
	cases := []struct {
		name  string
		edits []edit
		check func(files) []string
		want  []string
	}{
		{"the queue loses sessions", []edit{{serviceBusBicep, "requiresSession: true", "requiresSession: false"}}, checkServiceBus,
			[]string{serviceBusBicep, "commandQueue.requiresSession is false, want true"}},
		{"maxDeliveryCount moves away from the code", []edit{{mainBicep, "param maxDeliveryCount int = 10", "param maxDeliveryCount int = 5"}}, checkServiceBus,
			[]string{"maxDeliveryCount is 5", "one number"}},
		{"the queue's maxDeliveryCount stops following the setting", []edit{{serviceBusBicep, "maxDeliveryCount: maxDeliveryCount", "maxDeliveryCount: 10"}}, checkServiceBus,
			[]string{mainBicep, "MAX_DELIVERY_COUNT must come from the same param"}},
		{"the queue is renamed", []edit{{mainBicep, "param commandQueueName string = 'app-commands'", "param commandQueueName string = 'commands'"}}, checkServiceBus,
			[]string{"named \"commands\"", "\"app-commands\""}},
		{"COMMAND_QUEUE is written out separately", []edit{{mainBicep, "COMMAND_QUEUE: commandQueueName", "COMMAND_QUEUE: 'app-commands'"}}, checkServiceBus,
			[]string{"app setting COMMAND_QUEUE comes from"}},
		{"the events topic's duplicate window shrinks", []edit{{serviceBusBicep, "duplicateDetectionHistoryTimeWindow: 'P1D'", "duplicateDetectionHistoryTimeWindow: 'PT10M'"}}, checkServiceBus,
			[]string{"eventsTopic.duplicateDetectionHistoryTimeWindow is PT10M", "24h0m0s"}},
		{"the events topic loses its TTL", []edit{{serviceBusBicep, "    defaultMessageTimeToLive: 'P7D'\n  }\n}\n\n// The subscription", "  }\n}\n\n// The subscription"}}, checkServiceBus,
			[]string{"eventsTopic.defaultMessageTimeToLive is absent"}},
		{"a role GUID is swapped", []edit{{"infra/app/rbac.bicep", "serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39' // Azure Service Bus Data Sender", "serviceBusDataSender: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0' // Azure Service Bus Data Sender"}}, checkIDs,
			[]string{"infra/app/rbac.bicep:", "is not Azure Service Bus Data Sender"}},
		{"a role is relabelled but its variable is not", []edit{{"infra/app/rbac.bicep", "serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39' // Azure Service Bus Data Sender", "serviceBusDataSender: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0' // Azure Service Bus Data Receiver"}}, checkIDs,
			[]string{"serviceBusDataSender holds the id of Azure Service Bus Data Receiver"}},
		{"a FHIR role id is mistyped", []edit{{fhirBicep, "'FHIR Data Reader': '4c8d0bbc-75d3-4935-991f-5f3c56d81508'", "'FHIR Data Reader': '4c8d0bbc-75d3-4935-991f-5f3c56d81509'"}}, checkIDs,
			[]string{fhirBicep, "is not FHIR Data Reader"}},
		{"the Graph app role is mistyped", []edit{{"infra/graph/main.bicep", "'18a4783c-866b-4cc7-a460-3d5e5662c884'", "'1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9'"}}, checkIDs,
			[]string{"infra/graph/main.bicep", "is not Application.ReadWrite.OwnedBy"}},
		{"the runbook names a made-up id", []edit{{runbook, "### 3. Grant the Microsoft Graph permission", "Use role 11111111-2222-3333-4444-555555555555.\n\n### 3. Grant the Microsoft Graph permission"}}, checkIDs,
			[]string{"README.md:", "11111111-2222-3333-4444-555555555555 is no documented role"}},
		{"an unnamed GUID appears", []edit{{"infra/app/rbac.bicep", "// Built-in role definition ids", "var stray = '11111111-2222-3333-4444-555555555555'\n// Built-in role definition ids"}}, checkIDs,
			[]string{"has no name"}},
		{"a role assignment's name stops matching its scope", []edit{{"infra/app/rbac.bicep", "name: guid(eventsTopic.id, principalId, roleIds.serviceBusDataSender)", "name: guid(commandQueue.id, principalId, roleIds.serviceBusDataSender)"}}, checkRoleAssignments,
			[]string{"topicSender", "must be built from its own scope (eventsTopic)"}},
		{"a role assignment loses principalType", []edit{{"infra/app/rbac.bicep", "    principalType: 'ServicePrincipal'\n    description: 'appreg publishes outcome events'", "    description: 'appreg publishes outcome events'"}}, checkRoleAssignments,
			[]string{"topicSender", "principalType is missing"}},
		{"the ABAC condition loses its delete rule", []edit{{fhirBicep, "@Resource[Microsoft.Authorization/roleAssignments:PrincipalType]", "@Resource[Microsoft.Authorization/roleAssignments:Principal]"}}, checkFHIRDelegation,
			[]string{fhirBicep, "@Resource[Microsoft.Authorization/roleAssignments:PrincipalType]"}},
		{"the allowed roles drift from the handler's", []edit{{mainBicep, "FHIR_ALLOWED_ROLES: join(fhirAllowedRoles, ',')", "FHIR_ALLOWED_ROLES: 'FHIR Data Reader'"}}, checkFHIRDelegation,
			[]string{"app setting FHIR_ALLOWED_ROLES"}},
		{"a default moves in the infra only", []edit{{mainBicep, "RETRY_BUDGET: '30m'", "RETRY_BUDGET: '45m'"}}, checkAppSettings,
			[]string{"app setting RETRY_BUDGET is \"45m\"", "\"30m\""}},
		{"a setting Flex refuses is added", []edit{{mainBicep, "  LOG_LEVEL: 'info'\n", "  LOG_LEVEL: 'info'\n  FUNCTIONS_WORKER_RUNTIME: 'custom'\n"}}, checkAppSettings,
			[]string{"FUNCTIONS_WORKER_RUNTIME must not be set in Azure"}},
		{"a connection string creeps in", []edit{{mainBicep, "  LOG_LEVEL: 'info'\n", "  LOG_LEVEL: 'info'\n  ServiceBusConnection: 'x'\n"}}, checkAppSettings,
			[]string{"ServiceBusConnection must not be set in Azure"}},
		{"a module param is renamed on one side", []edit{{serviceBusBicep, "param eventsSubscriptionName string", "param subscriptionName string"}}, checkModules,
			[]string{"module serviceBus passes eventsSubscriptionName, which infra/app/servicebus.bicep does not declare"}},
		{"main.parameters.json sets a param main.bicep lacks", []edit{{"infra/main.parameters.json", `"fhirServiceId"`, `"fhirService"`}}, checkParameters,
			[]string{"sets fhirService, which"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			broken := f.clone()
			for _, e := range tc.edits {
				broken[e.file] = replaceOnce(t, broken[e.file], e.old, e.new)
			}
			if p := tc.check(broken); !reported(p, tc.want...) {
				t.Errorf("went unnoticed; want a finding with %q, got:\n%s", tc.want, strings.Join(p, "\n"))
			}
		})
	}
}

// A new %SETTING% in a function.json is a setting the infra must then provide.
func TestDriftCheckFollowsFunctionJSON(t *testing.T) {
	f := load(t)
	broken := f.clone()
	broken["functions/ClientCommand/function.json"] = replaceOnce(t, f["functions/ClientCommand/function.json"], `"%COMMAND_QUEUE%"`, `"%SOME_NEW_QUEUE%"`)
	if p := checkAppSettings(broken); !reported(p, "app setting SOME_NEW_QUEUE is missing", "functions/ClientCommand/function.json names %SOME_NEW_QUEUE%") {
		t.Errorf("a new binding expression went unnoticed: %q", p)
	}
}
