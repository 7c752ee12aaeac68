package depcheck

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/rapidfort/kimia/"

// imports lists the module's packages and, for each, the module packages
// it imports directly (tests excluded), by path relative to the module.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \" \"}}", module+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	pkgs := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		p, imps, _ := strings.Cut(line, "|")
		var own []string
		for _, i := range strings.Fields(imps) {
			if r, ok := strings.CutPrefix(i, module); ok {
				own = append(own, r)
			}
		}
		pkgs[strings.TrimPrefix(p, module)] = own
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func isEngine(p string) bool { return strings.HasPrefix(p, "engine/") }

// TestArchitecture holds the rules docs/architecture.md draws: the engine
// contract and host facts are leaves, an engine reads only the contract,
// the host facts and the shared Dockerfile reader, no engine imports
// another, and only the binaries' mains know an engine.
func TestArchitecture(t *testing.T) {
	pkgs := imports(t)
	for _, need := range []string{"engine", "hostfacts", "engine/buildkit", "engine/buildah", "flags", "build", "publish", "cmd/kimia", "cmd/kimia-bud"} {
		if _, ok := pkgs[need]; !ok {
			t.Fatalf("package %s is gone: update this test and docs/architecture.md", need)
		}
	}
	for p, imps := range pkgs {
		for _, i := range imps {
			switch {
			case p == "hostfacts":
				t.Errorf("hostfacts imports %s: it must import nothing of kimia", i)
			case p == "engine" && i != "hostfacts":
				t.Errorf("engine imports %s: the contract imports only hostfacts", i)
			case isEngine(p) && !slices.Contains([]string{"engine", "hostfacts", "dockerfile"}, i):
				t.Errorf("%s imports %s: an engine reads only engine, hostfacts and dockerfile (no CLI, no other engine, nothing of the run)", p, i)
			case isEngine(i) && !strings.HasPrefix(p, "cmd/"):
				t.Errorf("%s imports %s: only the binaries' mains may know an engine", p, i)
			}
		}
	}
	for _, main := range []string{"cmd/kimia", "cmd/kimia-bud"} {
		var engines []string
		for _, i := range pkgs[main] {
			if isEngine(i) {
				engines = append(engines, i)
			}
		}
		if len(engines) != 1 {
			t.Errorf("%s imports engines %v: each binary links exactly one", main, engines)
		}
	}
}
