package buildkit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/plugins/content/local"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// skippingStore is where the OCI exporter writes the image: a local
// content store under the layout directory that declines the layer blobs
// the shared layer says it can do without (engine.Request.HaveBlob), as
// if it had them. buildkitd's exporter copies every blob of the image to
// the client otherwise, a base image's included, even on a rebuild whose
// layers every destination already has.
type skippingStore struct {
	content.Store
	have func(digest.Digest) bool
}

func newSkippingStore(dir string, have func(digest.Digest) bool) (*skippingStore, error) {
	s, err := local.NewStore(dir)
	if err != nil {
		return nil, err
	}
	return &skippingStore{Store: s, have: have}, nil
}

// Writer implements content.Store.
func (s *skippingStore) Writer(ctx context.Context, opts ...content.WriterOpt) (content.Writer, error) {
	if s.have != nil {
		var wo content.WriterOpts
		for _, o := range opts {
			if err := o(&wo); err != nil {
				return nil, err
			}
		}
		// The exporter names a layer's write "layer-<digest>"; configs and
		// manifests are always taken.
		if strings.HasPrefix(wo.Ref, "layer-") && wo.Desc.Digest != "" && s.have(wo.Desc.Digest) {
			return nil, fmt.Errorf("layer %s: %w", wo.Desc.Digest, cerrdefs.ErrAlreadyExists)
		}
	}
	return s.Store.Writer(ctx, opts...)
}

// writeIndex writes the layout's index.json for the image the exporter
// reported (a store, unlike a directory, gets none from the client).
func writeIndex(dir string, resp map[string]string) error {
	b, err := base64.StdEncoding.DecodeString(resp[exptypes.ExporterImageDescriptorKey])
	if err != nil {
		return fmt.Errorf("reading the exported image's descriptor: %w", err)
	}
	var desc ocispec.Descriptor
	if err := json.Unmarshal(b, &desc); err != nil || desc.Digest == "" {
		return fmt.Errorf("reading the exported image's descriptor %q: %v", b, err)
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, Platform: desc.Platform}}}
	ib, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "index.json"), ib, 0o644)
}
