package funchost

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"appreg/emulator/funchost/ncrontab"
)

const (
	sbFunction = `{
  "bindings": [{
    "name": "msg", "type": "serviceBusTrigger", "direction": "in",
    "queueName": "%REGISTRATION_QUEUE%", "connection": "ServiceBusConnection"
  }]
}`
	timerFunction = `{
  "bindings": [{"name": "timer", "type": "timerTrigger", "direction": "in", "schedule": "%ROTATION_SCHEDULE%"}]
}`
	testConnectionString = "Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=c2VjcmV0LWtleQ==;UseDevelopmentEmulator=true"
)

// stage writes an app with an executable "handler" and the given files
// (paths relative to the app root) and returns its directory.
func stage(tb testing.TB, files map[string]string) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "handler"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		tb.Fatal(err)
	}
	for name, content := range files {
		writeFile(tb, filepath.Join(dir, name), content)
	}
	return dir
}

func baseSettings() map[string]string {
	return map[string]string{
		"REGISTRATION_QUEUE":   "app-registrations",
		"ROTATION_SCHEDULE":    "0 0 */6 * * *",
		"ServiceBusConnection": testConnectionString,
		"HANDLER_MODE":         "serve",
	}
}

func TestLoadGoodApp(t *testing.T) {
	dir := stage(t, map[string]string{
		"host.json": `{
  // Core Tools writes comments; Json.NET reads them.
  "version": "2.0",
  "functionTimeout": "00:10:00",
  "logging": {"logLevel": {"default": "Information"}},
  "extensionBundle": {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"},
  "customHandler": {
    "description": {
      "defaultExecutablePath": "handler",
      "workingDirectory": "work",
      "arguments": ["--mode", "%HANDLER_MODE%", "plain"],
    },
    "enableForwardingHttpRequest": false
  },
  "extensions": {"serviceBus": {
    "maxConcurrentCalls": 4, "maxAutoLockRenewalDuration": "00:02:30",
    "prefetchCount": 0, "autoCompleteMessages": true, "clientRetryOptions": {"mode": "exponential"}
  }},
}`,
		"work/.keep":                      "",
		"RegisterApp/function.json":       sbFunction,
		"ScheduleRotations/function.json": timerFunction,
		"Events/function.json": `{"bindings": [{"name": "ev", "type": "ServiceBusTrigger",
			"topicName": "app-registration-events", "subscriptionName": "audit",
			"connection": "IdentityConn", "dataType": "binary", "cardinality": "one"}]}`,
		"Fast/function.json":         `{"bindings": [{"name": "t", "type": "timerTrigger", "schedule": "*/10 * * * * *", "runOnStartup": true}]}`,
		"Off/function.json":          `{"disabled": true, "bindings": [{"name": "t", "type": "timerTrigger", "schedule": "0 0 0 * * *"}]}`,
		"OffBySetting/function.json": timerFunction,
		"not-a-function/readme.txt":  "folders without function.json are ignored",
	})
	settings := baseSettings()
	settings["IdentityConn__fullyQualifiedNamespace"] = "contoso.servicebus.windows.net"
	settings["IdentityConn__clientId"] = "11111111-2222-3333-4444-555555555555"
	settings["AzureWebJobs.OffBySetting.Disabled"] = "true"

	app, err := Load(dir, settings)
	if err != nil {
		t.Fatal(err)
	}
	wantHost := HostConfig{
		ExecutablePath:   filepath.Join(dir, "handler"),
		WorkingDirectory: filepath.Join(dir, "work"),
		Arguments:        []string{"--mode", "serve", "plain"},
		FunctionTimeout:  10 * time.Minute,
		ServiceBus: ServiceBusOptions{MaxConcurrentCalls: 4, MaxAutoLockRenewalDuration: 150 * time.Second,
			MaxConcurrentSessions: DefaultMaxConcurrentSessions, SessionIdleTimeout: DefaultSessionIdleTimeout},
	}
	if diff := cmp.Diff(wantHost, app.Host); diff != "" {
		t.Errorf("Host (-want +got):\n%s", diff)
	}
	wantFns := []*Function{
		{Name: "Events", Dir: filepath.Join(dir, "Events"), ServiceBus: &ServiceBusTrigger{
			BindingName: "ev", TopicName: "app-registration-events", SubscriptionName: "audit", Binary: true,
			Connection: Connection{Name: "IdentityConn", FullyQualifiedNamespace: "contoso.servicebus.windows.net",
				ClientID: "11111111-2222-3333-4444-555555555555"},
		}},
		{Name: "Fast", Dir: filepath.Join(dir, "Fast"), Timer: &TimerTrigger{
			BindingName: "t", Schedule: ncrontab.MustParse("*/10 * * * * *"), RunOnStartup: true, UseMonitor: false,
		}},
		{Name: "RegisterApp", Dir: filepath.Join(dir, "RegisterApp"), ServiceBus: &ServiceBusTrigger{
			BindingName: "msg", QueueName: "app-registrations",
			Connection: Connection{Name: "ServiceBusConnection", Endpoint: "127.0.0.1:5672", connectionString: testConnectionString},
		}},
		{Name: "ScheduleRotations", Dir: filepath.Join(dir, "ScheduleRotations"), Timer: &TimerTrigger{
			BindingName: "timer", Schedule: ncrontab.MustParse("0 0 */6 * * *"), UseMonitor: true,
		}},
	}
	opts := cmp.Options{
		cmp.AllowUnexported(Connection{}),
		cmp.Comparer(func(a, b *ncrontab.Schedule) bool { return a.String() == b.String() }),
	}
	if diff := cmp.Diff(wantFns, app.Functions, opts); diff != "" {
		t.Errorf("Functions (-want +got):\n%s", diff)
	}
	if len(app.Warnings) != 2 {
		t.Errorf("Warnings = %q, want the two disabled functions", app.Warnings)
	}
}

