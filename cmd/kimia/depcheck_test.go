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
	)
}
