package emulator_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestProductLinksNoLocalAzure: the handler and the operator CLI ship to production, so neither
// may import anything of the local Azure, however indirectly. A test file may; go list -deps
// without -test sees only what is linked into the binaries.
func TestProductLinksNoLocalAzure(t *testing.T) {
	for _, pkg := range []string{"./handler", "./cmd/appreg"} {
		t.Run(pkg, func(t *testing.T) {
			cmd := exec.Command("go", "list", "-deps", pkg)
			cmd.Dir = ".."
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", pkg, err)
			}
			deps := strings.Fields(string(out))
			if len(deps) < 10 {
				t.Fatalf("go list -deps %s listed only %v", pkg, deps)
			}
			for _, dep := range deps {
				if dep == "appreg/emulator" || strings.HasPrefix(dep, "appreg/emulator/") {
					t.Errorf("%s links %s, part of the local Azure", pkg, dep)
				}
			}
		})
	}
}
