package buildah

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/buildah/define"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/types"

	"github.com/rapidfort/kimia/engine"
)

// buildEnv is what Build prepared on the machine for one build: the
// translator's second input, so that the translation itself stays pure.
type buildEnv struct {
	Isolation  define.Isolation
	System     *types.SystemContext
	PolicyPath string
	// IgnoreFile is the .dockerignore to apply (an empty file when the
	// context has none).
	IgnoreFile string
	// MountsFile replaces /etc/containers/mounts.conf (empty: none).
	MountsFile string
	// Contexts are build contexts kimia-bud adds (rewrite.go).
	Contexts map[string]*define.AdditionalBuildContext
	Ulimits  []string
	// Getenv looks up SSH_AUTH_SOCK for an SSH entry without paths.
	Getenv func(string) string

	Out    io.Writer
	Err    io.Writer
	Report io.Writer
	Log    func(format string, args ...any)
}

// translate turns the request into Buildah's options for one platform.
// It has no side effects; Build prepares everything it refers to.
func translate(req *engine.Request, plat engine.Platform, env buildEnv, o engineOptions) (define.BuildOptions, error) {
	args := map[string]string{}
	for _, kv := range req.BuildArgs {
		args[kv.Key] = kv.Value
	}
	var labels []string
	for _, kv := range req.Labels {
		labels = append(labels, kv.Key+"="+kv.Value)
	}

	common := &define.CommonBuildOptions{
		Ulimit:        env.Ulimits,
		ShmSize:       o.ShmSize,
		IdentityLabel: types.NewOptionalBool(o.IdentityLabel),
		OmitHistory:   o.OmitHistory,
		// RUN sees no proxy variables of the kimia process, as in kimia;
		// pass them as build args.
		HTTPProxy: false,
	}
	for _, s := range req.Secrets {
		switch {
		case s.Env != "":
			common.Secrets = append(common.Secrets, fmt.Sprintf("id=%s,env=%s,type=env", s.ID, s.Env))
		case s.Src != "":
			common.Secrets = append(common.Secrets, fmt.Sprintf("id=%s,src=%s,type=file", s.ID, s.Src))
		default:
			return define.BuildOptions{}, checkSecret(s)
		}
	}
	for _, s := range req.SSH {
		paths := s.Paths
		if len(paths) == 0 {
			sock := ""
			if env.Getenv != nil {
				sock = env.Getenv("SSH_AUTH_SOCK")
			}
			if sock == "" {
				return define.BuildOptions{}, noAgent(s)
			}
			paths = []string{sock}
		}
		id := s.ID
		if id == "" {
			id = "default"
		}
		v := id + "="
		for i, p := range paths {
			if i > 0 {
				v += ","
			}
			v += p
		}
		common.SSHSources = append(common.SSHSources, v)
	}

	opts := define.BuildOptions{
		ContextDirectory: req.ContextDir,
		Args:             args,
		Labels:           labels,
		Target:           req.Target,
		// BuildKit never builds a stage the target does not need; kimia-bud
		// does the same whatever SkipUnusedStages says, so that one
		// Dockerfile gives the same result with both binaries.
		SkipUnusedStages: types.OptionalBoolTrue,
		// Always commit in Docker format: in OCI format Buildah drops
		// HEALTHCHECK, SHELL and ONBUILD. The exporter writes the
		// requested format with the full config (see imageConfig).
		OutputFormat: define.Dockerv2ImageManifest,
		// One layer per instruction, as in BuildKit and Kaniko; without
		// a cache the store is fresh, so nothing is reused.
		Layers:                  true,
		NoCache:                 !req.Cache.Enabled,
		RemoveIntermediateCtrs:  true,
		ForceRmIntermediateCtrs: true,
		PullPolicy:              define.PullIfMissing,
		Isolation:               env.Isolation,
		Runtime:                 "runc",
		NamespaceOptions: define.NamespaceOptions{
			{Name: string(specs.NetworkNamespace), Host: true},
		},
		ConfigureNetwork:        define.NetworkDefault,
		NetworkInterface:        hostNetwork{},
		CommonBuildOpts:         common,
		SystemContext:           env.System,
		SignaturePolicyPath:     env.PolicyPath,
		IgnoreFile:              env.IgnoreFile,
		DefaultMountsFilePath:   env.MountsFile,
		AdditionalBuildContexts: env.Contexts,
		MaxPullPushRetries:      req.ImageDownloadRetry,
		PullPushRetryDelay:      o.RetryDelay,
		Jobs:                    &o.Jobs,
		AddCapabilities:         o.CapAdd,
		DropCapabilities:        o.CapDrop,
		In:                      bytes.NewReader(nil),
		Out:                     env.Out,
		Err:                     env.Err,
		ReportWriter:            env.Report,
		Log:                     env.Log,
		Platforms:               []struct{ OS, Arch, Variant string }{{plat.OS, plat.Architecture, plat.Variant}},
	}
	if o.Runtime != "" {
		opts.Runtime = o.Runtime
	}
	if req.Cache.Enabled {
		// A persistent store may hold an older copy of a base image:
		// check the registry's digest, as BuildKit resolves tags.
		opts.PullPolicy = define.PullIfNewer
	}
	if o.InheritLabels != nil {
		opts.InheritLabels = types.NewOptionalBool(*o.InheritLabels)
	}
	if o.CompatVolumes != nil {
		opts.CompatVolumes = types.NewOptionalBool(*o.CompatVolumes)
	}
	if req.Cache.Repo != "" {
		repo, err := cacheRepository(req.Cache.Repo)
		if err != nil {
			return define.BuildOptions{}, err
		}
		opts.CacheFrom = []reference.Named{repo}
		if !req.Cache.NoPush {
			opts.CacheTo = []reference.Named{repo}
		}
	}
	if req.SourceDateEpoch != nil {
		// The created time and the history take the epoch; file times in
		// new layers are clamped to it, as BuildKit's rewrite-timestamp.
		t := req.SourceDateEpoch.UTC()
		opts.SourceDateEpoch = &t
		opts.RewriteTimestamp = true
	}
	return opts, nil
}

// ignoreFile picks the ignore file BuildKit would: <Dockerfile>.dockerignore
// next to the Dockerfile, else .dockerignore at the context's root. It
// returns "" when there is none. (Buildah would also read
// .containerignore; kimia does not, so both binaries agree.)
func ignoreFile(contextDir, dockerfile string) string {
	for _, p := range []string{dockerfile + ".dockerignore", filepath.Join(contextDir, ".dockerignore")} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}
