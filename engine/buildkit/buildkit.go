// Package buildkit is kimia's BuildKit engine: it starts a private
// buildkitd for the duration of one build and drives it with BuildKit's Go
// client.
package buildkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/rapidfort/kimia/dockerfile"
	"github.com/rapidfort/kimia/engine"
)

// Engine builds with BuildKit.
type Engine struct{}

var _ engine.Engine = (*Engine)(nil)

// New returns the BuildKit engine.
func New() *Engine { return &Engine{} }

// Info implements engine.Engine. It reports the buildkitd kimia would run
// and its version; a missing buildkitd is an error, since no build could
// run.
func (e *Engine) Info(ctx context.Context) (engine.Info, error) {
	info := engine.Info{
		Name:           "buildkit",
		Version:        moduleVersion(),
		StorageDrivers: []string{engine.StorageNative, engine.StorageOverlay},
		Features: []engine.Feature{
			engine.FeatureRootless, engine.FeatureMultiPlatform, engine.FeatureLocalCache,
			engine.FeatureRegistryCache, engine.FeatureSecrets, engine.FeatureSSH,
			engine.FeatureReproducible, engine.FeatureDockerFormat,
		},
	}
	bin, err := findBuildkitd()
	if err != nil {
		return info, err
	}
	v, err := daemonVersion(ctx, bin)
	if err != nil {
		return info, engine.Wrap(engine.KindEnvironment, err)
	}
	info.Daemon = &engine.Component{Name: "buildkitd", Version: v, Path: bin}
	return info, nil
}

// Build implements engine.Engine: it starts buildkitd, solves the
// Dockerfile into an OCI layout in req.OutputDir (the images' layers stay
// there) and stops the daemon:
// before returning after a failure, in the background after a success
// (Result.Cleanup waits for it).
func (e *Engine) Build(ctx context.Context, req *engine.Request) (res *engine.Result, err error) {
	log := req.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	routeLibraryLogs(log)
	rootless := os.Geteuid() != 0
	bin, err := findBuildkitd()
	if err != nil {
		return nil, err
	}
	df, err := dockerfile.Read(req.Dockerfile, req.BuildArgs, targetPlatform(req))
	if err != nil {
		return nil, err
	}
	p, err := translate(req, df, rootless)
	if err != nil {
		return nil, err
	}
	att, err := attachables(req, p.Daemon)
	if err != nil {
		return nil, err
	}
	cfg, err := p.Daemon.encode()
	if err != nil {
		return nil, engine.Wrap(engine.KindInternal, err)
	}

	st, err := prepareState(req, rootless)
	if err != nil {
		return nil, err
	}
	var d *daemon
	// teardown stops the daemon and removes its temporary state. After a
	// failure it runs before Build returns; after a success it runs in the
	// background while the caller pushes, and Result.Cleanup waits for it.
	teardown := func() error {
		var errs []error
		if d != nil {
			t := time.Now()
			if err := d.stop(); err != nil {
				errs = append(errs, fmt.Errorf("stopping buildkitd: %w", err))
			}
			log.Debug("buildkitd stopped", "seconds", fmt.Sprintf("%.2f", time.Since(t).Seconds()))
			d.copyDebugLog()
		}
		t := time.Now()
		if err := st.close(); err != nil {
			errs = append(errs, fmt.Errorf("cleaning up after buildkitd: %w", err))
		}
		log.Debug("removed the daemon's run and temporary state directories", "seconds", fmt.Sprintf("%.2f", time.Since(t).Seconds()))
		return errors.Join(errs...)
	}
	handedOff := false
	defer func() {
		if !handedOff {
			if err := teardown(); err != nil {
				log.Warn(err.Error())
			}
		}
	}()

	start := time.Now()
	d, err = startDaemon(daemonSpec{
		Binary: bin, Root: st.Root, RunDir: st.RunDir, Config: cfg, Rootless: rootless,
		Debug: log.Enabled(ctx, slog.LevelDebug), Log: log,
	})
	if err != nil {
		return nil, err
	}
	c, workers, err := d.waitReady(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	facts, err := readWorkers(workers)
	if err != nil {
		return nil, err
	}
	log.Info("buildkitd ready", "seconds", fmt.Sprintf("%.2f", time.Since(start).Seconds()), "rootless", rootless,
		"storage", facts.describe(req.StorageDriver))
	log.Debug("solve", "frontend", p.Solve.Frontend, "attrs", describeAttrs(p.Solve.FrontendAttrs))

	var out *solved
	solveStart := time.Now()
	err = engine.DefaultBackoff.Retry(ctx, req.ImageDownloadRetry,
		func(err error) bool { return !d.hasExited() && transientPull(err) },
		func(attempt int, wait time.Duration, err error) {
			log.Warn("retrying the build after a failed base-image pull", "attempt", attempt, "of", req.ImageDownloadRetry, "wait", wait.String(), "error", err)
		},
		func() error {
			out, err = solve(ctx, c, p, att, req, df)
			return err
		})
	if err != nil {
		if d.hasExited() && ctx.Err() == nil {
			return nil, engine.Errorf(engine.KindEnvironment, "buildkitd exited during the build (%v): %v%s", d.waitErr, err, d.tail())
		}
		return nil, classify(ctx, err, req, out.failedLog)
	}
	log.Debug("solved", "seconds", fmt.Sprintf("%.2f", time.Since(solveStart).Seconds()))
	if out.stats != nil && out.stats.Steps > 0 {
		log.Info("cache", "steps", out.stats.Steps, "cached", out.stats.Cached)
	}

	imgs, err := images(req.OutputDir, out.baseLayers)
	if err != nil {
		return nil, engine.Wrap(engine.KindInternal, err)
	}
	// The layout is complete in req.OutputDir: the daemon is no longer
	// needed, and removing a large temporary state can take seconds.
	c.Close()
	done := make(chan error, 1)
	go func() { done <- teardown() }()
	handedOff = true
	return &engine.Result{
		Images:        imgs,
		StorageDriver: facts.Driver,
		Rootless:      rootless,
		Cache:         out.stats,
		BaseImages:    out.bases,
		Cleanup:       sync.OnceValue(func() error { return <-done }),
	}, nil
}

// targetPlatform is the platform ARGs in FROM lines are expanded for.
func targetPlatform(req *engine.Request) engine.Platform {
	if len(req.Platforms) > 0 {
		return req.Platforms[0]
	}
	return engine.HostPlatform()
}
