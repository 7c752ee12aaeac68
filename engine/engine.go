// Package engine defines what kimia asks of an image-building backend and
// what it gets back. An engine turns a Request into images (per platform,
// a config and its layers); everything after that (compressing, manifests,
// pushing, archives, digest files, attestations, signatures) is shared, so
// both binaries behave the same.
package engine

import (
	"context"
)

// Engine builds images. Implementations live in engine/buildkit and
// engine/buildah; each binary links exactly one of them.
type Engine interface {
	// Info reports what the engine is and what it can do, without building.
	Info(ctx context.Context) (Info, error)
	// Build turns req into images. It may use req.OutputDir, an empty
	// directory the caller removes after the Result's Cleanup. It never
	// pushes.
	Build(ctx context.Context, req *Request) (*Result, error)
}

// Validator is an Engine that checks a request before anything is
// fetched, pulled or started, so that a usage error (an engine option, the
// cache repository, a secret's variable) comes before a git clone and not
// after. The request has no context yet (ContextDir, Dockerfile and
// OutputDir are empty). Errors name request fields, not flags.
type Validator interface {
	Validate(req *Request) error
}

// Feature names something an engine may or may not support. Features are
// reported by Info so that callers (and tests) learn about gaps up front
// rather than by failure.
type Feature string

// Features an engine can report.
const (
	FeatureRootless      Feature = "rootless"
	FeatureMultiPlatform Feature = "multi-platform"
	FeatureLocalCache    Feature = "local-cache"
	FeatureRegistryCache Feature = "registry-cache"
	FeatureSecrets       Feature = "secrets"
	FeatureSSH           Feature = "ssh"
	FeatureReproducible  Feature = "reproducible"
	FeatureDockerFormat  Feature = "docker-format"
)

// Info describes an engine.
type Info struct {
	// Name is the engine's short name: "buildkit" or "buildah".
	Name string `json:"name"`
	// Version is the version of the engine's code kimia was built with.
	Version string `json:"version"`
	// Daemon describes a helper process the engine runs, if any
	// (buildkitd), with its version.
	Daemon *Component `json:"daemon,omitempty"`
	// StorageDrivers lists the storage drivers the engine accepts.
	StorageDrivers []string `json:"storageDrivers"`
	// Features lists what the engine supports.
	Features []Feature `json:"features"`
}

// Component is a named, versioned piece of software.
type Component struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Path    string `json:"path,omitempty"`
}

// Has reports whether the engine supports f.
func (i Info) Has(f Feature) bool {
	for _, g := range i.Features {
		if g == f {
			return true
		}
	}
	return false
}
