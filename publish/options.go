// Package publish does everything after the engine, the same way for both
// binaries: it pushes the built image to every destination, writes the
// archives, layouts, digest files and metadata the user asked for, makes
// and attaches SBOMs and provenance, and signs. Each concern has a file of
// its own; Publish runs them in order.
package publish

import (
	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/registry"
)

// Options say what happens to a built image. The CLI resolves them from
// flags; nothing here reaches an engine.
type Options struct {
	Destinations []string
	NoPush       bool
	// TarPath is a docker-archive written with every destination's tag.
	TarPath string
	// OCILayoutPath is a directory written as an OCI image layout.
	OCILayoutPath              string
	DigestFile                 string
	ImageNameWithDigestFile    string
	ImageNameTagWithDigestFile string
	MetadataFile               string
	// PushRetry is how many times a transient push failure is retried,
	// waiting as PushBackoff says between attempts.
	PushRetry                int
	PushBackoff              registry.Backoff
	IgnoreImmutableTagErrors bool
	SkipPushPermissionCheck  bool

	Attest AttestOptions
	Sign   SignOptions
}

// Attestation modes of --attestation.
const (
	AttestationOff = "off"
	AttestationMin = "min"
	AttestationMax = "max"
)

// Attestation storage places of --attestation-storage.
const (
	StorageIndex     = "index"
	StorageCosign    = "cosign"
	StorageBoth      = "both"
	StorageReferrers = "referrers"
)

// AttestOptions configure SBOM and provenance.
type AttestOptions struct {
	SBOM bool
	// SBOMFormat is "spdx-json" (default) or "cyclonedx-json".
	SBOMFormat string
	Provenance bool
	// ProvenanceMode is "min" (no build-arg values) or "max".
	ProvenanceMode string
	BuilderID      string
	// Storage is one of the Storage* constants.
	Storage        string
	SBOMFile       string
	ProvenanceFile string
}

// SignOptions configure cosign-compatible signing.
type SignOptions struct {
	Enabled bool
	// KeyPath is a cosign private key (encrypted) or a plain PEM key.
	KeyPath string
	// PasswordEnv names the environment variable holding the key's
	// password; the value is read when signing, never stored.
	PasswordEnv string
	Annotations []engine.KeyValue
}

// wantsIndex and wantsCosign say where attestations go.
func wantsIndex(s string) bool  { return s == StorageIndex || s == StorageBoth }
func wantsCosign(s string) bool { return s == StorageCosign || s == StorageBoth }
