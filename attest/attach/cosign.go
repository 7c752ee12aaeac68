package attach

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rapidfort/kimia/attest"
)

// Suffixes of cosign's tags.
const (
	SuffixSignature   = "sig"
	SuffixAttestation = "att"
)

// CosignTag is cosign's tag for what is attached to digest:
// sha256-<hex>.sig or sha256-<hex>.att.
func CosignTag(repo name.Repository, digest v1.Hash, suffix string) name.Tag {
	return repo.Tag(fmt.Sprintf("%s-%s.%s", digest.Algorithm, digest.Hex, suffix))
}

// Signature is one cosign signature of a manifest.
type Signature struct {
	// Payload is the simple-signing payload that was signed.
	Payload []byte
	// Base64 is the signature, base64.
	Base64 string
	// Annotations are extra layer annotations (a keyless signer's
	// certificate and bundle).
	Annotations map[string]string
}

// Envelope is one signed DSSE envelope around an in-toto statement.
type Envelope struct {
	PredicateType string
	JSON          []byte
}

// AppendSignatures adds sigs of digest to repo's sha256-<hex>.sig image,
// keeping the signatures already there, as cosign sign does.
func AppendSignatures(repo name.Repository, digest v1.Hash, sigs []Signature, opts ...remote.Option) (name.Tag, error) {
	layers := make([]Layer, len(sigs))
	for i, s := range sigs {
		ann := map[string]string{attest.AnnotationSignature: s.Base64}
		for k, v := range s.Annotations {
			ann[k] = v
		}
		layers[i] = Layer{MediaType: attest.MediaTypeSimpleSigning, Data: s.Payload, Annotations: ann}
	}
	tag := CosignTag(repo, digest, SuffixSignature)
	return tag, appendToTag(tag, layers, opts)
}

// AppendAttestations adds envelopes about digest to repo's
// sha256-<hex>.att image, keeping the attestations already there, as
// cosign attest does; cosign verify-attestation --type reads them.
func AppendAttestations(repo name.Repository, digest v1.Hash, envs []Envelope, opts ...remote.Option) (name.Tag, error) {
	layers := make([]Layer, len(envs))
	for i, e := range envs {
		layers[i] = Layer{
			MediaType: attest.MediaTypeDSSE,
			Data:      e.JSON,
			Annotations: map[string]string{
				attest.AnnotationCosignPredicateType: e.PredicateType,
				// cosign marks attestation layers with an empty
				// signature: the signature is inside the envelope.
				attest.AnnotationSignature: "",
			},
		}
	}
	tag := CosignTag(repo, digest, SuffixAttestation)
	return tag, appendToTag(tag, layers, opts)
}

// appendToTag writes tag as the image it serves now plus layers; layers
// already there (same blob, same annotations) are not added twice.
func appendToTag(tag name.Tag, layers []Layer, opts []remote.Option) error {
	var existing []v1.Descriptor
	var base v1.Image
	img, err := remote.Image(tag, opts...)
	switch {
	case err == nil:
		m, err := img.Manifest()
		if err != nil {
			return fmt.Errorf("reading %q: %w", tag.String(), err)
		}
		existing, base = m.Layers, img
	case isNotFound(err):
	default:
		return fmt.Errorf("reading %q: %w", tag.String(), err)
	}
	var add []Layer
	for _, l := range layers {
		if !contains(existing, l) {
			add = append(add, l)
		}
	}
	if len(add) == 0 && base != nil {
		return nil
	}
	art, err := newArtifact(manifestSpec{
		ConfigMediaType: types.OCIConfigJSON,
		Existing:        existing,
		Base:            base,
		Layers:          add,
	})
	if err != nil {
		return err
	}
	if err := remote.Write(tag, art, opts...); err != nil {
		return fmt.Errorf("writing %q: %w", tag.String(), err)
	}
	return nil
}

func contains(ds []v1.Descriptor, l Layer) bool {
	h, _, err := v1.SHA256(strings.NewReader(string(l.Data)))
	if err != nil {
		return false
	}
	for _, d := range ds {
		if d.Digest == h && sameAnnotations(d.Annotations, l.Annotations) {
			return true
		}
	}
	return false
}

func sameAnnotations(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func isNotFound(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusNotFound {
			return true
		}
		for _, d := range te.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return true
			}
		}
	}
	return false
}

// WriteSignatureReferrer stores sig as an OCI 1.1 referrer of subject,
// the way cosign's --registry-referrers-mode=oci-1-1 does (artifact type
// application/vnd.dev.cosign.artifact.sig.v1+json). On a registry
// without the referrers API the sha256-<hex> tag index lists it.
func WriteSignatureReferrer(repo name.Repository, subject v1.Descriptor, sig Signature, opts ...remote.Option) (v1.Hash, error) {
	ann := map[string]string{attest.AnnotationSignature: sig.Base64}
	for k, v := range sig.Annotations {
		ann[k] = v
	}
	return writeReferrer(repo, subject, manifestSpec{
		// cosign's OCI 1.1 signatures carry the artifact type as the
		// config media type.
		ConfigMediaType: types.MediaType(attest.ArtifactTypeSignature),
		Config:          []byte("{}"),
		Layers:          []Layer{{MediaType: attest.MediaTypeSimpleSigning, Data: sig.Payload, Annotations: ann}},
	}, opts)
}

// WriteAttestationReferrer stores attestations about subject as one
// OCI 1.1 referrer (artifact type application/vnd.in-toto+json, as
// cosign's WriteAttestationsReferrer). Signed attestations are DSSE
// envelopes; unsigned ones plain in-toto statements.
func WriteAttestationReferrer(repo name.Repository, subject v1.Descriptor, envs []Envelope, statements []attest.Statement, opts ...remote.Option) (v1.Hash, error) {
	var layers []Layer
	for _, e := range envs {
		layers = append(layers, Layer{
			MediaType:   attest.MediaTypeDSSE,
			Data:        e.JSON,
			Annotations: map[string]string{attest.AnnotationPredicateType: e.PredicateType},
		})
	}
	for _, s := range statements {
		layers = append(layers, Layer{
			MediaType:   attest.MediaTypeInToto,
			Data:        s.JSON,
			Annotations: map[string]string{attest.AnnotationPredicateType: s.PredicateType},
		})
	}
	return writeReferrer(repo, subject, manifestSpec{
		ConfigMediaType: "application/vnd.oci.empty.v1+json",
		Config:          []byte("{}"),
		ArtifactType:    attest.MediaTypeInToto,
		Layers:          layers,
	}, opts)
}

func writeReferrer(repo name.Repository, subject v1.Descriptor, spec manifestSpec, opts []remote.Option) (v1.Hash, error) {
	spec.Subject = &v1.Descriptor{MediaType: subject.MediaType, Size: subject.Size, Digest: subject.Digest}
	art, err := newArtifact(spec)
	if err != nil {
		return v1.Hash{}, err
	}
	d, err := art.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	ref := repo.Digest(d.String())
	if err := remote.Write(ref, art, opts...); err != nil {
		return v1.Hash{}, fmt.Errorf("writing the referrer %q of %s: %w", ref.String(), subject.Digest, err)
	}
	return d, nil
}

// Descriptor returns the descriptor of an image or index for a subject.
func Descriptor(art partial.Describable) (v1.Descriptor, error) {
	d, err := partial.Descriptor(art)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return *d, nil
}
