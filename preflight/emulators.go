package preflight

import (
	"errors"

	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/hostfacts"
)

// emulators checks each requested foreign platform. Before a build a
// missing handler is only a warning: a build without RUN steps needs none,
// and the engine reports a RUN that does.
func emulators(platforms []engine.Platform, strict bool) []Result {
	var out []Result
	for _, p := range platforms {
		r := Result{Name: "emulation for " + p.String(), Status: OK}
		if err := engine.Emulator(p); err != nil {
			r.Detail = err.Error()
			r.Status = Warn
			if strict && !errors.Is(err, hostfacts.ErrNotVisible) {
				r.Status = Fail
			}
		} else if engine.Foreign(p) {
			r.Detail = p.Architecture + " binaries run here (QEMU handler qemu-" + hostfacts.QEMUName(p.Architecture) + ")"
		} else {
			r.Detail = "native"
		}
		out = append(out, r)
	}
	return out
}
