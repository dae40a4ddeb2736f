package config

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"appreg/internal/registrar"
)

const tenant = "11111111-2222-3333-4444-555555555555"

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadDefaults(t *testing.T) {
	got, err := Load(env(map[string]string{
		EnvTenantID: tenant, EnvKeyVaultURL: "https://v.vault.azure.net/", EnvPort: "7071",
		EnvSBNamespace: "ns.servicebus.windows.net",
	}), Need{Tenant: true, Vault: true, Port: true, ServiceBus: true})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		TenantID: tenant, AuthorityHost: "https://login.microsoftonline.com", GraphBaseURL: "https://graph.microsoft.com",
		KeyVaultURL: "https://v.vault.azure.net/", ServiceBusNamespace: "ns.servicebus.windows.net",
		CommandQueue: "app-commands", EventsTopic: "app-registration-events",
		RotationSchedule: "0 0 */6 * * *", MaxLifetimeDays: 180, DefaultLifetimeDays: 90,
		RotateBefore: 720 * time.Hour, RetireAfter: 168 * time.Hour, OrphanAfter: 15 * time.Minute,
		MaxDeliveryCount: 10, RetryBudget: 30 * time.Minute, AttemptTimeout: 5 * time.Minute,
		EditSpacing: 10 * time.Second, ReplicationTimeout: 3 * time.Minute, AppNamePrefix: "appreg-", Port: 7071,
		VerifyTimeout: 2 * time.Minute, VerifySuccesses: 8, VerifyScope: "https://graph.microsoft.com/.default",
		ARMEndpoint: "https://management.azure.com", ARMAudience: "https://management.azure.com",
		FHIRAllowedRoles: []string{"FHIR Data Reader", "FHIR Data Writer", "FHIR Data Exporter"}, FHIRAccessTimeout: 15 * time.Minute, FHIRAccessDelay: 30 * time.Second,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
}

func TestLoadOverrides(t *testing.T) {
	got, err := Load(env(map[string]string{
		EnvTenantID: tenant, EnvRotateBefore: "10d", EnvRetireAfter: "1s", EnvMaxLifetime: "730",
		EnvDefaultLifetime: "365", EnvRotationSchedule: "%MY_SCHEDULE%", EnvLogLevel: "debug",
		EnvSecretNamePrefix: "fhir-", EnvGraphBaseURL: "https://127.0.0.1:8443/",
	}), Need{})
	if err != nil {
		t.Fatal(err)
	}
	if got.RotateBefore != 240*time.Hour || got.RetireAfter != time.Second || got.DefaultLifetimeDays != 365 ||
		got.RotationSchedule != "%MY_SCHEDULE%" || got.LogLevel.String() != "DEBUG" || got.SecretNamePrefix != "fhir-" ||
		got.GraphBaseURL != "https://127.0.0.1:8443" {
		t.Errorf("got %+v", got)
	}
}

func TestLoadNamesEveryBadSetting(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		need Need
		want []string // setting names that must appear in the error
	}{
		{"MissingRequired", map[string]string{}, Need{Tenant: true, Vault: true, Port: true, ServiceBus: true},
			[]string{EnvTenantID, EnvKeyVaultURL, EnvPort, EnvSBNamespace}},
		{"BadValues", map[string]string{
			EnvTenantID: "contoso", EnvKeyVaultURL: "http://v.vault.azure.net", EnvMaxLifetime: "1000",
			EnvRotateBefore: "soon", EnvOrphanAfter: "1s", EnvRotationSchedule: "0 */6 * * *", EnvMaxDeliveryCount: "0",
			EnvCommandQueue: "bad queue", EnvLogLevel: "loud", EnvClientID: "x", EnvVerifyScope: "fhir",
		}, Need{}, []string{EnvVerifyScope, EnvTenantID, EnvKeyVaultURL, EnvMaxLifetime, EnvRotateBefore, EnvOrphanAfter, EnvRotationSchedule,
			EnvMaxDeliveryCount, EnvCommandQueue, EnvLogLevel, EnvClientID}},
		{"DefaultAboveMax", map[string]string{EnvTenantID: tenant, EnvMaxLifetime: "30"}, Need{}, []string{EnvDefaultLifetime}},
		{"SecretWithoutClient", map[string]string{EnvTenantID: tenant, EnvClientSecret: "s3cr3t-value"}, Need{}, []string{EnvClientSecret}},
		{"BadConnectionString", map[string]string{EnvTenantID: tenant, EnvSBConnection: "SharedAccessKey=topsecret"}, Need{ServiceBus: true}, []string{EnvSBConnection}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(env(tt.env), tt.need)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, name := range tt.want {
				if !strings.Contains(err.Error(), "setting "+name+" ") {
					t.Errorf("error does not name %s:\n%v", name, err)
				}
			}
			for _, secret := range []string{"s3cr3t-value", "topsecret"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error echoes a secret: %v", err)
				}
			}
		})
	}
}

