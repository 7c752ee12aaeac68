// Package build runs one kimia invocation: it prepares the context, asks
// the engine for an image, and does everything after the engine (push,
// archives, digest files, metadata) the same way for every engine.
package build

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rapidfort/kimia/buildctx"
	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/output"
	"github.com/rapidfort/kimia/preflight"
	"github.com/rapidfort/kimia/registry"
)

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

// Run builds req with eng and publishes the result.
func Run(ctx context.Context, eng engine.Engine, req *engine.Request) (*Summary, error) {
	start := time.Now()
	log := req.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
		req.Log = log
	}
	info, err := eng.Info(ctx)
	if err != nil {
		return nil, engine.Wrap(engine.KindEnvironment, err)
	}
	if err := checkCapabilities(info, req); err != nil {
		return nil, err
	}

	reg := registry.New(req.Registry, req.Output.PushRetry, req.Output.PushBackoff)
	if err := checkBefore(ctx, reg, info, req); err != nil {
		return nil, err
	}

	signer, err := signerFor(req) // attest.go
	if err != nil {
		return nil, err
	}

	src, err := buildctx.Prepare(ctx, req.Source, log)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	req.ContextDir, req.Dockerfile = src.Dir, src.Dockerfile

	out, err := os.MkdirTemp("", "kimia-image-")
	if err != nil {
		return nil, engine.Wrap(engine.KindEnvironment, fmt.Errorf("creating a temporary directory: %w", err))
	}
	defer os.RemoveAll(out)
	req.OutputDir = out

	log.Info("building", "engine", info.Name, "context", req.ContextDir, "dockerfile", req.Dockerfile, "platforms", platformList(req.Platforms))
	buildStart := time.Now()
	prepareAttestations(req) // attest.go: one-time SBOM set-up, alongside the build
	res, err := eng.Build(ctx, req)
	if err != nil {
		return nil, canceled(ctx, engine.Wrap(engine.KindBuild, err))
	}
	if res.Cleanup != nil {
		defer func() {
			if err := res.Cleanup(); err != nil {
				log.Warn("cleaning up after the engine", "error", err)
			}
		}()
	}
	buildTime := time.Since(buildStart)
	img, err := output.ReadLayout(res.Layout)
	if err != nil {
		return nil, engine.Wrap(engine.KindInternal, err)
	}
	// Supply chain (attest.go): SBOM and provenance per platform image;
	// with index storage img becomes the index that carries them.
	att, err := attestImage(ctx, req, info, res, src, &img, start)
	if err != nil {
		return nil, err
	}
	art := img.Artifact()
	sum := &Summary{NoPush: req.Output.NoPush}
	if sum.Digest, err = art.Digest(); err != nil {
		return nil, engine.Wrap(engine.KindInternal, err)
	}
	mt, _ := art.MediaType()
	sum.MediaType = string(mt)
	log.Info("built", "digest", sum.Digest.String(), "seconds", fmt.Sprintf("%.2f", buildTime.Seconds()))

	if err := writeLocal(req, img); err != nil {
		return sum, err
	}
	if !req.Output.NoPush {
		sum.Pushed, err = reg.Push(ctx, art, req.Output.Destinations, registry.PushOptions{
			IgnoreImmutableTagErrors: req.Output.PushIgnoreImmutableTagErrors,
			Log:                      log,
		})
		if err != nil {
			return sum, canceled(ctx, err)
		}
	}
	if err := writeDigestFiles(req, sum); err != nil {
		return sum, err
	}
	// Signatures and cosign-style attestations (attest.go). A failure is
	// reported after the metadata, which records the push.
	signErr := att.publish(ctx, reg, req, signer, sum.Pushed)
	if req.Output.MetadataFile != "" {
		md, err := newMetadata(req, info, res, img, sum, src, buildTime, time.Since(start))
		if err != nil {
			return sum, engine.Wrap(engine.KindInternal, err)
		}
		md.Attestations, md.Signatures = att.metadata()
		if err := output.WriteJSON(req.Output.MetadataFile, md); err != nil {
			return sum, engine.Wrap(engine.KindEnvironment, fmt.Errorf("--metadata-file: %w", err))
		}
	}
	return sum, signErr
}

