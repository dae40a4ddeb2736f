package funchost_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"appreg/emulator/funchost"
)

func TestStage(t *testing.T) {
	root := filepath.Join("..", "..")
	fake := filepath.Join(t.TempDir(), "handler")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notApp := t.TempDir()
	if err := os.WriteFile(filepath.Join(notApp, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	restage := filepath.Join(t.TempDir(), "dist")
	if err := funchost.Stage(context.Background(), root, restage, &funchost.StageOptions{Handler: fake}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(restage, "stale.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dist    string
		wantErr string
	}{
		{"New", filepath.Join(t.TempDir(), "dist"), ""},
		{"Empty", t.TempDir(), ""},
		{"Restage", restage, ""},
		{"NotAnApp", notApp, "refusing to replace"},
	}
	fns, _ := filepath.Glob(filepath.Join(root, "functions", "*", "function.json"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := funchost.Stage(context.Background(), root, tt.dist, &funchost.StageOptions{Handler: fake})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if _, err := os.Stat(filepath.Join(tt.dist, "notes.txt")); err != nil {
					t.Errorf("a refused directory lost its contents: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			entries, _ := os.ReadDir(tt.dist)
			if len(entries) != len(fns)+2 { // host.json, the handler, a folder per function
				t.Errorf("staged %d entries, want %d", len(entries), len(fns)+2)
			}
			if fi, err := os.Stat(filepath.Join(tt.dist, "handler")); err != nil || fi.Mode().Perm()&0o100 == 0 {
				t.Errorf("handler: %v %v", fi, err)
			}
			// The host can load what was staged.
			app, err := funchost.Load(tt.dist, map[string]string{"FUNCTIONS_WORKER_RUNTIME": "custom",
				"ServiceBusConnection": "Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=k;SharedAccessKey=a2V5;UseDevelopmentEmulator=true",
				"COMMAND_QUEUE":        "q", "ROTATION_SCHEDULE": "0 0 * * * *"})
			if err != nil {
				t.Fatalf("loading the staged app: %v", err)
			}
			if len(app.Functions) != len(fns) {
				t.Errorf("loaded %d functions, want %d", len(app.Functions), len(fns))
			}
		})
	}
}
