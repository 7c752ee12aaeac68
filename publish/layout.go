package publish

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/rapidfort/kimia/registry"
)

// Image is the built artifact read from the engine's layout: one image,
// or an index of per-platform images.
type Image struct {
	// Image is set for a single-platform build.
	Image v1.Image
	// Index is set for a multi-platform build.
	Index v1.ImageIndex
}

// Artifact returns the image or the index.
func (im Image) Artifact() registry.Artifact {
	if im.Index != nil {
		return im.Index
	}
	return im.Image
}

// ReadLayout opens the OCI layout an engine wrote. Its index.json must
// hold exactly one descriptor.
func ReadLayout(dir string) (Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return Image{}, fmt.Errorf("reading the engine's OCI layout %q: %w", dir, err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		return Image{}, fmt.Errorf("reading the engine's OCI layout %q: %w", dir, err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		return Image{}, err
	}
	if len(im.Manifests) != 1 {
		return Image{}, fmt.Errorf("the engine's OCI layout %q holds %d manifests, want 1", dir, len(im.Manifests))
	}
	d := im.Manifests[0]
	switch {
	case d.MediaType.IsIndex():
		idx, err := top.ImageIndex(d.Digest)
		return Image{Index: idx}, err
	case d.MediaType.IsImage():
		img, err := top.Image(d.Digest)
		return Image{Image: img}, err
	}
	return Image{}, fmt.Errorf("the engine's OCI layout %q holds a %s, not an image", dir, d.MediaType)
}
