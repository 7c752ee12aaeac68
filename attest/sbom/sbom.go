// Package sbom catalogs a built image with syft, used as a library, and
// writes the result as SPDX 2.3 JSON or CycloneDX JSON. It reads the
// image kimia holds locally (from the engine's OCI layout): nothing is
// pulled and no scanner image runs.
package sbom

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Available reports whether this binary can make SBOMs: builds with the
// nosbom tag leave syft (about 60 MB) out.
const Available = available

// Formats of Options.Format.
const (
	FormatSPDX      = "spdx-json"
	FormatCycloneDX = "cyclonedx-json"
)

// Options configures Generate.
type Options struct {
	// Format is FormatSPDX (default) or FormatCycloneDX.
	Format string
	// Name is the image's name (a repository), recorded as the
	// document's subject together with the image digest.
	Name string
	// ToolName and ToolVersion name the creating tool (kimia).
	ToolName    string
	ToolVersion string
	// Created is the document's creation time. Zero means now; a
	// reproducible build passes its SOURCE_DATE_EPOCH so that the SBOM
	// of an unchanged image is unchanged.
	Created time.Time
	// TempDir is where syft unpacks layers; empty means the system's.
	TempDir string
}

// Document is an SBOM of one image.
type Document struct {
	// PredicateType is attest.PredicateSPDX or attest.PredicateCycloneDX.
	PredicateType string
	// Subject is the image's manifest digest.
	Subject v1.Hash
	// Packages is how many packages syft found.
	Packages int
	// JSON is the document.
	JSON []byte
}