func TestLoadDefaults(t *testing.T) {
	dir := stage(t, map[string]string{
		"host.json":              `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "handler"}}}`,
		"F/function.json":        `{"bindings": [{"name": "m", "type": "serviceBusTrigger", "queueName": "q"}]}`,
		"Timer/function.json":    `{"bindings": [{"name": "t", "type": "timerTrigger", "schedule": "0 * * * * *", "useMonitor": false}]}`,
		"Identity/function.json": `{"bindings": [{"name": "m", "type": "serviceBusTrigger", "queueName": "q", "connection": "Sb"}]}`,
	})
	app, err := Load(dir, map[string]string{
		"AzureWebJobsServiceBus":     testConnectionString,
		"Sb:fullyQualifiedNamespace": "contoso.servicebus.windows.net", // the local.settings.json spelling
		"Sb__credential":             "managedidentity",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := HostConfig{
		ExecutablePath:   filepath.Join(dir, "handler"),
		WorkingDirectory: dir,
		FunctionTimeout:  DefaultFunctionTimeout,
		ServiceBus: ServiceBusOptions{MaxConcurrentCalls: 16, MaxAutoLockRenewalDuration: 5 * time.Minute,
			MaxConcurrentSessions: 8, SessionIdleTimeout: time.Minute},
	}
	if diff := cmp.Diff(want, app.Host); diff != "" {
		t.Errorf("Host (-want +got):\n%s", diff)
	}
	if got := app.Functions[0].ServiceBus.Connection; got.Name != DefaultConnection || got.Endpoint != "127.0.0.1:5672" {
		t.Errorf("default connection = %v", got)
	}
	if got := app.Functions[1].ServiceBus.Connection; got.FullyQualifiedNamespace != "contoso.servicebus.windows.net" || got.Credential != "managedidentity" {
		t.Errorf("identity connection = %+v", got)
	}
	if app.Functions[2].Timer.UseMonitor {
		t.Error("useMonitor: false was not honoured")
	}
}

func TestLoadUnboundedTimeout(t *testing.T) {
	dir := stage(t, map[string]string{
		"host.json":       `{"version": "2.0", "functionTimeout": "-1", "customHandler": {"description": {"defaultExecutablePath": "handler"}}}`,
		"T/function.json": timerFunction,
	})
	app, err := Load(dir, baseSettings())
	if err != nil {
		t.Fatal(err)
	}
	if app.Host.FunctionTimeout != 0 {
		t.Errorf("FunctionTimeout = %s, want 0 (unbounded)", app.Host.FunctionTimeout)
	}
}

func TestLoadErrors(t *testing.T) {
	const okHost = `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "handler"}}}`
	host := func(extra string) string {
		return `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "handler"}}, ` + extra + `}`
	}
	fn := func(binding string) string { return `{"bindings": [` + binding + `]}` }
	tests := []struct {
		name  string
		files map[string]string
		want  []string // every one must appear in the error
	}{
		{"NoHostJSON", map[string]string{"F/function.json": timerFunction},
			[]string{"host.json:", "no such file"}},
		{"BadJSON", map[string]string{"host.json": "{\n\"version\": \"2.0\",\n oops\n}", "F/function.json": timerFunction},
			[]string{"host.json: line 3"}},
		{"NoVersion", map[string]string{"host.json": `{"customHandler": {"description": {"defaultExecutablePath": "handler"}}}`, "F/function.json": timerFunction},
			[]string{`host.json: version: missing; want "2.0"`}},
		{"OldVersion", map[string]string{"host.json": `{"version": "1.0", "customHandler": {"description": {"defaultExecutablePath": "handler"}}}`, "F/function.json": timerFunction},
			[]string{`version: "1.0" is not supported`}},
		{"NoCustomHandler", map[string]string{"host.json": `{"version": "2.0"}`, "F/function.json": timerFunction},
			[]string{"customHandler: missing"}},
		{"NoExecutable", map[string]string{"host.json": `{"version": "2.0", "customHandler": {"description": {}}}`, "F/function.json": timerFunction},
			[]string{"customHandler.description.defaultExecutablePath: missing"}},
		{"ExecutableNotFound", map[string]string{"host.json": `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "bin/nothere"}}}`, "F/function.json": timerFunction},
			[]string{`defaultExecutablePath: "bin/nothere" not found`}},
		{"ExecutableNotExecutable", map[string]string{"host.json": `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "F/function.json"}}}`, "F/function.json": timerFunction},
			[]string{"is not executable"}},
		{"WorkingDirectoryMissing", map[string]string{"host.json": `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "handler", "workingDirectory": "nope"}}}`, "F/function.json": timerFunction},
			[]string{`customHandler.description.workingDirectory: "nope" is not a directory`}},
		{"ArgumentSettingMissing", map[string]string{"host.json": `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "handler", "arguments": ["%NOPE%"]}}}`, "F/function.json": timerFunction},
			[]string{"customHandler.description.arguments[0]: app setting NOPE (referenced as %NOPE%) is not set"}},
		{"BadPort", map[string]string{"host.json": `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "handler"}, "port": 70000}}`, "F/function.json": timerFunction},
			[]string{"customHandler.port: 70000 is not a TCP port"}},
		{"FunctionTimeoutText", map[string]string{"host.json": host(`"functionTimeout": "5 minutes"`), "F/function.json": timerFunction},
			[]string{`functionTimeout: "5 minutes" is not a TimeSpan`}},
		{"FunctionTimeoutNumber", map[string]string{"host.json": host(`"functionTimeout": 300`), "F/function.json": timerFunction},
			[]string{"functionTimeout: must be a string"}},
		{"FunctionTimeoutZero", map[string]string{"host.json": host(`"functionTimeout": "00:00:00"`), "F/function.json": timerFunction},
			[]string{"functionTimeout: \"00:00:00\" must be positive"}},
		{"MaxConcurrentCallsZero", map[string]string{"host.json": host(`"extensions": {"serviceBus": {"maxConcurrentCalls": 0}}`), "F/function.json": timerFunction},
			[]string{"extensions.serviceBus.maxConcurrentCalls: 0 must be at least 1"}},
		{"MaxConcurrentCallsString", map[string]string{"host.json": host(`"extensions": {"serviceBus": {"maxConcurrentCalls": "16"}}`), "F/function.json": timerFunction},
			[]string{"host.json: extensions.serviceBus.maxConcurrentCalls: must be a whole number"}},
		{"LockRenewalBad", map[string]string{"host.json": host(`"extensions": {"serviceBus": {"maxAutoLockRenewalDuration": "5m"}}`), "F/function.json": timerFunction},
			[]string{`extensions.serviceBus.maxAutoLockRenewalDuration: "5m" is not a TimeSpan`}},
		{"AutoCompleteOff", map[string]string{"host.json": host(`"extensions": {"serviceBus": {"autoCompleteMessages": false}}`), "F/function.json": timerFunction},
			[]string{"extensions.serviceBus.autoCompleteMessages: false is not supported"}},
		{"PrefetchNegative", map[string]string{"host.json": host(`"extensions": {"serviceBus": {"prefetchCount": -1}}`), "F/function.json": timerFunction},
			[]string{"extensions.serviceBus.prefetchCount: -1 must not be negative"}},
		{"NoFunctions", map[string]string{"host.json": okHost},
			[]string{"no functions found"}},
		{"FunctionBadJSON", map[string]string{"host.json": okHost, "F/function.json": `{"bindings": [}`},
			[]string{filepath.Join("F", "function.json") + ": line 1"}},
		{"FunctionBadName", map[string]string{"host.json": okHost, "1F/function.json": timerFunction},
			[]string{`folder name "1F" is not a valid function name`}},
		{"NoBindings", map[string]string{"host.json": okHost, "F/function.json": `{}`},
			[]string{"F/function.json: bindings: missing"}},
		{"NoTrigger", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "out", "type": "serviceBus", "direction": "out", "queueName": "q"}`)},
			[]string{`bindings[0].type: "serviceBus" (direction "out") is not supported`, "bindings: no trigger binding"}},
		{"TwoTriggers", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "a", "type": "timerTrigger", "schedule": "0 0 * * * *"}, {"name": "b", "type": "timerTrigger", "schedule": "0 0 * * * *"}`)},
			[]string{"bindings: 2 trigger bindings"}},
		{"HTTPTrigger", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "req", "type": "httpTrigger", "direction": "in"}`)},
			[]string{`bindings[0].type: "httpTrigger" is not supported by funchost`}},
		{"MissingType", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "x"}`)},
			[]string{"bindings[0].type: missing"}},
		{"TriggerWithoutName", map[string]string{"host.json": okHost, "F/function.json": fn(`{"type": "timerTrigger", "schedule": "0 0 * * * *"}`)},
			[]string{"bindings[0].name: missing"}},
		{"TriggerDirectionOut", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "t", "type": "timerTrigger", "direction": "out", "schedule": "0 0 * * * *"}`)},
			[]string{`bindings[0].direction: "out"`}},
		{"NoQueue", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "m", "type": "serviceBusTrigger", "connection": "ServiceBusConnection"}`)},
			[]string{"bindings[0].queueName: missing"}},
		{"QueueAndTopic", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "m", "type": "serviceBusTrigger", "queueName": "q", "topicName": "t", "subscriptionName": "s", "connection": "ServiceBusConnection"}`)},
			[]string{"set queueName, or topicName and subscriptionName, not both"}},
		{"TopicWithoutSubscription", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "m", "type": "serviceBusTrigger", "topicName": "t", "connection": "ServiceBusConnection"}`)},
			[]string{"bindings[0].subscriptionName: missing"}},
		{"SessionSettings", map[string]string{"host.json": `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "handler"}},
			"extensions": {"serviceBus": {"maxConcurrentSessions": 0, "sessionIdleTimeout": "soon"}}}`, "F/function.json": fn(`{"name": "m", "type": "serviceBusTrigger", "queueName": "q", "isSessionsEnabled": true, "connection": "ServiceBusConnection"}`)},
			[]string{"extensions.serviceBus.maxConcurrentSessions: 0 must be at least 1", "extensions.serviceBus.sessionIdleTimeout"}},
		{"CardinalityMany", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "m", "type": "serviceBusTrigger", "queueName": "q", "cardinality": "many", "connection": "ServiceBusConnection"}`)},
			[]string{`bindings[0].cardinality: "many" is not supported by funchost`}},
		{"BindingAutoCompleteOff", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "m", "type": "serviceBusTrigger", "queueName": "q", "autoCompleteMessages": false, "connection": "ServiceBusConnection"}`)},
			[]string{"bindings[0].autoCompleteMessages: false is not supported"}},
		{"BadDataType", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "m", "type": "serviceBusTrigger", "queueName": "q", "dataType": "stream", "connection": "ServiceBusConnection"}`)},
			[]string{`bindings[0].dataType: "stream"`}},
		{"QueueSettingMissing", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "m", "type": "serviceBusTrigger", "queueName": "%ROTATION_QUEUE%", "connection": "ServiceBusConnection"}`)},
			[]string{"F/function.json: bindings[0].queueName: app setting ROTATION_QUEUE (referenced as %ROTATION_QUEUE%) is not set"}},
		{"ConnectionMissing", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "m", "type": "serviceBusTrigger", "queueName": "q", "connection": "Nope"}`)},
			[]string{"bindings[0].connection: neither app setting Nope (a connection string) nor Nope__fullyQualifiedNamespace is set"}},
		{"DefaultConnectionMissing", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "m", "type": "serviceBusTrigger", "queueName": "q"}`)},
			[]string{"neither app setting AzureWebJobsServiceBus"}},
		{"ConnectionStringGarbage", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "m", "type": "serviceBusTrigger", "queueName": "q", "connection": "HANDLER_MODE"}`)},
			[]string{"app setting HANDLER_MODE: not a Service Bus connection string"}},
		{"ScheduleMissing", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "t", "type": "timerTrigger"}`)},
			[]string{"bindings[0].schedule: missing"}},
		{"ScheduleFiveFields", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "t", "type": "timerTrigger", "schedule": "*/5 * * * *"}`)},
			[]string{"bindings[0].schedule: ncrontab", "want 6 fields"}},
		{"ScheduleNever", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "t", "type": "timerTrigger", "schedule": "0 0 0 31 2 *"}`)},
			[]string{`bindings[0].schedule: "0 0 0 31 2 *" never fires`}},
		{"ScheduleSettingMissing", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "t", "type": "timerTrigger", "schedule": "%NOPE%"}`)},
			[]string{"bindings[0].schedule: app setting NOPE"}},
		{"ScheduleTimeSpan", map[string]string{"host.json": okHost, "F/function.json": fn(`{"name": "t", "type": "timerTrigger", "schedule": "00:05:00"}`)},
			[]string{"TimeSpan schedules"}},
		{"EveryProblemReported", map[string]string{"host.json": `{"version": "1.0", "customHandler": {"description": {"defaultExecutablePath": "handler"}}}`,
			"A/function.json": fn(`{"name": "t", "type": "timerTrigger"}`),
			"B/function.json": fn(`{"name": "m", "type": "serviceBusTrigger", "queueName": "%NOPE%", "connection": "ServiceBusConnection"}`)},
			[]string{"version", "A/function.json: bindings[0].schedule", "B/function.json: bindings[0].queueName"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := stage(t, tt.files)
			_, err := Load(dir, baseSettings())
			if err == nil {
				t.Fatalf("Load succeeded, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, "/", string(filepath.Separator))
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nwant it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "c2VjcmV0LWtleQ") {
				t.Errorf("error leaks the connection string key: %v", err)
			}
		})
	}
}

func TestConnectionNeverPrintsSecrets(t *testing.T) {
	dir := stage(t, map[string]string{
		"host.json":       `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "handler"}}}`,
		"F/function.json": sbFunction,
	})
	app, err := Load(dir, baseSettings())
	if err != nil {
		t.Fatal(err)
	}
	c := app.Functions[0].ServiceBus.Connection
	for _, s := range []string{c.String(), c.LogValue().String()} {
		if strings.Contains(s, "SharedAccessKey") || strings.Contains(s, "c2VjcmV0") {
			t.Errorf("connection prints its secret: %s", s)
		}
	}
	if want := "ServiceBusConnection (connection string, 127.0.0.1:5672)"; c.String() != want {
		t.Errorf("String() = %q, want %q", c.String(), want)
	}
}

func TestLoadSettings(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    map[string]string
		wantErr string
	}{
		{"OK", `{
  "IsEncrypted": false,
  // comments are fine
  "Values": {"FUNCTIONS_WORKER_RUNTIME": "custom", "REGISTRATION_QUEUE": "app-registrations", "EMPTY": "", "NULL": null},
  "ConnectionStrings": {}, "Host": {"LocalHttpPort": 7071}
}`, map[string]string{"FUNCTIONS_WORKER_RUNTIME": "custom", "REGISTRATION_QUEUE": "app-registrations", "EMPTY": "", "NULL": ""}, ""},
		{"NoValues", `{"IsEncrypted": false}`, map[string]string{}, ""},
		{"Encrypted", `{"IsEncrypted": true, "Values": {}}`, nil, "IsEncrypted: true is not supported"},
		{"NonString", `{"Values": {"A": "x", "N": 5, "B": true}}`, nil, "Values.B, Values.N: must be a string"},
		{"BadJSON", `{"Values": {`, nil, "local.settings.json: line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "local.settings.json")
			writeFile(t, path, tt.content)
			got, err := LoadSettings(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := LoadSettings(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("a missing file loaded")
	}
}

func TestTimeSpan(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "00:05:00", want: 5 * time.Minute},
		{in: "00:00:30", want: 30 * time.Second},
		{in: "23:59:59", want: 24*time.Hour - time.Second},
		{in: "1.02:03:04", want: 26*time.Hour + 3*time.Minute + 4*time.Second},
		{in: "00:00:00.5", want: 500 * time.Millisecond},
		{in: "00:00:00.0000001", want: 100 * time.Nanosecond},
		{in: "01:30", want: 90 * time.Minute},
		{in: "-00:00:01", want: -time.Second},
		{in: "5", bad: true},
		{in: "24:00:00", bad: true},
		{in: "00:60:00", bad: true},
		{in: "00:00:60", bad: true},
		{in: "5m", bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTimeSpan(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("parseTimeSpan(%q) = %s, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseTimeSpan(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
			}
			if back, err := parseTimeSpan(formatTimeSpan(got)); err != nil || back != got {
				t.Errorf("formatTimeSpan(%s) = %q does not round-trip", got, formatTimeSpan(got))
			}
		})
	}
}

func TestStripJSONC(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a": 1}`, `{"a": 1}`},
		{"{\"a\": 1 // one\n}", "{\"a\": 1 \n}"},
		{`{"a": /* x */ 1}`, `{"a":   1}`},
		{`{"url": "http://x//y", "c": "/* not a comment */"}`, `{"url": "http://x//y", "c": "/* not a comment */"}`},
		{`{"a": [1, 2,], "b": 3,}`, `{"a": [1, 2], "b": 3}`},
		{`{"s": "quote \" and , }"}`, `{"s": "quote \" and , }"}`},
		{"\xef\xbb\xbf{}", "{}"},
	}
	for _, tt := range tests {
		got, err := stripJSONC([]byte(tt.in))
		if err != nil || string(got) != tt.want {
			t.Errorf("stripJSONC(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{`{"a": "open`, `{/* open`} {
		if _, err := stripJSONC([]byte(bad)); err == nil {
			t.Errorf("stripJSONC(%q) accepted it", bad)
		}
	}
}
