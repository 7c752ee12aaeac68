// Package attach stores attestations and signatures beside an image, in
// the three places tools look for them:
//
//   - inside the image index, BuildKit/buildx style: one attestation
//     manifest per platform image (platform unknown/unknown, annotated
//     vnd.docker.reference.type=attestation-manifest and
//     vnd.docker.reference.digest), whose layers are in-toto statements;
//   - cosign style, in the repository's sha256-<hex>.sig and
//     sha256-<hex>.att tags, appended to what is there;
//   - as OCI 1.1 referrers (manifests with a subject), which
//     go-containerregistry falls back to the sha256-<hex> tag index for on
//     registries without the referrers API.
package attach

import (
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Layer is one blob of an artifact manifest.
type Layer struct {
	MediaType   types.MediaType
	Data        []byte
	Annotations map[string]string
}

// artifact is an image manifest built byte for byte: kimia controls every
// field, so the same statements always give the same digest.
type artifact struct {
	manifest []byte
	config   []byte
	blobs    map[v1.Hash]v1.Layer
	// base serves blobs this manifest references but kimia did not
	// create (existing signatures it appends to).
	base v1.Image
}

// manifestSpec says how to build an artifact.
type manifestSpec struct {
	// ConfigMediaType and Config are the config blob; Config nil means a
	// config listing the layers as an image config does.
	ConfigMediaType types.MediaType
	Config          []byte
	// OS and Architecture go into a generated config.
	OS, Architecture string
	// Existing are layers already in the repository, kept first.
	Existing     []v1.Descriptor
	Base         v1.Image
	Layers       []Layer
	Subject      *v1.Descriptor
	ArtifactType string
	Annotations  map[string]string
}

func newArtifact(s manifestSpec) (v1.Image, error) {
	a := &artifact{blobs: map[v1.Hash]v1.Layer{}, base: s.Base}
	layers := append([]v1.Descriptor(nil), s.Existing...)
	for _, l := range s.Layers {
		sl := static.NewLayer(l.Data, l.MediaType)
		d, err := sl.Digest()
		if err != nil {
			return nil, err
		}
		a.blobs[d] = sl
		layers = append(layers, v1.Descriptor{
			MediaType:   l.MediaType,
			Size:        int64(len(l.Data)),
			Digest:      d,
			Annotations: l.Annotations,
		})
	}
	cfg := s.Config
	if cfg == nil {
		// An image config whose diff ids are the (uncompressed) layers,
		// as BuildKit and cosign write them.
		c := struct {
			Architecture string         `json:"architecture"`
			OS           string         `json:"os"`
			Config       struct{}       `json:"config"`
			RootFS       map[string]any `json:"rootfs"`
		}{Architecture: s.Architecture, OS: s.OS}
		ids := make([]string, len(layers))
		for i, l := range layers {
			ids[i] = l.Digest.String()
		}
		c.RootFS = map[string]any{"type": "layers", "diff_ids": ids}
		var err error
		if cfg, err = json.Marshal(c); err != nil {
			return nil, err
		}
	}
	cl := static.NewLayer(cfg, s.ConfigMediaType)
	cd, err := cl.Digest()
	if err != nil {
		return nil, err
	}
	a.config = cfg
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: s.ConfigMediaType, Size: int64(len(cfg)), Digest: cd},
		Layers:        layers,
		Annotations:   s.Annotations,
		Subject:       s.Subject,
		ArtifactType:  s.ArtifactType,
	}
	if m.Layers == nil {
		m.Layers = []v1.Descriptor{}
	}
	if a.manifest, err = json.Marshal(m); err != nil {
		return nil, err
	}
	return partial.CompressedToImage(a)
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return a.config, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }

func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := a.blobs[h]; ok {
		return l, nil
	}
	if a.base != nil {
		return a.base.LayerByDigest(h)
	}
	return nil, fmt.Errorf("blob %s is not part of this manifest", h)
}
