// Package buildah is kimia's Buildah engine: Buildah used in-process as a
// library over containers/storage and containers/image. It turns an
// engine.Request into define.BuildOptions (options.go), builds with
// imagebuildah.BuildDockerfiles in a private store (storage.go) with a
// registry configuration generated from the request (registries.go),
// and hands the images over to the shared layer, layers read from the
// store when asked for (export.go).
package buildah

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"go.podman.io/buildah/imagebuildah"

	"github.com/rapidfort/kimia/engine"
)

// Engine builds with Buildah.
type Engine struct{}

var _ engine.Engine = (*Engine)(nil)

// New returns the Buildah engine.
func New() *Engine { return &Engine{} }

// modulePath is Buildah's module, whose version Info reports.
const modulePath = "go.podman.io/buildah"

// Info implements engine.Engine.
func (e *Engine) Info(ctx context.Context) (engine.Info, error) {
	return engine.Info{
		Name:           "buildah",
		Version:        moduleVersion(modulePath),
		StorageDrivers: []string{engine.StorageNative, engine.StorageOverlay},
		Features: []engine.Feature{
			engine.FeatureRootless, engine.FeatureMultiPlatform, engine.FeatureLocalCache,
			engine.FeatureRegistryCache, engine.FeatureSecrets, engine.FeatureSSH,
			engine.FeatureReproducible, engine.FeatureDockerFormat,
		},
	}, nil
}

func moduleVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			return d.Version
		}
	}
	return "unknown"
}

// Build implements engine.Engine.
func (e *Engine) Build(ctx context.Context, req *engine.Request) (res *engine.Result, err error) {
	log := req.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts, err := parseOptions(req.EngineOptions)
	if err != nil {
		return nil, err
	}
	if err := checkDockerfile(req); err != nil {
		return nil, err
	}
	mapping, err := currentMapping()
	if err != nil {
		return nil, engine.Wrap(engine.KindEnvironment, fmt.Errorf("reading the user namespace's id mappings: %w", err))
	}
	if err := checkMapping(mapping, opts.AllowSingleIDMapping); err != nil {
		return nil, err
	}
	if mapping.Rootless && (mapping.UIDs <= 1 || mapping.GIDs <= 1) {
		log.Warn(fmt.Sprintf("rootless build with a single-id user namespace (%s allow-single-id-mapping=true)", engine.FieldEngineOptions))
	}
	configureLogrus(req, log)

	ws, err := newWorkspace(req, mapping.Rootless)
	if err != nil {
		return nil, err
	}
	// closers run in reverse order: before Build returns after a failure,
	// in Result.Cleanup after a success, once the shared layer has read
	// the layers from the store.
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	handedOff := false
	defer func() {
		if !handedOff {
			if cerr := closeAll(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	closers = append(closers, ws.close)
	work, files := ws.dir, ws.files

	iso, err := chooseIsolation(opts.Isolation, userIsolationEnv(), inContainer(), mapping.Rootless)
	if err != nil {
		return nil, err
	}
	log.Info("isolation for RUN: "+iso.Name, "reason", iso.Reason)

	phase := newPhases(log)
	store, err := openStore(req, work, log)
	if err != nil {
		return nil, err
	}
	store.PrivateMounts = mapping.Rootless
	store.ClampTimes = req.SourceDateEpoch
	if store.Dirs.Persistent {
		pruneCache(store, req.Cache.TTL, log)
	}
	phase.done("open store")
	closers = append(closers, func() error {
		cerr := store.close(log)
		phase.done("close store")
		return engine.Wrap(engine.KindEnvironment, cerr)
	})

	sys := files.systemContext(&req.Registry)
	exp := &exporter{store: store, sys: sys, log: log}
	if !opts.OmitHistory && !opts.IdentityLabel && opts.InheritLabels == nil && opts.CompatVolumes == nil {
		// kimia's config, so that equal layers give kimia's digest;
		// the options above change the config in ways only Buildah knows.
		if df, err := os.ReadFile(req.Dockerfile); err == nil {
			exp.bk = bkRequest(req, df, exp.baseConfig(ctx))
		}
	}

	prog := newProgress(req)
	env := buildEnv{
		Isolation:  iso.Isolation,
		System:     sys,
		PolicyPath: files.PolicyPath,
		IgnoreFile: ignoreFile(req.ContextDir, req.Dockerfile),
		MountsFile: ws.mountsFile,
		Ulimits:    ulimits(),
		Getenv:     os.Getenv,
		Out:        prog,
		Err:        passthrough{prog},
		Report:     passthrough{prog},
		Log:        prog.log,
	}
	if env.IgnoreFile == "" {
		env.IgnoreFile = ws.emptyIgnore
	}

	dockerfile, contexts, err := rewriteDockerfile(req.Dockerfile, work, iso.Isolation)
	if err != nil {
		return nil, engine.Wrap(engine.KindEnvironment, fmt.Errorf("preparing the Dockerfile: %w", err))
	}
	env.Contexts = contexts

	platforms := req.Platforms
	if len(platforms) == 0 {
		platforms = []engine.Platform{engine.HostPlatform()}
	}
	var imgs []engine.Image
	var bases []engine.BaseImage
	for i, p := range platforms {
		if len(platforms) > 1 {
			prog.setPlatform("[" + p.String() + "] ")
		}
		foreign := engine.Foreign(p)
		if foreign {
			if err := engine.Emulator(p); err != nil {
				log.Debug("emulation", "platform", p.String(), "problem", err.Error())
			}
		}
		bo, err := translate(req, p, env, opts)
		if err != nil {
			return nil, err
		}
		id, _, err := imagebuildah.BuildDockerfiles(ctx, store, bo, dockerfile)
		if err != nil {
			return nil, classify(ctx, err, req, p, foreign)
		}
		phase.done("build " + p.String())
		if i == 0 {
			bases = baseImages(store, req, p)
		}
		exp.sources = layerSources(store, dockerfileImages(req.Dockerfile, req.BuildArgs, p))
		img, err := exp.image(ctx, id, p)
		if err != nil {
			return nil, engine.Wrap(engine.KindInternal, fmt.Errorf("reading the %s image: %w", p, err))
		}
		imgs = append(imgs, img)
	}
	stats := prog.stats()
	if req.Cache.Enabled {
		log.Info("cache", "steps", stats.Steps, "cached", stats.Cached)
	}
	handedOff = true
	return &engine.Result{
		Images:        imgs,
		StorageDriver: store.Name,
		Rootless:      mapping.Rootless,
		Cache:         stats,
		BaseImages:    bases,
		Cleanup:       sync.OnceValue(closeAll),
	}, nil
}

// phases logs, at debug level, how long each part of a build took, so
// that slow builds can be taken apart (bench/README.md does).
type phases struct {
	log  *slog.Logger
	last time.Time
}

func newPhases(log *slog.Logger) *phases { return &phases{log: log, last: time.Now()} }

func (p *phases) done(name string) {
	now := time.Now()
	p.log.Debug("phase", "phase", name, "seconds", fmt.Sprintf("%.3f", now.Sub(p.last).Seconds()))
	p.last = now
}
