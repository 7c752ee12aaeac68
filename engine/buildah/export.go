package buildah

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/directory"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/compression"
	"go.podman.io/image/v5/signature"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"

	"github.com/rapidfort/kimia/engine"
)

// Docker media types kimia-bud writes for --format=docker.
const (
	dockerLayerGzip   = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	dockerLayerPlain  = "application/vnd.docker.image.rootfs.diff.tar"
	dockerConfigType  = manifest.DockerV2Schema2ConfigMediaType
	dockerManifest    = manifest.DockerV2Schema2MediaType
	dockerManifestLst = manifest.DockerV2ListMediaType
)

// exporter writes built images from the store into the OCI layout the
// shared outputs read.
type exporter struct {
	store  storage.Store
	sys    *types.SystemContext
	policy *signature.PolicyContext
	// scratch holds per-image copies before their blobs move into the
	// layout (same file system, so moves are renames).
	scratch string
	layout  *layoutWriter
	format  string
	comp    engine.Compression
	// annotations go on every image manifest (OCI format only).
	annotations map[string]string
}

// compressionFor maps the request's compression to containers/image's.
func compressionFor(c engine.Compression) (algo *compression.Algorithm, level *int, err error) {
	switch c.Algorithm {
	case "", "gzip":
		a := compression.Gzip
		algo = &a
	case "zstd":
		a := compression.Zstd
		algo = &a
	case "uncompressed":
		return nil, nil, nil
	default:
		return nil, nil, engine.Errorf(engine.KindUsage, "--compression=%s: want gzip, zstd or uncompressed", c.Algorithm)
	}
	if c.Level >= 0 {
		l := c.Level
		level = &l
	}
	return algo, level, nil
}

// export copies image id out of the store, compressed as asked, and
// writes its config and manifest into the layout. It returns the
// manifest's descriptor.
func (e *exporter) export(ctx context.Context, id string, plat engine.Platform) (ocispec.Descriptor, error) {
	src, err := istorage.Transport.NewStoreReference(e.store, nil, id)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("referring to image %s: %w", id, err)
	}
	raw, err := storedConfig(ctx, src, e.sys)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cfg, err := imageConfig(raw)
	if err != nil {
		return ocispec.Descriptor{}, err
	}

	tmp, err := os.MkdirTemp(e.scratch, "image-")
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer os.RemoveAll(tmp)
	dst, err := directory.NewReference(tmp)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	dsys := *e.sys
	algo, level, err := compressionFor(e.comp)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if algo != nil {
		dsys.DirForceCompress = true
		dsys.CompressionFormat = algo
		dsys.CompressionLevel = level
	} else {
		dsys.DirForceDecompress = true
	}
	// The manifest containers/image writes is only a carrier for the
	// compressed layers: config and manifest are rewritten below.
	if _, err := copy.Image(ctx, e.policy, dst, src, &copy.Options{
		SourceCtx:              e.sys,
		DestinationCtx:         &dsys,
		ForceManifestMIMEType:  ocispec.MediaTypeImageManifest,
		ForceCompressionFormat: algo != nil,
	}); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("copying the image out of the store: %w", err)
	}
	var carrier ocispec.Manifest
	b, err := os.ReadFile(filepath.Join(tmp, "manifest.json"))
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := json.Unmarshal(b, &carrier); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("reading the exported manifest: %w", err)
	}

	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, Layers: []ocispec.Descriptor{}}
	for _, l := range carrier.Layers {
		if err := e.layout.adopt(filepath.Join(tmp, l.Digest.Encoded()), l.Digest); err != nil {
			return ocispec.Descriptor{}, err
		}
		d := ocispec.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size}
		if e.format == engine.FormatDocker {
			switch l.MediaType {
			case ocispec.MediaTypeImageLayerGzip:
				d.MediaType = dockerLayerGzip
			case ocispec.MediaTypeImageLayer:
				d.MediaType = dockerLayerPlain
			default:
				return ocispec.Descriptor{}, engine.Errorf(engine.KindUsage, "--format=docker: Docker manifests cannot hold %s layers; use --compression=gzip or --format=oci", l.MediaType)
			}
		}
		m.Layers = append(m.Layers, d)
	}
	m.Config, err = e.layout.put(cfg, ocispec.MediaTypeImageConfig)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if e.format == engine.FormatDocker {
		m.MediaType = dockerManifest
		m.Config.MediaType = dockerConfigType
	} else {
		m.MediaType = ocispec.MediaTypeImageManifest
		if len(e.annotations) > 0 {
			m.Annotations = e.annotations
		}
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := e.layout.put(mb, m.MediaType)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc.Platform = &ocispec.Platform{OS: plat.OS, Architecture: plat.Architecture, Variant: plat.Variant}
	return desc, nil
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

// index writes the manifest list of a multi-platform build.
func (e *exporter) index(manifests []ocispec.Descriptor) (ocispec.Descriptor, error) {
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests}
	if e.format == engine.FormatDocker {
		idx.MediaType = dockerManifestLst
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return e.layout.put(b, idx.MediaType)
}

// layoutWriter writes an OCI image layout.
type layoutWriter struct{ dir string }

func newLayoutWriter(dir string) (*layoutWriter, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return nil, err
	}
	return &layoutWriter{dir: dir}, nil
}

func (l *layoutWriter) blobPath(d digest.Digest) string {
	return filepath.Join(l.dir, "blobs", d.Algorithm().String(), d.Encoded())
}

// put stores b as a blob.
func (l *layoutWriter) put(b []byte, mediaType string) (ocispec.Descriptor, error) {
	d := digest.FromBytes(b)
	if err := os.WriteFile(l.blobPath(d), b, 0o644); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("writing blob %s: %w", d, err)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}, nil
}

// adopt moves a verified blob file into the layout.
func (l *layoutWriter) adopt(path string, d digest.Digest) error {
	dst := l.blobPath(d)
	if _, err := os.Stat(dst); err == nil {
		return nil // the same layer in another platform's image
	}
	err := os.Rename(path, dst)
	if errors.Is(err, syscall.EXDEV) {
		err = copyFile(path, dst)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("the exported image lacks layer %s", d)
		}
		return fmt.Errorf("moving layer %s into the layout: %w", d, err)
	}
	return os.Chmod(dst, 0o644)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	return out.Close()
}

// finish writes index.json with the one descriptor the shared outputs
// expect.
func (l *layoutWriter) finish(d ocispec.Descriptor) error {
	top := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{d}}
	b, err := json.Marshal(top)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(l.dir, "index.json"), b, 0o644)
}
