package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"appreg/internal/testutil"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"appreg/emulator/azemu"
	"appreg/emulator/funchost"
	"appreg/internal/registrar"
)

// bin holds what TestMain builds: dist/, an app staged with the handler (linked into each stack),
// funchost and appreg.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped in -short mode")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "appreg-e2e-")
	if err != nil {
		panic(err)
	}
	bin = dir
	code := 1
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build:", err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func build(dir string) error {
	// The handler is staged once here and linked into each stack's app by the same function.
	if err := funchost.Stage(context.Background(), "..", filepath.Join(dir, "dist"), nil); err != nil {
		return err
	}
	for target, pkg := range map[string]string{"funchost": "./cmd/funchost", "appreg": "./cmd/appreg"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, target), pkg)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return nil
}

// stack is one isolated deployment: a local Azure, a staged app and a running funchost.
type stack struct {
	t        *testing.T
	emu      *azemu.Server
	dir      string // endpoints.json and ca.pem
	dist     string
	settings map[string]string
	host     *exec.Cmd
	hostOut  *testutil.Buffer
	hostDone chan error
	logs     *testutil.Buffer // azemu
}

// newStack stages the app with settings on top of the defaults and starts funchost.
func newStack(t *testing.T, settings map[string]string) *stack {
	t.Helper()
	return newStackWith(t, nil, settings)
}

// newStackWith is newStack on a local Azure with options (nil: the defaults).
func newStackWith(t *testing.T, opts *azemu.Options, settings map[string]string) *stack {
	t.Helper()
	s := &stack{t: t, dir: t.TempDir(), dist: t.TempDir(), hostOut: &testutil.Buffer{}, logs: &testutil.Buffer{}}
	if opts == nil {
		opts = &azemu.Options{}
	}
	opts.Logger = slog.New(slog.NewJSONHandler(s.logs, nil))
	emu, err := azemu.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.emu = emu
	t.Cleanup(emu.Close)
	if err := emu.WriteDir(s.dir); err != nil {
		t.Fatal(err)
	}
	ep := emu.Endpoints()
	s.settings = map[string]string{
		"FUNCTIONS_WORKER_RUNTIME": "custom",
		"AZURE_TENANT_ID":          ep.TenantID,
		"AZURE_AUTHORITY_HOST":     ep.AuthorityHost,
		"GRAPH_BASE_URL":           ep.GraphBaseURL,
		"KEY_VAULT_URL":            ep.KeyVaultURL,
		"APPREG_CA_FILE":           filepath.Join(s.dir, "ca.pem"),
		"ServiceBusConnection":     ep.ServiceBusConnectionString,
		"COMMAND_QUEUE":            "app-commands",
		"EVENTS_TOPIC":             "app-registration-events",
		"ROTATION_SCHEDULE":        "0 0 */6 * * *",
		// The handler signs in as the Function App's managed identity, as in Azure.
		"IDENTITY_ENDPOINT":       ep.ManagedIdentity.Endpoint,
		"IDENTITY_HEADER":         ep.ManagedIdentity.Header,
		"AZURE_CLIENT_ID":         ep.ManagedIdentity.ClientID,
		"CREDENTIAL_EDIT_SPACING": "20ms",
		// A retry budget of seconds, not half an hour, so a failure that outlives it is
		// dead-lettered within a test; two sign-ins in a row verify a new secret.
		"RETRY_BUDGET":            "20s",
		"ATTEMPT_TIMEOUT":         "5s",
		"SECRET_VERIFY_SUCCESSES": "2",
		"LOG_LEVEL":               "debug",
		// FHIR access through the local Resource Manager, on the local FHIR services; the first
		// proof a second after the registration, so tests wait for RBAC, not for the schedule.
		"ARM_ENDPOINT":            ep.ARMEndpoint,
		"ARM_AUDIENCE":            ep.ARMAudience,
		"FHIR_SERVICES":           ep.FHIRSetting(),
		"FHIR_DEFAULT_SERVICE":    ep.FHIRServices[0].ID,
		"FHIR_ACCESS_CHECK_DELAY": "1s",
	}
	for k, v := range settings {
		s.settings[k] = v
	}
	s.stage()
	s.startHost()
	t.Cleanup(func() {
		s.stopHost()
		s.assertNoSecretPrinted()
		if t.Failed() {
			t.Logf("funchost output (tail):\n%s", tail(s.hostOut.String(), 80))
		}
	})
	return s
}

