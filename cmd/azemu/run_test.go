package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"appreg/emulator/azemu"
	"appreg/emulator/funchost"
	"appreg/internal/endpoints"
	"appreg/internal/testutil"
)

// TestRunOnce runs `azemu run --once` end to end: the real handler binary, started by the
// Functions host simulator, registers the repository's examples against the local Azure, sent by
// the real appreg CLI. It builds both (msgraph makes the handler slow on a cold cache), so -short
// skips it.
func TestRunOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the handler and the CLI; skipped with -short")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := t.TempDir()
	dist := filepath.Join(bin, "dist")
	if err := funchost.Stage(ctx, root, dist, nil); err != nil {
		t.Fatal(err)
	}
	appreg := filepath.Join(bin, "appreg")
	build := exec.CommandContext(ctx, "go", "build", "-o", appreg, "./cmd/appreg")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building appreg: %v\n%s", err, out)
	}
	runDir := filepath.Join(t.TempDir(), "run")

	var secrets []string
	var out, errb testutil.Buffer
	a := &app{stdout: &out, stderr: &errb, getenv: os.Getenv, beforeStop: func(ctx context.Context, emu *azemu.Server) {
		secrets = readSecrets(t, ctx, emu)
	}}
	code := a.main(ctx, []string{"run", "--dist", dist, "--dir", runDir, "--examples", filepath.Join(root, "examples"), "--once", "--appreg", appreg})
	stdout := out.String()
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s\nhandler.log:\n%s", code, stdout, errb.String(), tail(t, filepath.Join(runDir, "handler.log")))
	}

	examples, _ := filepath.Glob(filepath.Join(root, "examples", "*.json"))
	for _, ex := range examples {
		client := strings.TrimSuffix(filepath.Base(ex), ".json")
		if !strings.Contains(stdout, "registered "+client+"\n") || !strings.Contains(stdout, "/secrets/"+client+"-client-secret/") ||
			!strings.Contains(stdout, "enqueued "+filepath.Base(ex)+" ("+client+", request ") {
			t.Errorf("no registration of %s in:\n%s", client, stdout)
		}
	}
	for _, want := range []string{"starting local Azure…", "handler ready", "ScheduleRotations: 3 apps, 3 secrets, 0 rotations and 0 maintenance jobs sent", "rotated ", "expiresOn",
		"access-verified lab-results-sync", "FHIR: lab-results-sync read 3 Patient resource(s) from https://", "done: every example"} {
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
