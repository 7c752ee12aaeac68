package main

import (
	"testing"

	"github.com/rapidfort/kimia/internal/depcheck"
)

// kimia links BuildKit's client and never Buildah or containers/storage.
func TestDeps(t *testing.T) {
	// The graph of the binary as the Makefile builds it: without
	// Buildah's tags (containers_image_openpgp would make syft's
	// stereoscope link containers/image).
	t.Setenv("GOFLAGS", "")
	const self = "github.com/rapidfort/kimia/cmd/kimia"
	depcheck.AssertDependency(t, self, "github.com/rapidfort/kimia/engine/buildkit")
	depcheck.AssertNoDependency(t, self,
		"github.com/rapidfort/kimia/engine/buildah",
		"go.podman.io/buildah",
		"go.podman.io/storage",
		"go.podman.io/image",
		"github.com/containers/buildah",
		"github.com/containers/storage",

		// syft is the SBOM helper's (cmd/kimia-sbom): kimia-bud re-executes
		// itself for every Buildah helper, and each start would pay its
		// package initialisation.
		"github.com/anchore/syft",
		"github.com/anchore/stereoscope",
		"modernc.org/sqlite",
	)
}
