package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"appreg/internal/endpoints"
)

func TestServeWritesEndpointsAndStops(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--dir", dir, "--log-level", "warn"}, &stdout, &stderr) }()

	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "endpoints.json")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no endpoints.json; stderr: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	ep, err := endpoints.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ep.TenantID == "" || !strings.HasPrefix(ep.GraphBaseURL, "https://127.0.0.1:") || len(ep.Clients) != 2 ||
		ep.ARMEndpoint != ep.AuthorityHost || ep.SubscriptionID == "" || len(ep.FHIRServices) != 1 {
		t.Errorf("endpoints: tenant %q, graph %q, %d clients, ARM %q, subscription %q, FHIR %v",
			ep.TenantID, ep.GraphBaseURL, len(ep.Clients), ep.ARMEndpoint, ep.SubscriptionID, ep.FHIRServices)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d; stderr: %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on cancel")
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{nil, 2, "Commands:"}, {[]string{"--help"}, 0, ""}, {[]string{"serve", "--help"}, 0, ""}, {[]string{"serve"}, 2, "--dir is required"},
		{[]string{"bogus"}, 2, "unknown command"},
		{[]string{"serve", "--dir", t.TempDir(), "--log-level", "loud"}, 2, "--log-level"},
		{[]string{"run", "--help"}, 0, ""}, {[]string{"stage", "--help"}, 0, ""},
		{[]string{"run", "--dist", "/nonexistent"}, 2, "make package"},
		{[]string{"run", "extra"}, 2, "unexpected argument"},
		{[]string{"stage", "--dist", t.TempDir(), "--root", "/nonexistent"}, 1, "no functions"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(context.Background(), tt.args, &out, &errb); code != tt.code || !strings.Contains(errb.String(), tt.stderr) {
				t.Errorf("run(%v) = %d, want %d; stderr %s", tt.args, code, tt.code, errb.String())
			}
			if tt.code == 0 && !strings.Contains(out.String(), "Usage: azemu") {
				t.Errorf("--help printed %q", out.String())
			}
		})
	}
}
