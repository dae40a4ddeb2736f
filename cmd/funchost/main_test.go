package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"appreg/internal/testutil"
)

// Started with FUNCHOST_CMD_TEST_HANDLER set, the test binary is a minimal
// custom handler: it answers GET / and records each invocation path in
// $TICK_FILE.
func TestMain(m *testing.M) {
	switch os.Getenv("FUNCHOST_CMD_TEST_HANDLER") {
	case "":
		os.Exit(m.Run())
	case "exit":
		os.Exit(3)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			f, err := os.OpenFile(os.Getenv("TICK_FILE"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err == nil {
				fmt.Fprintln(f, r.URL.Path)
				f.Close()
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"Outputs":{},"Logs":["tick"],"ReturnValue":null}`)
	})
	_ = http.ListenAndServe("127.0.0.1:"+os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT"), nil)
}

// stageApp writes a dist directory whose handler is this test binary and
// whose one function is a timer that runs on startup.
func stageApp(t *testing.T, mode string) (dir, tickFile string) {
	t.Helper()
	dir = t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tickFile = filepath.Join(t.TempDir(), "ticks")
	host, _ := json.Marshal(map[string]any{
		"version":       "2.0",
		"customHandler": map[string]any{"description": map[string]any{"defaultExecutablePath": exe}},
	})
	settings, _ := json.Marshal(map[string]any{
		"IsEncrypted": false,
		"Values": map[string]string{
			"FUNCTIONS_WORKER_RUNTIME":  "custom",
			"FUNCHOST_CMD_TEST_HANDLER": mode,
			"TICK_FILE":                 tickFile,
			"TICK_SCHEDULE":             "0 0 0 1 1 *",
		},
	})
	files := map[string]string{
		"host.json":           string(host),
		"local.settings.json": string(settings),
		"Tick/function.json":  `{"bindings": [{"name": "timer", "type": "timerTrigger", "schedule": "%TICK_SCHEDULE%", "runOnStartup": true}]}`,
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// run exports local.settings.json into the process environment, as Core
	// Tools does; undo that for the next test.
	t.Cleanup(func() {
		for _, k := range []string{"FUNCHOST_CMD_TEST_HANDLER", "TICK_FILE", "TICK_SCHEDULE", "FUNCTIONS_WORKER_RUNTIME"} {
			os.Unsetenv(k)
		}
	})
	return dir, tickFile
}

func TestUsageAndConfigErrors(t *testing.T) {
	good, _ := stageApp(t, "serve")
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "host.json"), []byte(`{"version": "1.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		code       int
		wantStdout string
		wantStderr string
	}{
		{"Help", []string{"--help"}, 0, "Usage: funchost", ""},
		{"UnknownFlag", []string{"--nope"}, 2, "", "flag provided but not defined: -nope"},
		{"ExtraArgument", []string{"--dir", good, "extra"}, 2, "", `unexpected argument "extra"`},
		{"BadLogLevel", []string{"--dir", good, "--log-level", "loud"}, 2, "", "--log-level"},
		{"BadLogFormat", []string{"--dir", good, "--log-format", "xml"}, 2, "", "--log-format"},
		{"MissingDir", []string{"--dir", filepath.Join(bad, "nope")}, 2, "", "app directory"},
		{"InvalidApp", []string{"--dir", bad}, 2, "", `host.json: version: "1.0" is not supported`},
		{"MissingSettings", []string{"--dir", good, "--settings", filepath.Join(bad, "none.json")}, 2, "", "none.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr testutil.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

func TestRunsUntilStopped(t *testing.T) {
	dir, ticks := stageApp(t, "serve")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr testutil.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"--dir", dir, "--log-format", "json"}, io.Discard, &stderr) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, _ := os.ReadFile(ticks); strings.Contains(string(b), "/Tick") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the startup run never reached the handler; log:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after a clean stop; log:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("funchost did not stop")
	}
	if !strings.Contains(stderr.String(), `"log":"tick"`) {
		t.Errorf("the handler's Logs were not printed:\n%s", stderr.String())
	}
}

func TestHandlerThatCannotStartExitsOne(t *testing.T) {
	dir, _ := stageApp(t, "exit")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stderr testutil.Buffer
	if code := run(ctx, []string{"--dir", dir, "--ready-timeout", "2s"}, io.Discard, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1; log:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "never became ready") {
		t.Errorf("log does not say why:\n%s", stderr.String())
	}
}