func TestFHIRSettings(t *testing.T) {
	const ws = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws1/fhirservices/fhir1"
	const legacy = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.HealthcareApis/services/oldfhir"
	got, err := Load(env(map[string]string{
		EnvTenantID: tenant, EnvFHIRServices: ws + ", " + legacy + "=https://127.0.0.1:8443/fhir/x/",
		EnvFHIRDefaultService: strings.ToUpper(ws), EnvFHIRAllowedRoles: "fhir data reader, FHIR Data Exporter",
	}), Need{})
	if err != nil {
		t.Fatal(err)
	}
	want := []registrar.FHIRService{{ID: ws, URL: "https://ws1-fhir1.fhir.azurehealthcareapis.com"}, {ID: legacy, URL: "https://127.0.0.1:8443/fhir/x"}}
	if diff := cmp.Diff(want, got.FHIRServices); diff != "" {
		t.Errorf("FHIR services (-want +got):\n%s", diff)
	}
	if !slices.Equal(got.FHIRAllowedRoles, []string{"FHIR Data Reader", "FHIR Data Exporter"}) {
		t.Errorf("roles = %v", got.FHIRAllowedRoles)
	}
	_, err = Load(env(map[string]string{
		EnvTenantID: tenant, EnvFHIRServices: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x",
		EnvFHIRDefaultService: ws, EnvFHIRAllowedRoles: "Owner",
	}), Need{})
	for _, name := range []string{EnvFHIRServices, EnvFHIRDefaultService, EnvFHIRAllowedRoles} {
		if err == nil || !strings.Contains(err.Error(), "setting "+name+" ") {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestLoopback(t *testing.T) {
	for u, want := range map[string]bool{
		"https://127.0.0.1:8443/": true, "https://localhost/": true, "https://[::1]:1/": true,
		"https://v.vault.azure.net/": false, "https://127.0.0.1.nip.io/": false,
	} {
		if Loopback(u) != want {
			t.Errorf("Loopback(%q) = %v", u, !want)
		}
	}
}

// The README's settings table is the operator's reference: it is this table, row for row.
func TestREADMESettingsTableIsTheTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	_, section, ok := strings.Cut(string(readme), "\n### Settings\n")
	if !ok {
		t.Fatal("README.md has no ### Settings section")
	}
	section, _, _ = strings.Cut(section, "\n#")
	var got []string
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "| `") {
			got = append(got, line)
		}
	}
	var want []string
	for _, s := range Settings {
		want = append(want, readmeRow(s))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("README settings rows (-want +got):\n%s\nThe table should read:\n%s", diff, strings.Join(want, "\n"))
	}
}

func readmeRow(s Setting) string {
	def := "`" + s.Default + "`"
	switch s.Default {
	case "":
		def = "—"
	case Required, SetByHost:
		def = s.Default
	}
	return fmt.Sprintf("| `%s` | %s | %s |", s.Name, def, s.Meaning)
}

// local.settings.json.example is what a deployment starts from: it names every setting, each
// with its default or an obvious placeholder that Load refuses.
func TestExampleSettingsNameEverySetting(t *testing.T) {
	raw, err := os.ReadFile("../../local.settings.json.example")
	if err != nil {
		t.Fatal(err)
	}
	var example struct{ Values map[string]string }
	if err := json.Unmarshal(raw, &example); err != nil {
		t.Fatal(err)
	}
	hostOwn := map[string]bool{"FUNCTIONS_WORKER_RUNTIME": true, "AzureWebJobsStorage": true}
	known := map[string]bool{}
	for _, s := range Settings {
		known[s.Name] = true
		v, ok := example.Values[s.Name]
		switch {
		case s.Default == SetByHost:
			if ok {
				t.Errorf("%s is set by the host; the example must not set it", s.Name)
			}
		case !ok:
			t.Errorf("local.settings.json.example lacks %s", s.Name)
		case s.Placeholder != "" && v != s.Placeholder:
			t.Errorf("%s = %q in the example, want the placeholder %q", s.Name, v, s.Placeholder)
		case s.Placeholder == "" && v != s.Default:
			t.Errorf("%s = %q in the example, want its default %q", s.Name, v, s.Default)
		}
	}
	for k := range example.Values {
		if !known[k] && !hostOwn[k] {
			t.Errorf("the example sets %s, which nothing reads", k)
		}
	}
	// Unedited, the example must not pass: each placeholder is named.
	_, err = Load(func(k string) string { return example.Values[k] }, Need{Tenant: true, Vault: true, ServiceBus: true})
	for _, s := range Settings {
		if s.Placeholder != "" && (err == nil || !strings.Contains(err.Error(), "setting "+s.Name+" ")) {
			t.Errorf("the placeholder of %s passes Load: %v", s.Name, err)
		}
	}
}

func TestHelpShowsEverySettingAndDefault(t *testing.T) {
	var b strings.Builder
	Help(&b)
	for _, s := range Settings {
		if !strings.Contains(b.String(), s.Name) || !strings.Contains(b.String(), s.Meaning+" ("+s.DefaultText()+")") {
			t.Errorf("help lacks %s with its meaning and default", s.Name)
		}
	}
}
