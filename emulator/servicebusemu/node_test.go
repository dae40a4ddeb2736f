package servicebusemu

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestNodeClient runs the @azure/service-bus suite in conformance/node (a
// second, independent client on rhea) against the emulator. It is skipped,
// with the reason, when Node or the npm packages are unavailable.
func TestNodeClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; skipping the @azure/service-bus suite")
	}
	dir, err := filepath.Abs(filepath.Join("conformance", "node"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@azure", "service-bus")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Skip("node_modules is missing and npm is not installed; skipping the @azure/service-bus suite")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("node_modules is missing and npm ci failed (%v); skipping the @azure/service-bus suite:\n%s", err, out)
		}
	}
	cfg := &Config{}
	for _, q := range []string{"basic", "abandon", "defer", "peek", "scheduled"} {
		cfg.AddQueue(q, EntityProperties{})
	}
	cfg.AddQueue("deadletter", EntityProperties{MaxDeliveryCount: 3})
	cfg.AddQueue("sessions", EntityProperties{RequiresSession: true})
	cfg.AddTopic("fanout", EntityProperties{}, "a", "b")
	srv := startServer(t, &Options{Config: cfg})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "servicebus.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SB_CONNECTION_STRING="+srv.ConnectionString())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	t.Logf("node --test:\n%s", out)
}
