// Package syftgen catalogs an image with syft, used as a library, for the
// kimia-sbom helper: only that binary links syft.
package syftgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/CycloneDX/cyclonedx-go"
	"github.com/anchore/stereoscope/pkg/file"
	"github.com/anchore/stereoscope/pkg/image"
	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/format/common/cyclonedxhelpers"
	"github.com/anchore/syft/syft/format/common/spdxhelpers"
	"github.com/anchore/syft/syft/source"
	"github.com/anchore/syft/syft/source/stereoscopesource"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spdx/tools-golang/convert"
	"github.com/spdx/tools-golang/spdx/v2/common"
	"github.com/spdx/tools-golang/spdx/v2/v2_3"
	"golang.org/x/sys/unix"

	// syft's RPM database cataloger needs an SQL driver; without it
	// cataloging fails.
	_ "modernc.org/sqlite"

	"github.com/rapidfort/kimia/attest"
	"github.com/rapidfort/kimia/attest/sbom"
)

// syft's license scanner compiles licensecheck's license patterns: one
// to two seconds of CPU, more than cataloging a small image. It is made
// once per process, and Prepare lets the caller make it while the engine
// builds.
var (
	licenseOnce sync.Once
	licenseCtx  context.Context
	licenseErr  error
)

func licenseScanner() (context.Context, error) {
	licenseOnce.Do(func() {
		licenseCtx, licenseErr = syft.SetContextLicenseScanner(context.Background(), syft.DefaultCreateSBOMConfig().Licenses)
	})
	return licenseCtx, licenseErr
}

// Prepare starts, in the background, the one-time set-up Generate needs,
// so that it overlaps other work (the build). The set-up (compiling the
// license scanner's patterns, a second or two of CPU) must not slow the
// build it overlaps on a two-core pod, so its thread yields: nice 10, for
// that thread only (Linux keeps a nice value per thread; the thread ends
// with the goroutine, which keeps it locked).
func Prepare() {
	go func() {
		runtime.LockOSThread()
		_ = unix.Setpriority(unix.PRIO_PROCESS, 0, 10)
		_, _ = licenseScanner()
	}()
}

// withValues is ctx (its deadline and cancellation) with the values of
// another context as a fallback: how the prepared license scanner reaches
// syft, which looks for one on the context it is given.
type withValues struct {
	context.Context
	values context.Context
}

func (c withValues) Value(k any) any {
	if v := c.Context.Value(k); v != nil {
		return v
	}
	return c.values.Value(k)
}

// Generate catalogs img: OS packages (dpkg, apk, rpm), language packages
// and binaries syft recognises (Go binaries with their modules among
// them). The document's creator is the tool of opts; its subject (the
// described root package) is the image by name and digest.
func Generate(ctx context.Context, img v1.Image, opts sbom.Options) (*sbom.Document, error) {
	if opts.Format == "" {
		opts.Format = sbom.FormatSPDX
	}
	if opts.Created.IsZero() {
		opts.Created = time.Now()
	}
	digest := opts.Subject
	if digest == (v1.Hash{}) {
		var err error
		if digest, err = img.Digest(); err != nil {
			return nil, fmt.Errorf("computing the image digest: %w", err)
		}
	}
	tmp, err := os.MkdirTemp(opts.TempDir, "kimia-sbom-")
	if err != nil {
		return nil, fmt.Errorf("creating a directory for the SBOM: %w", err)
	}
	defer os.RemoveAll(tmp)

	gen := file.NewTempDirGenerator("kimia-sbom")
	defer gen.Cleanup()
	simg := image.New(fastImage{img}, gen, tmp, image.WithManifestDigest(digest.String()))
	if err := simg.Read(ctx); err != nil {
		return nil, fmt.Errorf("reading the image for the SBOM: %w", err)
	}
	defer simg.Cleanup()

	name := opts.Name
	if name == "" {
		name = "image"
	}
	src := stereoscopesource.New(simg, stereoscopesource.ImageConfig{
		Reference: name + "@" + digest.String(),
		Alias:     source.Alias{Name: name, Version: digest.String()},
	})
	cfg := syft.DefaultCreateSBOMConfig().WithTool(opts.ToolName, opts.ToolVersion)
	lctx, err := licenseScanner()
	if err != nil {
		return nil, fmt.Errorf("preparing syft's license scanner: %w", err)
	}
	s, err := syft.CreateSBOM(withValues{Context: ctx, values: lctx}, src, cfg)
	if err != nil {
		return nil, fmt.Errorf("cataloging the image: %w", err)
	}

	doc := &sbom.Document{Subject: digest, Packages: s.Artifacts.Packages.PackageCount()}
	switch opts.Format {
	case sbom.FormatSPDX:
		doc.PredicateType = attest.PredicateSPDX
		doc.JSON, err = spdxJSON(spdxhelpers.ToFormatModel(*s), opts, name, digest)
	case sbom.FormatCycloneDX:
		doc.PredicateType = attest.PredicateCycloneDX
		doc.JSON, err = cycloneDXJSON(cyclonedxhelpers.ToFormatModel(*s), opts, digest)
	default:
		return nil, fmt.Errorf("unknown SBOM format %q (want %s or %s)", opts.Format, sbom.FormatSPDX, sbom.FormatCycloneDX)
	}
	if err != nil {
		return nil, err
	}
	return doc, nil
}

