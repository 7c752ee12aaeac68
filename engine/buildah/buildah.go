// Package buildah is kimia's Buildah engine: Buildah used in-process as a
// library over containers/storage and containers/image. It turns an
// engine.Request into define.BuildOptions (options.go), builds with
// imagebuildah.BuildDockerfiles in a private store (storage.go) with a
// registry configuration generated from the request (registries.go),
// and exports the result as an OCI image layout (export.go).
package buildah

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/sirupsen/logrus"
	"go.podman.io/buildah/imagebuildah"
	"go.podman.io/image/v5/signature"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

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
		OptionFlag: "buildah-opt",
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
	if _, _, err := compressionFor(req.Compression); err != nil {
		return nil, err
	}
	if req.Format == engine.FormatDocker && req.Compression.Algorithm == "zstd" {
		return nil, engine.Errorf(engine.KindUsage, "--compression=zstd with --format=docker: Docker manifests cannot hold zstd layers; use --format=oci or gzip")
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
		log.Warn("rootless build with a single-id user namespace (--buildah-opt allow-single-id-mapping=true)")
	}
	configureLogrus(req, log)

	ws, err := newWorkspace(req, mapping.Rootless)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := ws.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
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
	if store.Dirs.Persistent {
		pruneCache(store, req.Cache.TTL, log)
	}
	phase.done("open store")
	defer func() {
		cerr := store.close(log)
		phase.done("close store")
		if cerr != nil {
			err = errors.Join(err, engine.Wrap(engine.KindEnvironment, cerr))
			if res != nil {
				res = nil
			}
		}
	}()

	sys := files.systemContext(&req.Registry)
	policy, err := signature.DefaultPolicy(sys)
	if err != nil {
		return nil, engine.Wrap(engine.KindInternal, fmt.Errorf("reading the generated signature policy: %w", err))
	}
	pctx, err := signature.NewPolicyContext(policy)
	if err != nil {
		return nil, engine.Wrap(engine.KindInternal, err)
	}
	defer pctx.Destroy()

	layout, err := newLayoutWriter(req.OutputDir)
	if err != nil {
		return nil, engine.Wrap(engine.KindEnvironment, fmt.Errorf("writing the OCI layout %q: %w", req.OutputDir, err))
	}
	annotations := map[string]string{}
	for _, kv := range req.Annotations {
		annotations[kv.Key] = kv.Value
	}
	if len(annotations) > 0 && req.Format == engine.FormatDocker {
		log.Warn("--annotation: Docker manifests have no annotations; they are left out with --format=docker")
	}
	exp := &exporter{
		store: store, sys: sys, policy: pctx, scratch: filepath.Join(work, "export"),
		layout: layout, format: req.Format, comp: req.Compression, annotations: annotations,
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

	platforms := req.Platforms
	if len(platforms) == 0 {
		platforms = []engine.Platform{engine.HostPlatform()}
	}
	var descs []ocispec.Descriptor
	var bases []engine.BaseImage
	for i, p := range platforms {
		if len(platforms) > 1 {
			prog.setPlatform("[" + p.String() + "] ")
		}
		foreign := isForeign(p)
		if foreign && !hasEmulator(p) {
			log.Debug("no binfmt_misc handler registered", "platform", p.String())
		}
		bo, err := translate(req, p, env, opts)
		if err != nil {
			return nil, err
		}
		id, _, err := imagebuildah.BuildDockerfiles(ctx, store, bo, req.Dockerfile)
		if err != nil {
			return nil, classify(ctx, err, req, p, foreign)
		}
		phase.done("build " + p.String())
		if i == 0 {
			bases = baseImages(store, req, p)
		}
		d, err := exp.export(ctx, id, p)
		if err != nil {
			if ctx.Err() != nil {
				return nil, engine.Wrap(engine.KindCanceled, err)
			}
			return nil, engine.Wrap(engine.KindInternal, fmt.Errorf("exporting the %s image: %w", p, err))
		}
		descs = append(descs, d)
		phase.done("export " + p.String())
	}
	top := descs[0]
	if len(descs) > 1 {
		if top, err = exp.index(descs); err != nil {
			return nil, engine.Wrap(engine.KindInternal, err)
		}
	}
	if err := layout.finish(top); err != nil {
		return nil, engine.Wrap(engine.KindEnvironment, err)
	}
	stats := prog.stats()
	if req.Cache.Enabled {
		log.Info("cache", "steps", stats.Steps, "cached", stats.Cached)
	}
	return &engine.Result{
		Layout:        req.OutputDir,
		StorageDriver: store.Name,
		Rootless:      mapping.Rootless,
		Cache:         stats,
		BaseImages:    bases,
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

// configureLogrus sends Buildah's own log (logrus) to the progress
// writer, as verbose as the kimia logger.
func configureLogrus(req *engine.Request, log *slog.Logger) {
	if req.Progress != nil {
		logrus.SetOutput(req.Progress)
	}
	logrus.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true, DisableQuote: true})
	ctx := context.Background()
	switch {
	case log.Enabled(ctx, slog.LevelDebug-4):
		logrus.SetLevel(logrus.TraceLevel)
	case log.Enabled(ctx, slog.LevelDebug):
		logrus.SetLevel(logrus.DebugLevel)
	case log.Enabled(ctx, slog.LevelInfo):
		logrus.SetLevel(logrus.WarnLevel)
	default:
		logrus.SetLevel(logrus.ErrorLevel)
	}
}
