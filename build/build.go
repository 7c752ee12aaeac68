// Package build runs one kimia invocation: it prepares the context, makes
// the engine's request, asks the engine for an image, and hands the image
// to publish, which does everything after the engine the same way for
// every engine.
package build

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/rapidfort/kimia/assemble"
	"github.com/rapidfort/kimia/buildctx"
	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/preflight"
	"github.com/rapidfort/kimia/publish"
	"github.com/rapidfort/kimia/registry"
)

// Options are everything one kimia invocation asks for, resolved once by
// the CLI: where the context comes from, what the engine builds, and what
// happens to the image. Run never changes them.
type Options struct {
	// Source is the build context as the user named it.
	Source buildctx.Source
	// Engine is the engine's request, without what only Run knows (the
	// prepared context directory and Dockerfile, the output directory).
	Engine engine.Request
	// Publish says what happens to the built image.
	Publish publish.Options
	// NoPreflight skips the checks that run before the build.
	NoPreflight bool
	// Log receives the run's log records; nil discards them.
	Log *slog.Logger
}

// Run builds with eng as o says and publishes the result.
func Run(ctx context.Context, eng engine.Engine, o Options) (*publish.Summary, error) {
	start := time.Now()
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	info, err := eng.Info(ctx)
	if err != nil {
		return nil, engine.Wrap(engine.KindEnvironment, err)
	}
	if err := checkCapabilities(info, &o.Engine); err != nil {
		return nil, err
	}
	if v, ok := eng.(engine.Validator); ok {
		if err := v.Validate(&o.Engine); err != nil {
			return nil, err
		}
	}

	reg := registry.New(o.Engine.Registry, o.Publish.PushRetry, o.Publish.PushBackoff)
	if err := reg.Keychain().Check(); err != nil {
		return nil, err
	}
	if err := checkBefore(ctx, reg, info, o, log); err != nil {
		return nil, err
	}
	signer, err := publish.LoadSigner(o.Publish)
	if err != nil {
		return nil, err
	}
	sbomHelper, err := publish.StartSBOM(o.Publish) // syft's set-up overlaps the build
	if err != nil {
		return nil, err
	}
	if sbomHelper != nil {
		defer func() {
			if err := sbomHelper.Close(); err != nil {
				log.Warn(err.Error())
			}
		}()
	}

	src, err := buildctx.Prepare(ctx, o.Source, log)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	out, err := os.MkdirTemp("", "kimia-image-")
	if err != nil {
		return nil, engine.Wrap(engine.KindEnvironment, fmt.Errorf("creating a temporary directory: %w", err))
	}
	defer os.RemoveAll(out)

	req := o.Engine
	req.ContextDir, req.Dockerfile, req.OutputDir = src.Dir, src.Dockerfile, out
	req.DockerfileName = o.Source.Dockerfile
	req.Log = log
	req.HaveBlob = haveBlob(o, reg)

	log.Info("building", "engine", info.Name, "context", req.ContextDir, "dockerfile", req.Dockerfile, "platforms", platformList(req.Platforms))
	buildStart := time.Now()
	res, err := eng.Build(ctx, &req)
	if err != nil {
		return nil, engine.Canceled(ctx, engine.Wrap(engine.KindBuild, err))
	}
	if res.Cleanup != nil {
		defer func() {
			if err := res.Cleanup(); err != nil {
				log.Warn("cleaning up after the engine", "error", err)
			}
		}()
	}
	buildTime := time.Since(buildStart)
	work := filepath.Join(out, "assemble")
	if err := os.Mkdir(work, 0o700); err != nil {
		return nil, engine.Wrap(engine.KindEnvironment, fmt.Errorf("creating a temporary directory: %w", err))
	}
	cacheDir := ""
	if req.Cache.Enabled {
		cacheDir = req.Cache.Dir
	}
	img, err := assemble.Assemble(ctx, res.Images, assemble.Options{
		Format: req.Format, Compression: req.Compression, Annotations: req.Annotations,
		CacheDir: cacheDir, WorkDir: work, Fetch: reg.Blob,
	})
	if err != nil {
		return nil, engine.Canceled(ctx, engine.Wrap(engine.KindEnvironment, fmt.Errorf("assembling the image: %w", err)))
	}
	log.Debug("assembled", "seconds", fmt.Sprintf("%.2f", time.Since(buildStart.Add(buildTime)).Seconds()))
	return publish.Publish(ctx, publish.Build{
		Image: publish.Image{Image: img.Image, Index: img.Index}, Request: &req, Engine: info, Result: res,
		Source: o.Source, Context: src, Started: start, BuildTime: buildTime,
	}, o.Publish, publish.Tools{Registry: reg, Signer: signer, SBOM: sbomHelper}, log)
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

// haveBlob answers engine.Request.HaveBlob: a blob the engine would hand
// over is not needed when an earlier build with the same --cache-dir
// recorded what it becomes in the image and every destination has that.
// Nothing is skipped when the image is also written locally or cataloged
// (those read every layer), or not pushed.
func haveBlob(o Options, reg *registry.Client) func(context.Context, string) bool {
	p := o.Publish
	if !o.Engine.Cache.Enabled || o.Engine.Cache.Dir == "" || p.NoPush || len(p.Destinations) == 0 ||
		p.TarPath != "" || p.OCILayoutPath != "" || p.Attest.SBOM {
		return nil
	}
	known := assemble.Known(o.Engine.Cache.Dir, o.Engine.Compression)
	return func(ctx context.Context, digest string) bool {
		final, ok := known(digest)
		if !ok {
			return false
		}
		for _, d := range p.Destinations {
			if has, err := reg.HasBlob(ctx, d, final); err != nil || !has {
				return false
			}
		}
		return true
	}
}

// checkBefore runs the fast preflight checks (file reads only) and checks
// push permission on every destination, so that a build is not wasted on
// a machine or registry that will refuse it.
func checkBefore(ctx context.Context, reg *registry.Client, info engine.Info, o Options, log *slog.Logger) error {
	if !o.NoPreflight {
		results := preflight.Run(ctx, preflight.Options{Info: info, Platforms: o.Engine.Platforms, CacheDir: o.Engine.Cache.Dir})
		for _, r := range results {
			if r.Status == preflight.Warn {
				log.Warn("preflight: "+r.Name+": "+r.Detail, "fix", r.Fix)
			}
		}
		if err := preflight.Failed(results, " (skip these checks with --no-preflight)"); err != nil {
			return err
		}
	}
	return publish.CheckPushPermission(ctx, reg, o.Publish)
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
