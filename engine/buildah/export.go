package buildah

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"

	"github.com/rapidfort/kimia/engine"
)

// exporter hands built images over to the shared layer: each image's
// config and, per layer, the uncompressed tar read from the store when
// asked for, and for a base image's layer the blob its registry serves.
// Nothing is copied or compressed here.
type exporter struct {
	store storage.Store
	sys   *types.SystemContext
	// sources maps a base layer's compressed digest to the repository it
	// was pulled from.
	sources map[digest.Digest]string
	// bk, when set, describes the build to BuildKit's config rules
	// (bkconfig.go) for a platform; nil keeps Buildah's config.
	bk  func(plat engine.Platform) bkInput
	log *slog.Logger
}

// image hands over image id, built for plat.
func (e *exporter) image(ctx context.Context, id string, plat engine.Platform) (engine.Image, error) {
	src, err := istorage.Transport.NewStoreReference(e.store, nil, id)
	if err != nil {
		return engine.Image{}, fmt.Errorf("referring to image %s: %w", id, err)
	}
	raw, err := storedConfig(ctx, src, e.sys)
	if err != nil {
		return engine.Image{}, err
	}
	cfg, err := imageConfig(raw)
	if err != nil {
		return engine.Image{}, err
	}
	var diffIDs struct {
		Created *time.Time `json:"created"`
		RootFS  struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(cfg, &diffIDs); err != nil {
		return engine.Image{}, err
	}
	if e.bk != nil {
		bk, err := buildkitImage(e.bk(plat))
		var c []byte
		if err == nil {
			c, err = bk.config(diffIDs.RootFS.DiffIDs, diffIDs.Created)
		}
		if err != nil {
			e.log.Debug("keeping Buildah's image config: BuildKit's cannot be made for it", "reason", err.Error())
		} else {
			cfg = c
		}
	}
	img, err := e.store.Image(id)
	if err != nil {
		return engine.Image{}, err
	}
	var chain []*storage.Layer
	for l := img.TopLayer; l != ""; {
		layer, err := e.store.Layer(l)
		if err != nil {
			return engine.Image{}, fmt.Errorf("reading layer %s: %w", l, err)
		}
		chain = append(chain, layer)
		l = layer.Parent
	}
	slices.Reverse(chain)
	want := diffIDs.RootFS.DiffIDs
	if len(chain) != len(want) {
		return engine.Image{}, fmt.Errorf("image %s has %d layers in the store, %d in its config", id, len(chain), len(want))
	}
	out := engine.Image{Platform: plat, Config: cfg}
	for i, l := range chain {
		if l.UncompressedDigest != want[i] {
			return engine.Image{}, fmt.Errorf("layer %d of image %s is %s in the store, %s in its config", i, id, l.UncompressedDigest, want[i])
		}
		layerID := l.ID
		el := engine.Layer{DiffID: want[i].String(), Open: func() (io.ReadCloser, error) {
			none := archive.Uncompressed
			return e.store.Diff("", layerID, &storage.DiffOptions{Compression: &none})
		}}
		// A base image's layer keeps the blob its registry serves; any
		// other (built now, or pulled from a registry cache) is
		// compressed by the shared layer, so that an image's digest does
		// not depend on where its layers were cached.
		if src, ok := e.sources[l.CompressedDigest]; ok && blobMediaType(l.CompressionType) != "" && l.CompressedSize > 0 {
			el.Blob = &engine.Blob{MediaType: blobMediaType(l.CompressionType), Digest: l.CompressedDigest.String(), Size: l.CompressedSize, Keep: true, Source: src}
		}
		out.Layers = append(out.Layers, el)
	}
	return out, nil
}

// baseConfig reads the config of the image the build pulled for name, for
// BuildKit's config rules.
func (e *exporter) baseConfig(ctx context.Context) func(name string) (*dockerspec.DockerOCIImage, error) {
	return func(name string) (*dockerspec.DockerOCIImage, error) {
		candidates := []string{name}
		if named, err := reference.ParseNormalizedNamed(name); err == nil {
			candidates = append(candidates, named.String(), reference.TagNameOnly(named).String())
		}
		var img *storage.Image
		var err error
		for _, c := range candidates {
			if img, err = e.store.Image(c); err == nil {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("base image %s: %w", name, err)
		}
		ref, err := istorage.Transport.NewStoreReference(e.store, nil, img.ID)
		if err != nil {
			return nil, err
		}
		raw, err := storedConfig(ctx, ref, e.sys)
		if err != nil {
			return nil, err
		}
		var d dockerspec.DockerOCIImage
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, fmt.Errorf("base image %s: %w", name, err)
		}
		return &d, nil
	}
}

// blobMediaType is the media type of a pulled layer's blob, "" for a
// layer the build made (the store keeps no compressed form of those).
func blobMediaType(c archive.Compression) string {
	switch c {
	case archive.Gzip:
		return ocispec.MediaTypeImageLayerGzip
	case archive.Zstd:
		return ocispec.MediaTypeImageLayerZstd
	}
	return ""
}

// layerSources maps each base image's layer blobs to the repository the
// image was pulled from, so that a push can mount them from there, or
// copy them when the destination lacks them.
func layerSources(s storage.Store, refs []string) map[digest.Digest]string {
	out := map[digest.Digest]string{}
	for _, ref := range refs {
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			continue
		}
		img, err := s.Image(reference.TagNameOnly(named).String())
		if err != nil {
			continue
		}
		keys, err := s.ListImageBigData(img.ID)
		if err != nil {
			continue
		}
		for _, k := range keys {
			if !strings.HasPrefix(k, storage.ImageDigestManifestBigDataNamePrefix) {
				continue
			}
			b, err := s.ImageBigData(img.ID, k)
			if err != nil || manifest.MIMETypeIsMultiImage(manifest.GuessMIMEType(b)) {
				continue
			}
			m, err := manifest.FromBlob(b, manifest.GuessMIMEType(b))
			if err != nil {
				continue
			}
			for _, li := range m.LayerInfos() {
				if _, ok := out[li.Digest]; !ok {
					out[li.Digest] = named.Name()
				}
			}
		}
	}
	return out
}

// storedConfig reads the config blob of an image in the store.
func storedConfig(ctx context.Context, ref types.ImageReference, sys *types.SystemContext) ([]byte, error) {
	img, err := ref.NewImage(ctx, sys)
	if err != nil {
		return nil, fmt.Errorf("opening the built image: %w", err)
	}
	defer img.Close()
	b, err := img.ConfigBlob(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the built image's config: %w", err)
	}
	return b, nil
}
