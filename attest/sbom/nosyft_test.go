//go:build nosbom

package sbom

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
)

func TestWithoutSyftGenerateSaysSo(t *testing.T) {
	if Available {
		t.Fatal("Available in a nosbom build")
	}
	if _, err := Generate(context.Background(), empty.Image, Options{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Generate: %v, want ErrUnavailable", err)
	}
}
