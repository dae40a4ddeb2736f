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
	if ep.TenantID == "" || !strings.HasPrefix(ep.GraphBaseURL, "https://127.0.0.1:") || len(ep.Clients) != 1 {
		t.Errorf("endpoints = %+v", ep)
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
		args []string
		code int
	}{
		{nil, 2}, {[]string{"--help"}, 0}, {[]string{"serve", "--help"}, 0}, {[]string{"serve"}, 2}, {[]string{"bogus"}, 2},
		{[]string{"serve", "--dir", t.TempDir(), "--log-level", "loud"}, 2},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		if code := run(context.Background(), tt.args, &out, &errb); code != tt.code {
			t.Errorf("run(%v) = %d, want %d; stderr %s", tt.args, code, tt.code, errb.String())
		}
	}
}
