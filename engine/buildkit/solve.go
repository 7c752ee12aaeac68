package buildkit

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sync"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/session"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"

	"github.com/rapidfort/kimia/dockerfile"
	"github.com/rapidfort/kimia/engine"
)

// solved is what one solve produced besides the layout.
type solved struct {
	stats *engine.CacheStats
	bases []engine.BaseImage
	// baseLayers are the layers of the base images, by diff ID, with the
	// repository each came from.
	baseLayers map[string]string
	// failedLog is the output of the failed steps when the solve failed.
	failedLog string
}

// solve runs the dockerfile.v0 frontend through a gateway build, so that
// after the frontend succeeded kimia can ask the daemon, in the same
// session and through the same resolver and credentials, which digests
// the base images resolved to.
func solve(ctx context.Context, c *client.Client, p *plan, att []session.Attachable, req *engine.Request, df dockerfile.Info) (*solved, error) {
	opt := p.Solve
	opt.Session = att
	opt.LocalMounts = map[string]fsutil.FS{}
	for name, dir := range p.Locals {
		// fsutil sends the directory as it is, filtered by .dockerignore
		// on the daemon's request: nothing is copied first.
		fs, err := fsutil.NewFS(dir)
		if err != nil {
			return nil, engine.Errorf(engine.KindContext, "opening the build context %q: %w", dir, err)
		}
		opt.LocalMounts[name] = fs
	}
	// The image goes into a store under the layout directory that takes
	// only the blobs the shared layer needs (store.go).
	var have func(digest.Digest) bool
	if req.HaveBlob != nil {
		have = func(d digest.Digest) bool { return req.HaveBlob(ctx, d.String()) }
	}
	store, err := newSkippingStore(req.OutputDir, have)
	if err != nil {
		return nil, engine.Errorf(engine.KindEnvironment, "creating the image store %q: %w", req.OutputDir, err)
	}
	opt.Exports = slices.Clone(opt.Exports)
	for i := range opt.Exports {
		opt.Exports[i].OutputDir, opt.Exports[i].OutputStore = "", store
	}
	prog, err := startProgress(req.Progress, req.ProgressMode)
	if err != nil {
		return nil, engine.Errorf(engine.KindInternal, "starting the progress display: %w", err)
	}

	var mu sync.Mutex
	var bases []engine.BaseImage
	var baseLayers map[string]string
	frontendAttrs := maps.Clone(opt.FrontendAttrs)
	imports := make([]gateway.CacheOptionsEntry, len(opt.CacheImports))
	for i, ci := range opt.CacheImports {
		imports[i] = gateway.CacheOptionsEntry{Type: ci.Type, Attrs: ci.Attrs}
	}
	resp, err := c.Build(ctx, opt, "kimia", func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
		fopts := gw.BuildOpts().Opts
		if fopts == nil {
			fopts = frontendAttrs
		}
		res, err := gw.Solve(ctx, gateway.SolveRequest{
			Frontend:     opt.Frontend,
			FrontendOpt:  fopts,
			CacheImports: imports,
		})
		if err != nil {
			return nil, err
		}
		b, l := resolveBases(ctx, gw, df.Images, req.Platforms)
		mu.Lock()
		bases, baseLayers = b, l
		mu.Unlock()
		return res, nil
	}, prog.Ch)
	prog.wait()
	if err != nil {
		return &solved{failedLog: prog.failedLog()}, err
	}
	if err := writeIndex(req.OutputDir, resp.ExporterResponse); err != nil {
		return nil, engine.Wrap(engine.KindInternal, err)
	}
	mu.Lock()
	defer mu.Unlock()
	return &solved{stats: prog.stats(), bases: bases, baseLayers: baseLayers}, nil
}

// resolveBases asks the daemon what each image the Dockerfile names
// resolved to, for every platform built. The frontend has just resolved
// the same references in this session, so the answers are the digests it
// built on (reported for the first platform) and the configs whose layers
// the image starts with: the shared layer keeps those layers' blobs as
// the registry serves them. Images that do not resolve (a stage the
// target did not need, say) are left out.
func resolveBases(ctx context.Context, gw gateway.Client, refs []string, plats []engine.Platform) ([]engine.BaseImage, map[string]string) {
	if len(plats) == 0 {
		plats = []engine.Platform{engine.HostPlatform()}
	}
	var out []engine.BaseImage
	layers := map[string]string{}
	for i, p := range plats {
		plat := toOCI(p)
		for _, ref := range refs {
			// The reference as the frontend resolved it, tag included: a
			// name without one ("reg/app", as a build arg may give it)
			// is not a reference the resolver accepts.
			_, dgst, cfg, err := gw.ResolveImageConfig(ctx, normalizedRef(ref), sourceresolver.Opt{
				// The frontend's own name for this lookup, so the display
				// shows one step, not two.
				LogName:  "[internal] load metadata for " + normalizedRef(ref),
				ImageOpt: &sourceresolver.ResolveImageOpt{Platform: &plat, ResolveMode: "default"},
			})
			if err != nil || dgst == "" {
				continue
			}
			if i == 0 {
				out = append(out, engine.BaseImage{Ref: ref, Digest: dgst.String()})
			}
			var c ocispec.Image
			if json.Unmarshal(cfg, &c) == nil {
				for _, d := range c.RootFS.DiffIDs {
					if _, ok := layers[d.String()]; !ok {
						layers[d.String()] = normalizedRepo(ref)
					}
				}
			}
		}
	}
	return out, layers
}

func toOCI(p engine.Platform) ocispecs.Platform {
	return ocispecs.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
}

// normalizedRepo is ref's repository: docker.io/library/x.
func normalizedRepo(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	return named.Name()
}

// normalizedRef is ref as the frontend names it: docker.io/library/x:latest.
func normalizedRef(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.TagNameOnly(named).String()
}