// checkCapabilities turns an engine's reported gaps into clear errors.
func checkCapabilities(info engine.Info, req *engine.Request) error {
	need := []struct {
		when bool
		f    engine.Feature
		flag string
	}{
		{len(req.Platforms) > 1, engine.FeatureMultiPlatform, "--platform with several platforms"},
		{req.Cache.Repo != "", engine.FeatureRegistryCache, "--cache-repo"},
		{len(req.Secrets) > 0, engine.FeatureSecrets, "--secret"},
		{len(req.SSH) > 0, engine.FeatureSSH, "--ssh"},
		{req.Format == engine.FormatDocker, engine.FeatureDockerFormat, "--format=docker"},
	}
	for _, n := range need {
		if n.when && !info.Has(n.f) {
			return engine.Errorf(engine.KindUsage, "%s: the %s engine does not support %s", n.flag, info.Name, n.f)
		}
	}
	if req.StorageDriver != "" {
		ok := false
		for _, d := range info.StorageDrivers {
			ok = ok || d == req.StorageDriver
		}
		if !ok {
			return engine.Errorf(engine.KindUsage, "--storage-driver=%s: the %s engine supports %v", req.StorageDriver, info.Name, info.StorageDrivers)
		}
	}
	return nil
}

// checkBefore runs the fast preflight checks (file reads only) and checks
// push permission on every destination, as Kaniko does, so that a build
// is not wasted on a machine or registry that will refuse it.
func checkBefore(ctx context.Context, reg *registry.Client, info engine.Info, req *engine.Request) error {
	if !req.Output.NoPreflight {
		results := preflight.Run(ctx, preflight.Options{Info: info, Platforms: req.Platforms, CacheDir: req.Cache.Dir})
		for _, r := range results {
			if r.Status == preflight.Warn {
				req.Log.Warn("preflight: "+r.Name+": "+r.Detail, "fix", r.Fix)
			}
		}
		if err := preflight.Failed(results, " (skip these checks with --no-preflight)"); err != nil {
			return err
		}
	}
	if req.Output.NoPush || req.Output.SkipPushPermissionCheck {
		return nil
	}
	errs := make([]error, len(req.Output.Destinations))
	var wg sync.WaitGroup
	for i, d := range req.Output.Destinations {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = reg.CheckPushPermission(ctx, d)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func writeLocal(req *engine.Request, img output.Image) error {
	o := req.Output
	if o.OCILayoutPath != "" {
		if err := output.WriteOCILayout(o.OCILayoutPath, img, o.Destinations); err != nil {
			return engine.Wrap(engine.KindEnvironment, fmt.Errorf("--oci-layout-path: %w", err))
		}
	}
	if o.TarPath != "" {
		one := img.Image
		if one == nil {
			return engine.Errorf(engine.KindUsage, "--tar-path: a multi-platform image cannot be written as a docker-archive; use --oci-layout-path")
		}
		if err := output.WriteTarball(o.TarPath, one, o.Destinations); err != nil {
			return engine.Wrap(engine.KindEnvironment, fmt.Errorf("--tar-path: %w", err))
		}
	}
	return nil
}

func writeDigestFiles(req *engine.Request, sum *Summary) error {
	o := req.Output
	wrap := func(flag string, err error) error {
		if err == nil {
			return nil
		}
		return engine.Wrap(engine.KindEnvironment, fmt.Errorf("--%s: %w", flag, err))
	}
	if o.DigestFile != "" {
		if err := wrap("digest-file", output.WriteDigestFile(o.DigestFile, sum.Digest)); err != nil {
			return err
		}
	}
	pushed := sum.Pushed
	if o.NoPush {
		// Kaniko writes the names it would have pushed.
		for _, d := range o.Destinations {
			pushed = append(pushed, registry.NotPushed(d, sum.Digest))
		}
	}
	if o.ImageNameWithDigestFile != "" {
		if err := wrap("image-name-with-digest-file", output.WriteImageNameWithDigestFile(o.ImageNameWithDigestFile, pushed)); err != nil {
			return err
		}
	}
	if o.ImageNameTagWithDigestFile != "" {
		if err := wrap("image-name-tag-with-digest-file", output.WriteImageNameTagWithDigestFile(o.ImageNameTagWithDigestFile, pushed)); err != nil {
			return err
		}
	}
	return nil
}

// canceled reports a build stopped by a signal as such.
func canceled(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return engine.Wrap(engine.KindCanceled, fmt.Errorf("%w: %v", context.Cause(ctx), err))
	}
	return err
}

func platformList(ps []engine.Platform) string {
	if len(ps) == 0 {
		return engine.HostPlatform().String()
	}
	s := ""
	for i, p := range ps {
		if i > 0 {
			s += ","
		}
		s += p.String()
	}
	return s
}
