package flags

import (
	"errors"
	"strings"
	"testing"

	"github.com/rapidfort/kimia/engine"
)

// Every request field an engine may name must reach the user as a flag
// the binary has (or the variable that sets it).
func TestEveryFieldNamesAFlag(t *testing.T) {
	for _, opt := range []string{"buildkit-opt", "buildah-opt"} {
		app := App(Binary{Name: "kimia", Engine: fakeEngine{}, EngineName: "Fake", OptionFlag: opt})
		have := map[string]bool{}
		for _, f := range app.Flags {
			for _, n := range f.Names() {
				have["--"+n] = true
			}
		}
		names := FieldNames(opt)
		for _, f := range engine.Fields {
			n, ok := names[f]
			if !ok {
				t.Errorf("%s: field %s has no name", opt, f)
				continue
			}
			if n == "DOCKER_CONFIG" {
				continue
			}
			for _, flag := range strings.Split(n, " or ") {
				if !have[flag] {
					t.Errorf("%s: field %s is named %s, which is not a flag of the binary", opt, f, flag)
				}
			}
		}
		if len(names) != len(engine.Fields) {
			t.Errorf("%s: %d names for %d fields", opt, len(names), len(engine.Fields))
		}
	}
}

func TestNamedErrorKeepsKind(t *testing.T) {
	err := nameFields(engine.Errorf(engine.KindUsage, "%s %q: bad", engine.FieldCacheRepo, "x"), "buildah-opt")
	if got, want := err.Error(), `--cache-repo "x": bad`; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	if ExitCode(err) != 2 {
		t.Errorf("exit code = %d, want 2", ExitCode(err))
	}
	var ee *engine.Error
	if !errors.As(err, &ee) {
		t.Errorf("errors.As does not find the engine error")
	}
	if got := engine.NameFields("use "+engine.FieldEngineOptions.String(), FieldNames("buildah-opt")); got != "use --buildah-opt" {
		t.Errorf("engine options = %q", got)
	}
}
