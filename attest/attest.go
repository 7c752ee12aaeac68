// Package attest holds what kimia's supply-chain packages share: in-toto
// statements about a built image, the predicate and media types they use,
// and the annotations that tie them to the image. The work is split by
// concern: attest/sbom (what is in the image), attest/provenance (how it
// was built), attest/sign (cosign-compatible signatures, offline) and
// attest/attach (where attestations and signatures are stored).
package attest

import (
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	intoto "github.com/in-toto/in-toto-golang/in_toto"
	"github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/common"
	slsa1 "github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/v1"
)

// Predicate types, as cosign's --type names them: spdxjson,
// cyclonedx and slsaprovenance1.
const (
	PredicateSPDX       = intoto.PredicateSPDX
	PredicateCycloneDX  = intoto.PredicateCycloneDX
	PredicateProvenance = slsa1.PredicateSLSAProvenance
)

// Media types and annotations of the formats kimia writes.
const (
	// MediaTypeInToto is an in-toto statement (a layer of an attestation
	// manifest, buildx style).
	MediaTypeInToto = "application/vnd.in-toto+json"
	// MediaTypeDSSE is a DSSE envelope around an in-toto statement (a
	// layer of cosign's .att image).
	MediaTypeDSSE = "application/vnd.dsse.envelope.v1+json"
	// MediaTypeSimpleSigning is cosign's signature payload.
	MediaTypeSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	// ArtifactTypeSignature is cosign's artifact type for signatures
	// stored as OCI 1.1 referrers.
	ArtifactTypeSignature = "application/vnd.dev.cosign.artifact.sig.v1+json"

	// AnnotationPredicateType names a layer's predicate type (buildx).
	AnnotationPredicateType = "in-toto.io/predicate-type"
	// AnnotationCosignPredicateType names a .att layer's predicate type
	// (cosign).
	AnnotationCosignPredicateType = "predicateType"
	// AnnotationReferenceType and AnnotationReferenceDigest mark an
	// attestation manifest in an index and the image it describes.
	AnnotationReferenceType   = "vnd.docker.reference.type"
	AnnotationReferenceDigest = "vnd.docker.reference.digest"
	// ReferenceTypeAttestation is the value of AnnotationReferenceType.
	ReferenceTypeAttestation = "attestation-manifest"
	// AnnotationSignature carries a cosign signature, base64.
	AnnotationSignature = "dev.cosignproject.cosign/signature"
)

// Statement is one in-toto statement about one or more manifests.
type Statement struct {
	// PredicateType is one of the Predicate* constants.
	PredicateType string
	// Platform is the platform of the image the statement is about
	// ("linux/amd64").
	Platform string
	// JSON is the statement, in-toto Statement v1.
	JSON []byte
}

// Subject names a manifest for a statement.
type Subject struct {
	// Name is informational: the image's name.
	Name   string
	Digest v1.Hash
}

// NewStatement wraps predicate (a value or a json.RawMessage) in an
// in-toto Statement v1 about subjects.
func NewStatement(predicateType string, subjects []Subject, predicate any) ([]byte, error) {
	st := intoto.Statement{
		StatementHeader: intoto.StatementHeader{
			Type:          intoto.StatementInTotoV1,
			PredicateType: predicateType,
		},
		Predicate: predicate,
	}
	for _, s := range subjects {
		st.Subject = append(st.Subject, intoto.Subject{
			Name:   s.Name,
			Digest: common.DigestSet{s.Digest.Algorithm: s.Digest.Hex},
		})
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encoding the %s statement: %w", predicateType, err)
	}
	return b, nil
}

// Resubject returns the statement st with its subjects replaced, keeping
// its predicate byte for byte.
func Resubject(st []byte, subjects []Subject) ([]byte, error) {
	var s struct {
		PredicateType string          `json:"predicateType"`
		Predicate     json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal(st, &s); err != nil {
		return nil, fmt.Errorf("reading an in-toto statement: %w", err)
	}
	return NewStatement(s.PredicateType, subjects, s.Predicate)
}

// ShortType is the name cosign's --type gives a predicate type.
func ShortType(predicateType string) string {
	switch predicateType {
	case PredicateSPDX:
		return "spdxjson"
	case PredicateCycloneDX:
		return "cyclonedx"
	case PredicateProvenance:
		return "slsaprovenance1"
	}
	return predicateType
}