func (s *stack) stage() {
	s.t.Helper()
	if err := funchost.Stage(context.Background(), "..", s.dist, &funchost.StageOptions{Handler: filepath.Join(bin, "dist", "handler")}); err != nil {
		s.t.Fatal(err)
	}
	b, _ := json.MarshalIndent(map[string]any{"IsEncrypted": false, "Values": s.settings}, "", "  ")
	if err := os.WriteFile(filepath.Join(s.dist, "local.settings.json"), b, 0o600); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stack) startHost() {
	s.t.Helper()
	s.host = exec.Command(filepath.Join(bin, "funchost"), "--dir", s.dist, "--log-level", "debug")
	s.host.Stdout, s.host.Stderr = s.hostOut, s.hostOut
	s.host.Env = append(os.Environ()[:0:0], "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
	if err := s.host.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.hostDone = make(chan error, 1)
	go func() { s.hostDone <- s.host.Wait() }()
	s.waitFor("funchost to start", 60*time.Second, func() bool {
		return strings.Contains(s.hostOut.String(), "host started")
	})
}

func (s *stack) stopHost() {
	if s.host == nil || s.host.Process == nil {
		return
	}
	_ = s.host.Process.Signal(os.Interrupt)
	select {
	case <-s.hostDone:
	case <-time.After(40 * time.Second):
		_ = s.host.Process.Kill()
		<-s.hostDone
	}
	s.host = nil
}

func (s *stack) waitFor(what string, timeout time.Duration, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// appreg runs the CLI against this stack's local Azure.
func (s *stack) appreg(ctx context.Context, args ...string) (int, string, string) {
	s.t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "appreg"), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "APPREG_ENDPOINTS=" + filepath.Join(s.dir, "endpoints.json")}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	s.hostOut.Write([]byte("\n[appreg " + strings.Join(args, " ") + "]\n" + out.String() + errb.String()))
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			s.t.Fatalf("appreg %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return code, out.String(), errb.String()
}

// enqueueWait sends a request file with the CLI and waits for its outcome event.
func (s *stack) enqueueWait(body string, timeout time.Duration) (int, registrar.Event) {
	s.t.Helper()
	f := filepath.Join(s.t.TempDir(), "request.json")
	if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
	defer cancel()
	code, out, errOut := s.appreg(ctx, "enqueue", "--file", f, "--wait", "--timeout", timeout.String(), "--json")
	ev, ok := outcome(out)
	if !ok && code != 2 {
		s.t.Fatalf("enqueue --wait --json printed no event (exit %d): %s %s", code, out, errOut)
	}
	return code, ev
}

// outcome finds the event in the CLI's JSON: {"outcome":{"event":{…}}}, as --wait prints it.
func outcome(out string) (registrar.Event, bool) {
	var v struct {
		Outcome struct {
			Event registrar.Event `json:"event"`
		} `json:"outcome"`
	}
	if err := json.Unmarshal([]byte(lastJSONLine(out)), &v); err != nil || v.Outcome.Event.Type == "" {
		return registrar.Event{}, false
	}
	return v.Outcome.Event, true
}

func lastJSONLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(strings.TrimSpace(lines[i]), "{") {
			return lines[i]
		}
	}
	return strings.TrimSpace(s)
}

// passwords lists the keyIds of an app's passwords.
func (s *stack) passwords(uniqueName string) []string {
	var ids []string
	for _, a := range s.emu.Graph.State().Applications {
		if a.UniqueName == uniqueName {
			for _, p := range a.Passwords {
				ids = append(ids, p.KeyID)
			}
		}
	}
	return ids
}

func (s *stack) vaultClient() *azsecrets.Client {
	s.t.Helper()
	ep := s.emu.Endpoints()
	cred, err := azidentity.NewClientSecretCredential(ep.TenantID, ep.Clients[0].ClientID, ep.Clients[0].ClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{Transport: s.emu.Client(), Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: ep.AuthorityHost}}, DisableInstanceDiscovery: true})
	if err != nil {
		s.t.Fatal(err)
	}
	kv, err := azsecrets.NewClient(ep.KeyVaultURL, cred, &azsecrets.ClientOptions{
		ClientOptions: azcore.ClientOptions{Transport: s.emu.Client()}, DisableChallengeResourceVerification: true})
	if err != nil {
		s.t.Fatal(err)
	}
	return kv
}

// secretAuthenticates reads a client's latest secret from Key Vault and signs in with it.
func (s *stack) secretAuthenticates(clientName string) {
	s.t.Helper()
	s.emu.Graph.Replicate()
	appID, value := s.secretValue(clientName, "")
	if err := s.signIn(appID, value); err != nil {
		s.t.Errorf("%s's Key Vault secret does not authenticate", clientName)
	}
}

// secretValue reads one version of a client's secret ("" for the latest) and its app's appId.
func (s *stack) secretValue(clientName, version string) (appID, value string) {
	s.t.Helper()
	res, err := s.vaultClient().GetSecret(context.Background(), clientName+"-client-secret", version, nil)
	if err != nil {
		s.t.Fatalf("reading %s's secret: %v", clientName, err)
	}
	return *res.Tags["appId"], *res.Value
}

// signIn asks Entra for a token with a client secret, as a consumer would.
func (s *stack) signIn(appID, secret string) error {
	ep := s.emu.Endpoints()
	cred, err := azidentity.NewClientSecretCredential(ep.TenantID, appID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{Transport: s.emu.Client(), Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: ep.AuthorityHost}}, DisableInstanceDiscovery: true})
	if err != nil {
		s.t.Fatal(err)
	}
	_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	return err
}

// assertNoSecretPrinted reads every secret version in the vault and fails if any value appears in
// what funchost, the handler, the CLI or azemu printed.
func (s *stack) assertNoSecretPrinted() {
	kv := s.vaultClient()
	printed := s.hostOut.String() + s.logs.String()
	for _, sec := range s.emu.KeyVault.State().Secrets {
		for _, v := range sec.Versions {
			res, err := kv.GetSecret(context.Background(), sec.Name, v.Version, nil)
			if err != nil || res.Value == nil || len(*res.Value) < 8 {
				continue
			}
			if strings.Contains(printed, *res.Value) {
				s.t.Errorf("the value of %s/%s appears in the output", sec.Name, v.Version)
			}
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
