package buildkit

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/client"
	spb "github.com/moby/buildkit/sourcepolicy/pb"

	"github.com/rapidfort/kimia/dockerfile"
	"github.com/rapidfort/kimia/engine"
)

// Local mount names the dockerfile.v0 frontend reads.
const (
	localContext    = "context"
	localDockerfile = "dockerfile"
)

// cacheTag is the tag of the registry cache manifest inside the cache
// repository.
const cacheTag = "buildkit"

// plan is what one build asks of BuildKit: the solve options and the
// daemon's configuration. It holds no session attachables and no open
// filesystems, so translate stays a pure function of the request.
type plan struct {
	Solve client.SolveOpt
	// Locals are the directories sent to buildkitd, by local name.
	Locals map[string]string
	Daemon daemonConfig
}

// translate turns a request into BuildKit's terms. df is what was read
// from the Dockerfile (its pull registries); rootless says how buildkitd
// will run.
func translate(req *engine.Request, df dockerfile.Info, rootless bool) (*plan, error) {
	if req.ContextDir == "" || req.Dockerfile == "" || req.OutputDir == "" {
		return nil, engine.Errorf(engine.KindInternal, "the request lacks a context, Dockerfile or output directory")
	}
	attrs := map[string]string{"filename": filepath.Base(req.Dockerfile)}
	if req.Target != "" {
		if df.Parsed && !df.HasStage(req.Target) {
			return nil, engine.Errorf(engine.KindUsage, "%s %q: no such stage in the Dockerfile (%s)", engine.FieldTarget, req.Target, df.StageList())
		}
		attrs["target"] = req.Target
	}
	if len(req.Platforms) > 0 {
		ps := make([]string, len(req.Platforms))
		for i, p := range req.Platforms {
			ps[i] = p.String()
		}
		attrs["platform"] = strings.Join(ps, ",")
	}
	for _, kv := range req.BuildArgs {
		attrs["build-arg:"+kv.Key] = kv.Value
	}
	for _, kv := range req.Labels {
		attrs["label:"+kv.Key] = kv.Value
	}
	if req.SourceDateEpoch != nil {
		// The frontend passes the epoch on to the exporter, which sets
		// the image's created time from it.
		attrs["build-arg:SOURCE_DATE_EPOCH"] = strconv.FormatInt(req.SourceDateEpoch.Unix(), 10)
	}
	opts, err := engineOptions(req.EngineOptions)
	if err != nil {
		return nil, err
	}
	for k, v := range opts {
		attrs[k] = v
	}

	exp := exportAttrs(req)
	p := &plan{
		Solve: client.SolveOpt{
			Frontend:      "dockerfile.v0",
			FrontendAttrs: attrs,
			Exports:       []client.ExportEntry{{Type: client.ExporterOCI, OutputDir: req.OutputDir, Attrs: exp}},
		},
		Locals: map[string]string{
			localContext:    req.ContextDir,
			localDockerfile: filepath.Dir(req.Dockerfile),
		},
	}

	var pushHosts []string
	if req.Cache.Enabled && req.Cache.Repo != "" {
		ref, host, err := cacheRef(req.Cache.Repo)
		if err != nil {
			return nil, err
		}
		p.Solve.CacheImports = []client.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{"ref": ref}}}
		if !req.Cache.NoPush {
			ex := map[string]string{
				"ref":  ref,
				"mode": "max",
				// A manifest rather than an index: every registry stores
				// it, including ones that reject indexes of blobs.
				"image-manifest": "true",
				"oci-mediatypes": "true",
				// As Kaniko: a cache that cannot be pushed is a warning,
				// not a failed build.
				"ignore-error": "true",
			}
			p.Solve.CacheExports = []client.CacheOptionsEntry{{Type: "registry", Attrs: ex}}
			pushHosts = append(pushHosts, host)
		}
	}

	var pullHosts []string
	for _, img := range df.Images {
		if h, err := imageHost(img); err == nil && !slices.Contains(pullHosts, h) {
			pullHosts = append(pullHosts, h)
		}
	}
	if req.Cache.Enabled && req.Cache.Repo != "" {
		if _, h, err := cacheRef(req.Cache.Repo); err == nil {
			pullHosts = append(pullHosts, h)
		}
	}
	p.Daemon = newDaemonConfig(req, rootless, pullHosts, pushHosts)
	p.Solve.SourcePolicy = noFallbackPolicy(&req.Registry, pullHosts)
	return p, nil
}

