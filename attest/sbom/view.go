package sbom

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// FileLayer is a layer whose uncompressed tar is a file already; the SBOM
// helper reads it in place (a hard link) instead of a copy.
type FileLayer interface {
	UncompressedFile() (string, bool)
}

// writeView writes img into dir as an OCI layout the helper reads: the
// same config, and layers as uncompressed tars, so that the helper reads
// them without decompressing and whatever compression the image has.
func writeView(dir string, img v1.Image) error {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	cd, err := putBlob(blobs, cfg)
	if err != nil {
		return err
	}
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: cd, Size: int64(len(cfg))}}
	for i, l := range ls {
		d, size, err := putLayer(blobs, l)
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.OCIUncompressedLayer, Digest: d, Size: size})
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return err
	}
	md, err := putBlob(blobs, mb)
	if err != nil {
		return err
	}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex,
		Manifests: []v1.Descriptor{{MediaType: types.OCIManifestSchema1, Digest: md, Size: int64(len(mb))}}}
	ib, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), ib, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

func putBlob(dir string, b []byte) (v1.Hash, error) {
	sum := sha256.Sum256(b)
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	return h, os.WriteFile(filepath.Join(dir, h.Hex), b, 0o644)
}

// putLayer puts a layer's uncompressed tar into the layout: a link to
// the file it already is, or a copy of its stream.
func putLayer(dir string, l v1.Layer) (v1.Hash, int64, error) {
	diffID, err := l.DiffID()
	if err != nil {
		return v1.Hash{}, 0, err
	}
	dst := filepath.Join(dir, diffID.Hex)
	if fl, ok := l.(FileLayer); ok {
		if p, ok := fl.UncompressedFile(); ok {
			if fi, err := os.Stat(p); err == nil && os.Link(p, dst) == nil {
				return diffID, fi.Size(), nil
			}
		}
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return v1.Hash{}, 0, err
	}
	defer rc.Close()
	f, err := os.Create(dst)
	if err != nil {
		return v1.Hash{}, 0, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return v1.Hash{}, 0, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != diffID.Hex {
		return v1.Hash{}, 0, fmt.Errorf("the layer's tar is sha256:%s, its diff id says %s", got, diffID)
	}
	return diffID, n, nil
}