// spdxJSON fixes what syft leaves random or to itself (the creation
// time, a random namespace, Anchore as the creating organization) and
// encodes SPDX 2.3.
func spdxJSON(latest *v2_3.Document, opts sbom.Options, name string, digest v1.Hash) ([]byte, error) {
	if latest == nil {
		return nil, fmt.Errorf("converting the SBOM to SPDX: empty document")
	}
	var doc v2_3.Document
	if err := convert.Document(latest, &doc); err != nil {
		return nil, fmt.Errorf("converting the SBOM to SPDX 2.3: %w", err)
	}
	doc.DocumentName = name + "@" + digest.String()
	// The namespace must be unique per document: the image digest is,
	// and keeps the SBOM of an unchanged image unchanged.
	doc.DocumentNamespace = fmt.Sprintf("https://github.com/rapidfort/kimia/spdx/%s/%s", digest.Algorithm, digest.Hex)
	if doc.CreationInfo == nil {
		doc.CreationInfo = &v2_3.CreationInfo{}
	}
	doc.CreationInfo.Creators = []common.Creator{
		{CreatorType: "Tool", Creator: opts.ToolName + "-" + opts.ToolVersion},
		{CreatorType: "Tool", Creator: "syft-" + SyftVersion()},
	}
	doc.CreationInfo.Created = opts.Created.UTC().Format(time.RFC3339)
	return encode(doc)
}

func cycloneDXJSON(bom *cyclonedx.BOM, opts sbom.Options, digest v1.Hash) ([]byte, error) {
	if bom == nil {
		return nil, fmt.Errorf("converting the SBOM to CycloneDX: empty document")
	}
	// A serial number derived from the image keeps the SBOM of an
	// unchanged image unchanged; it is a UUID URN as CycloneDX requires.
	bom.SerialNumber = sbom.SerialNumber(digest)
	if bom.Metadata == nil {
		bom.Metadata = &cyclonedx.Metadata{}
	}
	bom.Metadata.Timestamp = opts.Created.UTC().Format(time.RFC3339)
	var b bytes.Buffer
	enc := cyclonedx.NewBOMEncoder(&b, cyclonedx.BOMFileFormatJSON)
	enc.SetEscapeHTML(false)
	if err := enc.EncodeVersion(bom, cyclonedx.SpecVersion1_6); err != nil {
		return nil, fmt.Errorf("encoding the CycloneDX SBOM: %w", err)
	}
	return bytes.TrimSpace(b.Bytes()), nil
}

func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding the SBOM: %w", err)
	}
	return bytes.TrimSpace(b.Bytes()), nil
}

// SyftVersion is the version of syft linked into this binary.
func SyftVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/anchore/syft" {
				return d.Version
			}
		}
	}
	return "unknown"
}