// noFallbackPolicy implements Registry.SkipDefaultRegistryFallback. buildkitd
// always falls back from a registry's mirrors to the registry itself, so
// instead every image of a mirrored registry is rewritten to its first
// mirror, through a source policy; the other mirrors stay that mirror's
// mirrors (see registrySections), and the original registry is never
// asked.
func noFallbackPolicy(rc *engine.RegistryConfig, pullHosts []string) *spb.Policy {
	if !rc.SkipDefaultRegistryFallback {
		return nil
	}
	var rules []*spb.Rule
	for _, h := range pullHosts {
		mirrors := rc.MirrorsFor(h)
		if len(mirrors) == 0 {
			continue
		}
		rules = append(rules, &spb.Rule{
			Action:   spb.PolicyAction_CONVERT,
			Selector: &spb.Selector{Identifier: "docker-image://" + h + "/*", MatchType: spb.MatchType_WILDCARD},
			Updates:  &spb.Update{Identifier: "docker-image://" + mirrors[0].String() + "/${1}"},
		})
	}
	if len(rules) == 0 {
		return nil
	}
	return &spb.Policy{Rules: rules}
}

// exportAttrs configures the OCI exporter: a layout directory (not a
// tarball) with OCI media types, the time, and new layers uncompressed.
// The shared layer compresses them (package assemble), with the same code
// as for kimia-bud's layers and faster than the exporter's single-threaded
// gzip; base layers come as their registry served them (compression is
// not forced), and keep their digests. The format and annotations asked
// for are written by the shared layer too.
func exportAttrs(req *engine.Request) map[string]string {
	a := map[string]string{"tar": "false", "oci-mediatypes": "true", "compression": "uncompressed"}
	if req.SourceDateEpoch != nil {
		// Clamp file times in the layers to the epoch, so that the same
		// inputs give the same layer digests.
		a["rewrite-timestamp"] = "true"
	}
	return a
}

// cacheRef is the registry cache reference inside repo, and its host.
func cacheRef(repo string) (string, string, error) {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return "", "", engine.Errorf(engine.KindUsage, "%s %q: %v", engine.FieldCacheRepo, repo, err)
	}
	if _, ok := named.(reference.Tagged); ok {
		return named.String(), reference.Domain(named), nil
	}
	return named.Name() + ":" + cacheTag, reference.Domain(named), nil
}

// Frontend options the engine options may set. Options that kimia sets
// from other request fields are refused, naming the field to use instead,
// so that two spellings of one setting cannot disagree.
var (
	allowedOptions = []string{
		"add-hosts", "cgroup-parent", "force-network-mode", "hostname",
		"image-resolve-mode", "no-cache", "shm-size", "ulimit", "memory",
		"memswap", "cpushares", "cpuperiod", "cpuquota", "cpusetcpus",
		"cpusetmems", "multi-platform",
	}
	allowedPrefixes = []string{"build-arg:BUILDKIT_", "context:"}
	refusedOptions  = map[string]engine.Field{
		"target":          engine.FieldTarget,
		"platform":        engine.FieldPlatforms,
		"filename":        engine.FieldDockerfile,
		"contextsubdir":   engine.FieldContextDir,
		"cache-from":      engine.FieldCacheRepo,
		"cache-imports":   engine.FieldCacheRepo,
		"label:":          engine.FieldLabels,
		"build-arg:":      engine.FieldBuildArgs,
		"attest:":         engine.FieldAttestations,
		"local-sessionid": engine.FieldContextDir,
	}
)

// engineOptions validates the engine options (K=V) as frontend options.
func engineOptions(kvs []engine.KeyValue) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k := kv.Key
		if err := checkOption(k, kv.Value); err != nil {
			return nil, err
		}
		out[k] = kv.Value
	}
	return out, nil
}

func checkOption(k, v string) error {
	for _, p := range allowedPrefixes {
		if strings.HasPrefix(k, p) && len(k) > len(p) {
			if p == "context:" && strings.HasPrefix(v, "local:") {
				return engine.Errorf(engine.KindUsage, "%s %s=%s: local named contexts are not supported; use docker-image://, git or https URLs", engine.FieldEngineOptions, k, v)
			}
			return nil
		}
	}
	if slices.Contains(allowedOptions, k) {
		return nil
	}
	for r, field := range refusedOptions {
		if k == r || (strings.HasSuffix(r, ":") && strings.HasPrefix(k, r)) || strings.HasPrefix(k, r+":") {
			return engine.Errorf(engine.KindUsage, "%s %s: use %s instead", engine.FieldEngineOptions, k, field)
		}
	}
	return engine.Errorf(engine.KindUsage, "%s %s: not a dockerfile frontend option kimia passes through (allowed: %s, %s*)",
		engine.FieldEngineOptions, k, strings.Join(allowedOptions, ", "), strings.Join(allowedPrefixes, "*, "))
}

// describeAttrs lists frontend attributes for debug logs, hiding values
// of build args (they may carry tokens).
func describeAttrs(attrs map[string]string) string {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		if strings.HasPrefix(k, "build-arg:") {
			fmt.Fprintf(&b, "%s=…", k)
			continue
		}
		fmt.Fprintf(&b, "%s=%s", k, attrs[k])
	}
	return b.String()
}
