package publish

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rapidfort/kimia/attest/sbom"
	"github.com/rapidfort/kimia/attest/sign"
	"github.com/rapidfort/kimia/buildctx"
	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/registry"
)

// Build is what Publish needs to know of the build that made the image.
type Build struct {
	// Image is what the engine built.
	Image Image
	// Request is what the engine was asked for; Publish only reads it.
	Request *engine.Request
	Engine  engine.Info
	Result  *engine.Result
	// Source is the context as the user named it; Context is where it
	// was prepared.
	Source  buildctx.Source
	Context *buildctx.Prepared
	// Started is when the run began; BuildTime is the engine's part.
	Started   time.Time
	BuildTime time.Duration
}

// Summary is what a run produced. It is returned even when a late step
// failed, so the caller can still report what was pushed.
type Summary struct {
	Digest    v1.Hash
	MediaType string
	Pushed    []registry.Pushed
	NoPush    bool
}

// ResultLines are the lines kimia prints on stdout: repo@digest per
// destination, or the bare digest when nothing was pushed.
func (s *Summary) ResultLines() []string {
	if s == nil || s.Digest == (v1.Hash{}) {
		return nil
	}
	if len(s.Pushed) == 0 {
		if s.NoPush {
			return []string{s.Digest.String()}
		}
		return nil
	}
	out := make([]string, 0, len(s.Pushed))
	for _, p := range s.Pushed {
		out = append(out, p.Ref)
	}
	return out
}

// Tools are what Publish works with, made before the build so that a
// wrong key or a missing helper fails before anything is built.
type Tools struct {
	Registry *registry.Client
	// Signer is nil when nothing is signed (LoadSigner).
	Signer *sign.Signer
	// SBOM is nil when no SBOM is made (StartSBOM).
	SBOM *sbom.Helper
}

// Publish does what o asks with the built image, in order: attestations
// (SBOM and provenance, added to the index when stored there), local
// archives and layouts, the push, digest files, signatures and signed
// attestations, and the metadata file.
func Publish(ctx context.Context, b Build, o Options, t Tools, log *slog.Logger) (*Summary, error) {
	reg := t.Registry
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	img := b.Image
	// SBOM and provenance per platform image; with index storage img
	// becomes the index that carries them.
	att, err := attestImage(ctx, b, o, t, &img, log)
	if err != nil {
		return nil, err
	}
	art := img.Artifact()
	sum := &Summary{NoPush: o.NoPush}
	if sum.Digest, err = art.Digest(); err != nil {
		return nil, engine.Wrap(engine.KindInternal, err)
	}
	mt, _ := art.MediaType()
	sum.MediaType = string(mt)
	log.Info("built", "digest", sum.Digest.String(), "seconds", fmt.Sprintf("%.2f", b.BuildTime.Seconds()))

	if err := writeLocal(o, img); err != nil {
		return sum, err
	}
	if !o.NoPush {
		sum.Pushed, err = push(ctx, reg, art, o, log)
		if err != nil {
			return sum, engine.Canceled(ctx, err)
		}
	}
	if err := writeDigestFiles(o, sum); err != nil {
		return sum, err
	}
	// A signing failure is reported after the metadata, which records
	// the push.
	signErr := att.publish(ctx, reg, o, t.Signer, sum.Pushed, log)
	if o.MetadataFile != "" {
		md, err := newMetadata(b, img, sum, time.Since(b.Started))
		if err != nil {
			return sum, engine.Wrap(engine.KindInternal, err)
		}
		md.Attestations, md.Signatures = att.metadata()
		if err := WriteJSON(o.MetadataFile, md); err != nil {
			return sum, engine.Wrap(engine.KindEnvironment, fmt.Errorf("--metadata-file: %w", err))
		}
	}
	return sum, signErr
}
