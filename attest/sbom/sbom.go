// Package sbom makes SBOMs (SPDX 2.3 JSON or CycloneDX JSON) of built
// images, offline: nothing is pulled and no scanner image runs. The
// cataloging is syft's (package syftgen), in a helper binary,
// kimia-sbom, that this package starts and talks to: syft is most of a
// binary's size and start-up, and kimia-bud re-executes itself for every
// Buildah helper, so the main binaries leave it out.
package sbom

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

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
	// TempDir is where layers are unpacked; empty means the system's.
	TempDir string
	// Subject is the digest of the image the document describes; zero
	// means the digest of the image given (the helper is given a copy
	// of the image with uncompressed layers, whose digest differs).
	Subject v1.Hash
	// CacheDir, when set, keeps documents between builds (under
	// --cache-dir): the SBOM of an image whose layers and platform were
	// cataloged before is not made again (see cache.go).
	CacheDir string
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
	// Cached is set when the document came from Options.CacheDir.
	Cached bool `json:"-"`
}
