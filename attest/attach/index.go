package attach

import (
	"fmt"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rapidfort/kimia/attest"
)

// AttestationManifest returns a BuildKit-style attestation manifest: an
// OCI image manifest for platform unknown/unknown whose layers are the
// statements (application/vnd.in-toto+json, each annotated with its
// in-toto.io/predicate-type).
func AttestationManifest(statements []attest.Statement) (v1.Image, error) {
	layers := make([]Layer, len(statements))
	for i, s := range statements {
		layers[i] = Layer{
			MediaType:   attest.MediaTypeInToto,
			Data:        s.JSON,
			Annotations: map[string]string{attest.AnnotationPredicateType: s.PredicateType},
		}
	}
	return newArtifact(manifestSpec{
		ConfigMediaType: types.OCIConfigJSON,
		OS:              "unknown",
		Architecture:    "unknown",
		Layers:          layers,
	})
}

// Index returns the index the destinations serve with attestations
// beside the images: base's manifests followed by one attestation
// manifest per image that has statements, each descriptor annotated with
// the image it describes. A single image (single is set, base nil) is
// wrapped in a new index, as buildx does, so its own manifest, and so its
// digest, stay as they are.
func Index(base v1.ImageIndex, single v1.Image, statements map[v1.Hash][]attest.Statement) (v1.ImageIndex, error) {
	idx := base
	if idx == nil {
		if single == nil {
			return nil, fmt.Errorf("nothing to attach attestations to")
		}
		desc, err := partial.Descriptor(single)
		if err != nil {
			return nil, err
		}
		cf, err := single.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("reading the image config: %w", err)
		}
		desc.Platform = &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant, OSVersion: cf.OSVersion}
		mt := types.OCIImageIndex
		if desc.MediaType == types.DockerManifestSchema2 {
			mt = types.DockerManifestList
		}
		idx = mutate.AppendManifests(mutate.IndexMediaType(empty.Index, mt), mutate.IndexAddendum{Add: single, Descriptor: *desc})
	}
	digests := make([]v1.Hash, 0, len(statements))
	for h := range statements {
		digests = append(digests, h)
	}
	// Attestation manifests follow the images in the order of their
	// images, so the index is the same from run to run.
	order, err := imageOrder(idx)
	if err != nil {
		return nil, err
	}
	sort.Slice(digests, func(i, j int) bool { return order[digests[i]] < order[digests[j]] })
	var adds []mutate.IndexAddendum
	for _, h := range digests {
		if _, ok := order[h]; !ok {
			return nil, fmt.Errorf("image %s is not in the index", h)
		}
		am, err := AttestationManifest(statements[h])
		if err != nil {
			return nil, err
		}
		desc, err := partial.Descriptor(am)
		if err != nil {
			return nil, err
		}
		desc.Platform = &v1.Platform{OS: "unknown", Architecture: "unknown"}
		desc.Annotations = map[string]string{
			attest.AnnotationReferenceType:   attest.ReferenceTypeAttestation,
			attest.AnnotationReferenceDigest: h.String(),
		}
		adds = append(adds, mutate.IndexAddendum{Add: am, Descriptor: *desc})
	}
	return mutate.AppendManifests(idx, adds...), nil
}

func imageOrder(idx v1.ImageIndex) (map[v1.Hash]int, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	order := map[v1.Hash]int{}
	for i, d := range im.Manifests {
		order[d.Digest] = i
	}
	return order, nil
}

// IsAttestationManifest reports whether an index entry is an attestation
// manifest rather than a platform image.
func IsAttestationManifest(d v1.Descriptor) bool {
	return d.Annotations[attest.AnnotationReferenceType] == attest.ReferenceTypeAttestation
}
