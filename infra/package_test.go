package infra_test

import (
	"archive/zip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// stage writes what `make package` leaves in dist/, with a stand-in handler: ELF magic is all the
// zip step looks at, and building the real one would make this test take a minute.
func stage(t *testing.T, handler []byte, mode os.FileMode) string {
	t.Helper()
	dist := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dist, "ClientCommand"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"host.json": "{}", "ClientCommand/function.json": "{}"} {
		if err := os.WriteFile(filepath.Join(dist, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dist, "handler"), handler, mode); err != nil {
		t.Fatal(err)
	}
	return dist
}

func zipDist(t *testing.T, dist, out string) (string, error) {
	t.Helper()
	for _, tool := range []string{"sh", "zip", "unzip", "od"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed; scripts/zip-dist.sh needs it", tool)
		}
	}
	b, err := exec.Command("sh", "../scripts/zip-dist.sh", dist, out).CombinedOutput()
	return string(b), err
}

// The zip the hooks publish keeps the handler executable (0755) whatever the local umask left
// on it, and carries host.json and every function.json beside it.
func TestZipDistKeepsTheHandlerExecutable(t *testing.T) {
	dist := stage(t, []byte("\x7fELF\x02\x01\x01"), 0o700)
	out := filepath.Join(t.TempDir(), "bin", "appreg-dist.zip")
	if msg, err := zipDist(t, dist, out); err != nil {
		t.Fatalf("zip-dist failed: %v\n%s", err, msg)
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
		t.Errorf("handler is stored with mode %v (present: %v), want -rwxr-xr-x", m, ok)
	}
	for _, name := range []string{"host.json", "ClientCommand/function.json"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%s is missing from the zip: %v", name, got)
		}
	}
}

// A handler built for this machine instead of Linux is refused before anything is published.
func TestZipDistRefusesANonLinuxHandler(t *testing.T) {
	dist := stage(t, []byte("\xcf\xfa\xed\xfe"), 0o755) // a Mach-O header
	msg, err := zipDist(t, dist, filepath.Join(t.TempDir(), "out.zip"))
	if err == nil || !strings.Contains(msg, "not a Linux (ELF) executable") {
		t.Errorf("zip-dist accepted a non-ELF handler: %v\n%s", err, msg)
	}
}
