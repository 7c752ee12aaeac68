package buildkit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rapidfort/kimia/engine"
)

// images reads the OCI layout the exporter wrote (exportAttrs) into what
// the shared layer assembles: per platform, the config as BuildKit wrote
// it, and each layer as the uncompressed tar BuildKit exported (a layer
// the build made) or, for a base image's layer (baseLayers, by diff ID,
// with its repository), the compressed blob it pulled. A compressed layer
// that is not a base image's (one imported from a registry cache) is
// handed over uncompressed, so that the shared layer compresses it as it
// would have compressed it new: an image's digest does not depend on
// where its layers were cached.
func images(dir string, baseLayers map[string]string) ([]engine.Image, error) {
	var top ocispec.Index
	if err := readJSON(dir, "index.json", &top); err != nil {
		return nil, err
	}
	if len(top.Manifests) != 1 {
		return nil, fmt.Errorf("the exported layout holds %d manifests, want 1", len(top.Manifests))
	}
	root := top.Manifests[0]
	manifests := []ocispec.Descriptor{root}
	if root.MediaType == ocispec.MediaTypeImageIndex {
		var idx ocispec.Index
		if err := readJSON(dir, blobPath(root), &idx); err != nil {
			return nil, err
		}
		manifests = idx.Manifests
	}
	out := make([]engine.Image, 0, len(manifests))
	for _, md := range manifests {
		img, err := readImage(dir, md, baseLayers)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

func readImage(dir string, md ocispec.Descriptor, baseLayers map[string]string) (engine.Image, error) {
	var m ocispec.Manifest
	if err := readJSON(dir, blobPath(md), &m); err != nil {
		return engine.Image{}, err
	}
	cfg, err := os.ReadFile(filepath.Join(dir, blobPath(m.Config)))
	if err != nil {
		return engine.Image{}, fmt.Errorf("reading the exported config: %w", err)
	}
	var c ocispec.Image
	if err := json.Unmarshal(cfg, &c); err != nil {
		return engine.Image{}, fmt.Errorf("reading the exported config: %w", err)
	}
	if len(c.RootFS.DiffIDs) != len(m.Layers) {
		return engine.Image{}, fmt.Errorf("the exported config lists %d layers, its manifest %d", len(c.RootFS.DiffIDs), len(m.Layers))
	}
	img := engine.Image{Config: cfg, Platform: engine.Platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant}}
	if p := md.Platform; p != nil {
		img.Platform = engine.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
	}
	for i, ld := range m.Layers {
		path := filepath.Join(dir, blobPath(ld))
		open := func() (io.ReadCloser, error) { return os.Open(path) }
		// A layer the store declined (the destinations have what it
		// becomes) has no file: the shared layer knows its blob.
		_, err := os.Stat(path)
		held := err == nil
		l := engine.Layer{DiffID: c.RootFS.DiffIDs[i].String()}
		switch repo, base := baseLayers[l.DiffID]; {
		case ld.MediaType == ocispec.MediaTypeImageLayer:
			l.Open = open
			if held {
				l.File = path
			}
		default:
			l.Blob = &engine.Blob{MediaType: ld.MediaType, Digest: ld.Digest.String(), Size: ld.Size, Keep: base, Source: repo}
			if held {
				l.Blob.Open = open
			}
			if !base {
				l.Open = decompressing(open, ld.MediaType)
			}
		}
		img.Layers = append(img.Layers, l)
	}
	return img, nil
}

// decompressing opens a compressed layer blob as its tar.
func decompressing(open func() (io.ReadCloser, error), mediaType string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		rc, err := open()
		if err != nil {
			return nil, err
		}
		var r io.ReadCloser
		switch {
		case strings.HasSuffix(mediaType, "+zstd") || strings.HasSuffix(mediaType, ".zstd"):
			zr, err := zstd.NewReader(rc)
			if err != nil {
				rc.Close()
				return nil, err
			}
			r = zr.IOReadCloser()
		default:
			zr, err := gzip.NewReader(rc)
			if err != nil {
				rc.Close()
				return nil, err
			}
			r = zr
		}
		return &stacked{ReadCloser: r, under: rc}, nil
	}
}

// stacked closes a reader and what it reads from.
type stacked struct {
	io.ReadCloser
	under io.Closer
}

func (s *stacked) Close() error {
	s.ReadCloser.Close()
	return s.under.Close()
}

func blobPath(d ocispec.Descriptor) string {
	return filepath.Join("blobs", d.Digest.Algorithm().String(), d.Digest.Encoded())
}

func readJSON(dir, rel string, v any) error {
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		return fmt.Errorf("reading the exported layout: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("reading the exported layout's %s: %w", rel, err)
	}
	return nil
}
