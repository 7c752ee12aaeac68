package buildkit

import (
	"fmt"

	"github.com/distribution/reference"
)

// imageHost returns the registry host of an image reference, as BuildKit
// names it ("docker.io" for Docker Hub).
func imageHost(ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("parsing image reference %q: %w", ref, err)
	}
	return reference.Domain(named), nil
}
