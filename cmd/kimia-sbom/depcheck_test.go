package main

import (
	"testing"

	"github.com/rapidfort/kimia/internal/depcheck"
)

// kimia-sbom links syft and neither engine: it only reads image files.
func TestDeps(t *testing.T) {
	t.Setenv("GOFLAGS", "")
	const self = "github.com/rapidfort/kimia/cmd/kimia-sbom"
	depcheck.AssertDependency(t, self, "github.com/anchore/syft/syft")
	depcheck.AssertNoDependency(t, self,
		"github.com/rapidfort/kimia/engine/buildkit",
		"github.com/rapidfort/kimia/engine/buildah",
		"github.com/moby/buildkit/client",
		"go.podman.io/buildah",
		"go.podman.io/storage",
	)
}
