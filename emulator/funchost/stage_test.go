package funchost_test

import (
	"archive/zip"
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

// The package keeps the handler executable (0755) even when the local umask left it at 0700,
// carries host.json and every function beside it, and refuses a handler Azure could not run.
func TestZip(t *testing.T) {
	root := filepath.Join("..", "..")
	tests := []struct {
		name    string
		handler string
		mode    os.FileMode
		wantErr string
	}{
		{"LinuxHandlerUnderATightUmask", "\x7fELF\x02\x01\x01", 0o700, ""},
		{"MachOHandler", "\xcf\xfa\xed\xfe", 0o755, "not a Linux (ELF) executable"},
		{"Script", "#!/bin/sh\n", 0o755, "not a Linux (ELF) executable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := filepath.Join(t.TempDir(), "handler")
			if err := os.WriteFile(fake, []byte(tt.handler), tt.mode); err != nil {
				t.Fatal(err)
			}
			dist := filepath.Join(t.TempDir(), "dist")
			if err := funchost.Stage(context.Background(), root, dist, &funchost.StageOptions{Handler: fake}); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "bin", "appreg-dist.zip")
			err := funchost.Zip(dist, out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if _, err := os.Stat(out); err == nil {
					t.Error("a refused package was written anyway")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r, err := zip.OpenReader(out)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got := map[string]os.FileMode{}
			for _, f := range r.File {
				got[f.Name] = f.Mode()
			}
			if m, ok := got["handler"]; !ok || m != 0o755 {
				t.Errorf("handler is stored as %v (present %v), want -rwxr-xr-x", m, ok)
			}
			fns, _ := filepath.Glob(filepath.Join(root, "functions", "*", "function.json"))
			want := []string{"host.json"}
			for _, fn := range fns {
				want = append(want, filepath.Base(filepath.Dir(fn))+"/function.json")
			}
			for _, name := range want {
				if m, ok := got[name]; !ok || m != 0o644 {
					t.Errorf("%s is stored as %v (present %v), want -rw-r--r--", name, m, ok)
				}
			}
			if len(got) != len(want)+1 {
				t.Errorf("the zip holds %v, want %v and handler", got, want)
			}
		})
	}
}
