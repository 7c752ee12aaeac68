package assemble

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/rapidfort/kimia/engine"
)

// layer is a v1.Layer whose bytes are read only when asked for.
type layer struct {
	digest, diffID v1.Hash
	size           int64
	mediaType      types.MediaType
	compressed     func() (io.ReadCloser, error)
	uncompressed   func() (io.ReadCloser, error)
	// source is the repository the blob came from, for mounts.
	source string
	// file is the uncompressed tar's path, when it is a file.
	file string
}

var _ v1.Layer = (*layer)(nil)

func (l *layer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *layer) DiffID() (v1.Hash, error)             { return l.diffID, nil }
func (l *layer) Size() (int64, error)                 { return l.size, nil }
func (l *layer) MediaType() (types.MediaType, error)  { return l.mediaType, nil }
func (l *layer) Compressed() (io.ReadCloser, error)   { return l.compressed() }
func (l *layer) Uncompressed() (io.ReadCloser, error) { return l.uncompressed() }
func (l *layer) descriptor() v1.Descriptor {
	return v1.Descriptor{MediaType: l.mediaType, Digest: l.digest, Size: l.size}
}

// sizeFromOpen counts the bytes of an uncompressed layer pushed as it is.
func (l *layer) sizeFromOpen() error {
	rc, err := l.compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	l.size = n
	return err
}

// Source is the repository the blob came from (registry.Sourced), for
// mounts.
func (l *layer) Source() string { return l.source }

// UncompressedFile is the layer's tar when it is a file
// (sbom.FileLayer).
func (l *layer) UncompressedFile() (string, bool) { return l.file, l.file != "" }

func decompress(open func() (io.ReadCloser, error), algorithm string) (io.ReadCloser, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	switch algorithm {
	case Gzip:
		zr, err := gzip.NewReader(rc)
		if err != nil {
			rc.Close()
			return nil, err
		}
		return readCloser{zr, func() error { zr.Close(); return rc.Close() }}, nil
	case Zstd:
		zr, err := zstd.NewReader(rc)
		if err != nil {
			rc.Close()
			return nil, err
		}
		return readCloser{zr, func() error { zr.Close(); return rc.Close() }}, nil
	}
	return rc, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// image is one assembled platform image.
type image struct {
	config   []byte
	manifest []byte
	layers   []*layer
	mt       types.MediaType
}

var _ v1.Image = (*image)(nil)

// marshalManifest writes manifests and indexes as BuildKit's exporter
// does (indented by two spaces), so both engines' images have one form.
func marshalManifest(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }

func newImage(config []byte, layers []*layer, o Options) (*image, error) {
	m := struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     types.MediaType   `json:"mediaType"`
		Config        v1.Descriptor     `json:"config"`
		Layers        []v1.Descriptor   `json:"layers"`
		Annotations   map[string]string `json:"annotations,omitempty"`
	}{
		SchemaVersion: 2,
		MediaType:     manifestMediaType(o.Format),
		Config:        v1.Descriptor{MediaType: configMediaType(o.Format), Digest: sha(config), Size: int64(len(config))},
		Layers:        make([]v1.Descriptor, len(layers)),
		Annotations:   annotations(o.Annotations),
	}
	for i, l := range layers {
		m.Layers[i] = l.descriptor()
	}
	b, err := marshalManifest(m)
	if err != nil {
		return nil, err
	}
	return &image{config: config, manifest: b, layers: layers, mt: m.MediaType}, nil
}

func annotations(kvs []engine.KeyValue) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		out[kv.Key] = kv.Value
	}
	return out
}

func sha(b []byte) v1.Hash {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h
}

func (i *image) Layers() ([]v1.Layer, error) {
	out := make([]v1.Layer, len(i.layers))
	for n, l := range i.layers {
		out[n] = l
	}
	return out, nil
}
func (i *image) MediaType() (types.MediaType, error) { return i.mt, nil }
func (i *image) Size() (int64, error)                { return int64(len(i.manifest)), nil }
func (i *image) ConfigName() (v1.Hash, error)        { return sha(i.config), nil }
func (i *image) RawConfigFile() ([]byte, error)      { return i.config, nil }
func (i *image) ConfigFile() (*v1.ConfigFile, error) {
	return v1.ParseConfigFile(bytes.NewReader(i.config))
}
func (i *image) Digest() (v1.Hash, error)     { return sha(i.manifest), nil }
func (i *image) RawManifest() ([]byte, error) { return i.manifest, nil }
func (i *image) Manifest() (*v1.Manifest, error) {
	return v1.ParseManifest(bytes.NewReader(i.manifest))
}

func (i *image) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	if h == sha(i.config) {
		return configLayer{i}, nil
	}
	for _, l := range i.layers {
		if l.digest == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("no layer %s in the image", h)
}

func (i *image) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	for _, l := range i.layers {
		if l.diffID == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("no layer with diff id %s in the image", h)
}

// configLayer serves the config blob where a layer is expected.
type configLayer struct{ i *image }

func (c configLayer) Digest() (v1.Hash, error) { return sha(c.i.config), nil }
func (c configLayer) DiffID() (v1.Hash, error) { return sha(c.i.config), nil }
func (c configLayer) Size() (int64, error)     { return int64(len(c.i.config)), nil }
func (c configLayer) MediaType() (types.MediaType, error) {
	return configMediaTypeOf(c.i.mt), nil
}
func (c configLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(c.i.config)), nil
}
func (c configLayer) Uncompressed() (io.ReadCloser, error) { return c.Compressed() }

func configMediaTypeOf(manifest types.MediaType) types.MediaType {
	if manifest == types.DockerManifestSchema2 {
		return types.DockerConfigJSON
	}
	return types.OCIConfigJSON
}

// index is the assembled index of a multi-platform image.
type index struct {
	raw    []byte
	mt     types.MediaType
	images map[v1.Hash]*image
}

var _ v1.ImageIndex = (*index)(nil)

func newIndex(imgs []*image, in []engine.Image, o Options) (*index, error) {
	idx := struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     types.MediaType   `json:"mediaType"`
		Manifests     []v1.Descriptor   `json:"manifests"`
		Annotations   map[string]string `json:"annotations,omitempty"`
	}{SchemaVersion: 2, MediaType: indexMediaType(o.Format), Annotations: annotations(o.Annotations)}
	out := &index{mt: idx.MediaType, images: map[v1.Hash]*image{}}
	for n, img := range imgs {
		d, _ := img.Digest()
		if _, dup := out.images[d]; dup {
			return nil, fmt.Errorf("two platforms built the same image %s", d)
		}
		p := in[n].Platform
		out.images[d] = img
		idx.Manifests = append(idx.Manifests, v1.Descriptor{
			MediaType: img.mt, Digest: d, Size: int64(len(img.manifest)),
			Platform: &v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant},
		})
	}
	var err error
	if out.raw, err = marshalManifest(idx); err != nil {
		return nil, err
	}
	return out, nil
}

func (x *index) MediaType() (types.MediaType, error) { return x.mt, nil }
func (x *index) Digest() (v1.Hash, error)            { return sha(x.raw), nil }
func (x *index) Size() (int64, error)                { return int64(len(x.raw)), nil }
func (x *index) RawManifest() ([]byte, error)        { return x.raw, nil }
func (x *index) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(x.raw))
}

func (x *index) Image(h v1.Hash) (v1.Image, error) {
	if img, ok := x.images[h]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("no image %s in the index", h)
}

func (x *index) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return nil, errors.New("the index holds no nested index")
}
