package main

import (
	"testing"

	"github.com/rapidfort/kimia/internal/depcheck"
)

// kimia-bud links Buildah and never kimia's BuildKit engine or BuildKit's
// client (Buildah itself uses BuildKit's Dockerfile parser, which is fine).
func TestDeps(t *testing.T) {
	const self = "github.com/rapidfort/kimia/cmd/kimia-bud"
	depcheck.AssertDependency(t, self, "github.com/rapidfort/kimia/engine/buildah")
	depcheck.AssertNoDependency(t, self,
		"github.com/rapidfort/kimia/engine/buildkit",
		"github.com/moby/buildkit/client",
		"github.com/moby/buildkit/session",

		// syft is the SBOM helper's (cmd/kimia-sbom): kimia-bud re-executes
		// itself for every Buildah helper, and each start would pay its
		// package initialisation.
		"github.com/anchore/syft",
		"github.com/anchore/stereoscope",
		"modernc.org/sqlite",
	)
}
