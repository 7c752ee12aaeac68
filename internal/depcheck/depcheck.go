// Package depcheck asserts what a binary's import graph may not reach,
// so that each kimia binary links only its own engine.
package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

// AssertNoDependency fails t if pkg imports, directly or not, any package
// whose path starts with one of forbidden.
func AssertNoDependency(t *testing.T, pkg string, forbidden ...string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps %s listed only %d packages: %v", pkg, len(deps), deps)
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("%s depends on %s (forbidden: %s)", pkg, d, f)
			}
		}
	}
}

// AssertDependency fails t unless pkg imports want, so that a forbidden
// list cannot pass just because the graph is empty or renamed.
func AssertDependency(t *testing.T, pkg, want string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	for _, d := range strings.Fields(string(out)) {
		if d == want {
			return
		}
	}
	t.Errorf("%s does not depend on %s", pkg, want)
}
