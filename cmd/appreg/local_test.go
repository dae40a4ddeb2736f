package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"appreg/internal/testutil"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"appreg/emulator/azemu"
	"appreg/internal/endpoints"
)

// TestLocalOnce runs `appreg local --once` end to end: the real handler binary, started by the
// Functions host simulator, registers the repository's examples against the local Azure. It
// builds the handler (msgraph makes that slow on a cold cache), so -short skips it.
func TestLocalOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the handler; skipped with -short")
	}
	root := repoRoot(t)
	dist := stage(t, root)
	runDir := filepath.Join(t.TempDir(), "run")

	var secrets []string
	var out, errb testutil.Buffer
	c := newCLI(func(k string) string { return os.Getenv(k) }, &out, &errb)
	c.poll = 50 * time.Millisecond
	c.hooks.beforeStop = func(ctx context.Context, emu *azemu.Server) {
		secrets = readSecrets(t, ctx, emu)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code := c.main(ctx, []string{"local", "--dist", dist, "--dir", runDir, "--examples", filepath.Join(root, "examples"), "--once"})
	stdout := out.String()
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s\nhandler.log:\n%s", code, stdout, errb.String(), tail(t, filepath.Join(runDir, "handler.log")))
	}

	examples, _ := filepath.Glob(filepath.Join(root, "examples", "*.json"))
	for _, ex := range examples {
		client := strings.TrimSuffix(filepath.Base(ex), ".json")
		if !strings.Contains(stdout, "registered "+client+"\n") || !strings.Contains(stdout, "/secrets/"+client+"-client-secret/") {
			t.Errorf("no registration of %s in:\n%s", client, stdout)
		}
	}
	for _, want := range []string{"starting local Azure…", "handler ready", "ScheduleRotations: 3 apps, 3 secrets, 0 due", "rotated ", "expiresOn", "done: every example"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	// Three registrations and one rotation: four secret values, none of them printed or logged.
	if len(secrets) != len(examples)+1 {
		t.Errorf("%d secret versions in Key Vault, want %d", len(secrets), len(examples)+1)
	}
	logs := []string{stdout, errb.String()}
	for _, name := range []string{"azemu.log", "funchost.log", "handler.log"} {
		b, err := os.ReadFile(filepath.Join(runDir, name))
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, string(b))
	}
	for i, s := range secrets {
		for j, text := range logs {
			if strings.Contains(text, s) {
				t.Errorf("secret %d appears in output %d", i, j) // never print the value itself
			}
		}
	}
	ep, err := endpoints.Read(runDir)
	if err != nil {
		t.Fatal(err)
	}
	key := ep.ServiceBusConnectionString[strings.Index(ep.ServiceBusConnectionString, "SharedAccessKey="):]
	for j, text := range logs {
		if strings.Contains(text, key) {
			t.Errorf("the Service Bus key appears in output %d", j)
		}
	}
	if fi, err := os.Stat(filepath.Join(dist, "local.settings.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("local.settings.json: %v %v", fi.Mode(), err)
	}
}

// stage builds what `make package` stages, for this machine: host.json, one folder per function
// and the handler.
func stage(tb testing.TB, root string) string {
	tb.Helper()
	dist := filepath.Join(tb.TempDir(), "dist")
	cmd := exec.Command("go", "build", "-o", filepath.Join(dist, "handler"), "./handler")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building the handler: %v\n%s", err, out)
	}
	copyFile(tb, filepath.Join(root, "host.json"), filepath.Join(dist, "host.json"))
	fns, _ := filepath.Glob(filepath.Join(root, "functions", "*", "function.json"))
	if len(fns) == 0 {
		tb.Fatal("no functions/*/function.json")
	}
	for _, fn := range fns {
		name := filepath.Base(filepath.Dir(fn))
		copyFile(tb, fn, filepath.Join(dist, name, "function.json"))
	}
	return dist
}

func copyFile(tb testing.TB, from, to string) {
	tb.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// readSecrets reads every version of every secret from Key Vault through azemu, as the
// seeded client, so the test knows the values it must never find in the output.
func readSecrets(tb testing.TB, ctx context.Context, emu *azemu.Server) []string {
	tb.Helper()
	ep := emu.Endpoints()
	co := azcore.ClientOptions{Transport: emu.Client(), Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: ep.AuthorityHost}}
	cred, err := azidentity.NewClientSecretCredential(ep.TenantID, ep.Clients[0].ClientID, ep.Clients[0].ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true})
	if err != nil {
		tb.Fatal(err)
	}
	kv, err := azsecrets.NewClient(ep.KeyVaultURL, cred, &azsecrets.ClientOptions{
		ClientOptions: azcore.ClientOptions{Transport: emu.Client()}, DisableChallengeResourceVerification: true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	var values []string
	names := kv.NewListSecretPropertiesPager(nil)
	for names.More() {
		page, err := names.NextPage(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		for _, p := range page.Value {
			versions := kv.NewListSecretPropertiesVersionsPager(p.ID.Name(), nil)
			for versions.More() {
				vp, err := versions.NextPage(ctx)
				if err != nil {
					tb.Fatal(err)
				}
				for _, v := range vp.Value {
					s, err := kv.GetSecret(ctx, v.ID.Name(), v.ID.Version(), nil)
					if err != nil {
						tb.Fatal(err)
					}
					if s.Value != nil && *s.Value != "" {
						values = append(values, *s.Value)
					}
				}
			}
		}
	}
	return values
}

func tail(tb testing.TB, path string) string {
	tb.Helper()
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
