//go:build nosbom

package sbom

import (
	"context"
	"errors"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const available = false

// ErrUnavailable is returned by Generate in binaries built without syft.
var ErrUnavailable = errors.New("this kimia binary was built without SBOM support (build tag nosbom)")

// Generate fails: this binary was built without syft.
func Generate(ctx context.Context, img v1.Image, opts Options) (*Document, error) {
	return nil, ErrUnavailable
}

// Prepare does nothing: there is no syft to prepare.
func Prepare() {}
