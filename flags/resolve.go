package flags

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rapidfort/kimia/build"
	"github.com/rapidfort/kimia/engine"
)

// resolver turns parsed flags into one engine.Request. Every value is
// validated here, where it is parsed, so the build starts only with a
// request that makes sense.
type resolver struct {
	c *cli.Context
	// onCLI holds the canonical names of flags given on the command line
	// (as opposed to the environment).
	onCLI map[string]bool
	// getenv looks up the process environment; tests replace it.
	getenv func(string) (string, bool)
	// notices are one-line messages about accepted flags that have no
	// effect, shown once logging is set up.
	notices []string
	// lenient skips the checks that only a build needs (kimia check).
	lenient bool
}

// set reports whether the user gave the flag, on the command line or
// through its environment variable.
func (r *resolver) set(name string) bool { return r.c.IsSet(name) }

// list returns a repeatable flag's values. Values from the environment
// are split on newlines, so one variable can carry several.
func (r *resolver) list(name string) []string {
	vals := r.c.StringSlice(name)
	if r.onCLI[name] {
		return vals
	}
	var out []string
	for _, v := range vals {
		for _, line := range strings.Split(v, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				out = append(out, line)
			}
		}
	}
	return out
}

func (r *resolver) notice(format string, args ...any) {
	r.notices = append(r.notices, fmt.Sprintf(format, args...))
}

// resolve builds the request. optionFlag is the engine's pass-through flag.
func (r *resolver) resolve(optionFlag string) (*build.Options, error) {
	o := &build.Options{}
	for _, step := range []func(*build.Options) error{
		r.core, r.build, r.cache, r.output, r.attest, r.git, r.registry,
		r.reproducible, r.kanikoNoops,
		func(o *build.Options) error { return r.logging(o, optionFlag) },
		func(o *build.Options) error { return r.engineOptions(o, optionFlag) },
		r.consistency,
	} {
		if err := step(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

func (r *resolver) core(o *build.Options) error {
	c := r.c
	o.Source.Context = c.String("context")
	if o.Source.Context == "" {
		return usagef("context", "empty; give a directory, tar:// file or git URL")
	}
	o.Source.Dockerfile = c.String("dockerfile")
	if o.Source.Dockerfile == "" {
		return usagef("dockerfile", "empty; give the Dockerfile's path")
	}
	o.Source.SubPath = c.String("context-sub-path")
	o.Engine.Target = c.String("target")
	seen := map[string]bool{}
	for _, d := range r.list("destination") {
		tag, err := parseDestination(d)
		if err != nil {
			return err
		}
		if seen[tag.Name()] {
			return usagef("destination", "%q is given twice", d)
		}
		seen[tag.Name()] = true
		o.Publish.Destinations = append(o.Publish.Destinations, tag.Name())
	}
	return nil
}

func (r *resolver) build(o *build.Options) error {
	for _, s := range r.list("build-arg") {
		kv, ok, err := parseBuildArg(s, r.getenv)
		if err != nil {
			return err
		}
		if !ok {
			r.notice("--build-arg %s: %s is not set in the environment; the Dockerfile's default applies", s, s)
			continue
		}
		o.Engine.BuildArgs = append(o.Engine.BuildArgs, kv)
	}
	var err error
	if o.Engine.Labels, err = r.kvs("label"); err != nil {
		return err
	}
	if o.Engine.Annotations, err = r.kvs("annotation"); err != nil {
		return err
	}
	seen := map[string]bool{}
	var platforms []string
	for _, f := range []string{"platform", "custom-platform", "customPlatform"} {
		for _, s := range r.list(f) {
			platforms = append(platforms, f+"\x00"+s)
		}
	}
	for _, fs := range platforms {
		f, s, _ := strings.Cut(fs, "\x00")
		ps, err := parsePlatforms(f, s)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if !seen[p.String()] {
				seen[p.String()] = true
				o.Engine.Platforms = append(o.Engine.Platforms, p)
			}
		}
	}
	ids := map[string]bool{}
	for _, s := range r.list("secret") {
		sec, err := parseSecret(s, r.getenv)
		if err != nil {
			return err
		}
		if ids[sec.ID] {
			return usagef("secret", "id %q is given twice", sec.ID)
		}
		ids[sec.ID] = true
		o.Engine.Secrets = append(o.Engine.Secrets, sec)
	}
	for _, s := range r.list("ssh") {
		ssh, err := parseSSH(s, r.getenv)
		if err != nil {
			return err
		}
		o.Engine.SSH = append(o.Engine.SSH, ssh)
	}
	o.Engine.SkipUnusedStages = r.c.Bool("skip-unused-stages")
	switch d := strings.ToLower(r.c.String("storage-driver")); d {
	case "":
	case "native", "vfs":
		o.Engine.StorageDriver = engine.StorageNative
	case "overlay", "overlayfs", "overlay2":
		o.Engine.StorageDriver = engine.StorageOverlay
	default:
		return usagef("storage-driver", "%q is not native or overlay", d)
	}
	switch f := strings.ToLower(r.c.String("format")); f {
	case "oci", "":
		o.Engine.Format = engine.FormatOCI
	case "docker":
		o.Engine.Format = engine.FormatDocker
	default:
		return usagef("format", "%q is not oci or docker", f)
	}
	return nil
}

func (r *resolver) kvs(flag string) ([]engine.KeyValue, error) {
	var out []engine.KeyValue
	for _, s := range r.list(flag) {
		kv, err := parseKV(flag, s)
		if err != nil {
			return nil, err
		}
		out = append(out, kv)
	}
	return out, nil
}

func (r *resolver) cache(o *build.Options) error {
	c := r.c
	o.Engine.Cache.Enabled = c.Bool("cache")
	o.Engine.Cache.TTL = c.Duration("cache-ttl")
	if o.Engine.Cache.TTL <= 0 {
		return usagef("cache-ttl", "%s is not a positive duration such as 24h", o.Engine.Cache.TTL)
	}
	o.Engine.Cache.NoPush = c.Bool("no-push-cache")
	o.Engine.Cache.CopyLayers = c.Bool("cache-copy-layers")
	o.Engine.Cache.RunLayers = c.Bool("cache-run-layers")
	if dir := c.String("cache-dir"); dir != "" {
		if !o.Engine.Cache.Enabled {
			r.notice("--cache-dir is used only with --cache; building without a cache")
		} else {
			abs, err := filepath.Abs(dir)
			if err != nil {
				return usagef("cache-dir", "%q: %v", dir, err)
			}
			o.Engine.Cache.Dir = abs
		}
	} else if o.Engine.Cache.Enabled {
		o.Engine.Cache.Dir = defaultCacheDir(r.getenv)
	}
	if repo := c.String("cache-repo"); repo != "" {
		if strings.HasPrefix(repo, "oci:") {
			return usagef("cache-repo", "%q: OCI-layout caches are not supported; use --cache-dir for a local cache", repo)
		}
		rp, err := parseRepository("cache-repo", repo)
		if err != nil {
			return err
		}
		o.Engine.Cache.Repo = rp.String()
	}
	if c.IsSet("compressed-caching") && !c.Bool("compressed-caching") {
		r.notice("--compressed-caching=false: both engines keep cached layers compressed; the flag has no effect")
	}
	if c.IsSet("cache-run-layers") || c.IsSet("cache-copy-layers") {
		r.notice("--cache-run-layers/--cache-copy-layers: kimia caches every step of the build; the flags have no effect")
	}
	return nil
}

// defaultCacheDir is where --cache keeps state when --cache-dir is not
// given: $XDG_CACHE_HOME/kimia, else $HOME/.cache/kimia.
func defaultCacheDir(getenv func(string) (string, bool)) string {
	if x, ok := getenv("XDG_CACHE_HOME"); ok && x != "" {
		return filepath.Join(x, "kimia")
	}
	if h, ok := getenv("HOME"); ok && h != "" {
		return filepath.Join(h, ".cache", "kimia")
	}
	return filepath.Join(os.TempDir(), "kimia-cache")
}

func (r *resolver) output(o *build.Options) error {
	c := r.c
	out := &o.Publish
	out.NoPush = c.Bool("no-push")
	for _, p := range []struct {
		flag string
		dst  *string
	}{
		{"tar-path", &out.TarPath}, {"oci-layout-path", &out.OCILayoutPath},
		{"digest-file", &out.DigestFile}, {"image-name-with-digest-file", &out.ImageNameWithDigestFile},
		{"image-name-tag-with-digest-file", &out.ImageNameTagWithDigestFile},
		{"metadata-file", &out.MetadataFile},
	} {
		v := c.String(p.flag)
		if v == "" {
			continue
		}
		abs, err := filepath.Abs(v)
		if err != nil {
			return usagef(p.flag, "%q: %v", v, err)
		}
		if fi, err := os.Stat(abs); err == nil && fi.IsDir() && p.flag != "oci-layout-path" {
			return usagef(p.flag, "%q is a directory; give a file path", v)
		}
		*p.dst = abs
	}
	var err error
	if out.PushRetry, err = parseRetries("push-retry", c.Int("push-retry")); err != nil {
		return err
	}
	out.IgnoreImmutableTagErrors = c.Bool("push-ignore-immutable-tag-errors")
	out.SkipPushPermissionCheck = c.Bool("skip-push-permission-check")
	o.NoPreflight = c.Bool("no-preflight")
	out.PushBackoff.Initial = time.Duration(c.Int("push-retry-initial-delay")) * time.Millisecond
	out.PushBackoff.Max = time.Duration(c.Int("push-retry-max-delay")) * time.Millisecond
	out.PushBackoff.Factor = c.Float64("push-retry-backoff-multiplier")
	if out.PushBackoff.Initial <= 0 {
		return usagef("push-retry-initial-delay", "%d is not a positive number of milliseconds", c.Int("push-retry-initial-delay"))
	}
	if out.PushBackoff.Max < out.PushBackoff.Initial {
		return usagef("push-retry-max-delay", "%d is less than --push-retry-initial-delay", c.Int("push-retry-max-delay"))
	}
	if out.PushBackoff.Factor < 1 || out.PushBackoff.Factor > 10 {
		return usagef("push-retry-backoff-multiplier", "%g is not between 1 and 10", out.PushBackoff.Factor)
	}

	o.Engine.Compression.Algorithm = strings.ToLower(c.String("compression"))
	o.Engine.Compression.Level = c.Int("compression-level")
	lo, hi := 1, 9
	switch o.Engine.Compression.Algorithm {
	case "gzip":
	case "zstd":
		hi = 22
	case "uncompressed", "none":
		o.Engine.Compression.Algorithm = "uncompressed"
		lo, hi = 0, 0
	default:
		return usagef("compression", "%q is not gzip, zstd or uncompressed", o.Engine.Compression.Algorithm)
	}
	if l := o.Engine.Compression.Level; l != -1 && (l < lo || l > hi) {
		return usagef("compression-level", "%d is out of range for %s (%d-%d, or -1 for the default)", l, o.Engine.Compression.Algorithm, lo, hi)
	}
	return nil
}

func (r *resolver) git(o *build.Options) error {
	g := &o.Source.Git
	if s := r.c.String("git"); s != "" {
		f, err := parseFields("git", s)
		if err != nil {
			return err
		}
		for k, v := range f {
			var err error
			switch k {
			case "branch":
				g.Branch = v
			case "single-branch":
				g.SingleBranch, err = parseBool("git", k, v)
			case "recurse-submodules":
				g.RecurseSubmodules, err = parseBool("git", k, v)
			case "insecure-skip-tls":
				g.InsecureSkipTLS, err = parseBool("git", k, v)
			default:
				return usagef("git", "unknown option %q (want branch, single-branch, recurse-submodules, insecure-skip-tls)", k)
			}
			if err != nil {
				return err
			}
		}
	}
	if b := r.c.String("git-branch"); b != "" {
		if g.Branch != "" && g.Branch != b {
			return usagef("git-branch", "%q conflicts with --git branch=%s", b, g.Branch)
		}
		g.Branch = b
	}
	g.Revision = r.c.String("git-revision")
	g.TokenFile = r.c.String("git-token-file")
	if g.TokenFile != "" {
		if _, err := os.Stat(g.TokenFile); err != nil {
			return usagef("git-token-file", "%v", unwrapPathError(err))
		}
	}
	g.TokenUser = r.c.String("git-token-user")
	n, err := parseSize("context-max-size", r.c.String("context-max-size"))
	if err != nil {
		return err
	}
	o.Source.MaxSize = n
	return nil
}

func (r *resolver) registry(o *build.Options) error {
	c := r.c
	rc := &o.Engine.Registry
	rc.Insecure = c.Bool("insecure")
	rc.InsecurePull = c.Bool("insecure-pull")
	rc.SkipTLSVerify = c.Bool("skip-tls-verify")
	rc.SkipTLSVerifyPull = c.Bool("skip-tls-verify-pull")
	rc.SkipDefaultRegistryFallback = c.Bool("skip-default-registry-fallback")
	for _, f := range []struct {
		flag string
		dst  *[]string
	}{{"insecure-registry", &rc.InsecureRegistries}, {"skip-tls-verify-registry", &rc.SkipTLSVerifyRegistries}} {
		for _, h := range r.list(f.flag) {
			if err := checkRegistryHost(f.flag, h); err != nil {
				return err
			}
			*f.dst = append(*f.dst, h)
		}
	}
	for _, s := range r.list("registry-certificate") {
		hf, err := parseHostFile("registry-certificate", s)
		if err != nil {
			return err
		}
		rc.Certificates = append(rc.Certificates, hf)
	}
	for _, s := range r.list("registry-client-cert") {
		cc, err := parseClientCert(s)
		if err != nil {
			return err
		}
		rc.ClientCerts = append(rc.ClientCerts, cc)
	}
	for _, m := range r.list("registry-mirror") {
		for _, one := range strings.Split(m, ",") { // KANIKO_REGISTRY_MIRROR is comma-separated
			if one = strings.TrimSpace(one); one == "" {
				continue
			}
			m, err := engine.ParseMirror(one)
			if err != nil {
				return usagef("registry-mirror", "%v", err)
			}
			if err := checkRegistryHost("registry-mirror", m.Host); err != nil {
				return err
			}
			rc.Mirrors = append(rc.Mirrors, m)
		}
	}
	for _, s := range r.list("registry-map") {
		maps, err := parseRegistryMap(s)
		if err != nil {
			return err
		}
		rc.Maps = append(rc.Maps, maps...)
	}
	if rc.SkipDefaultRegistryFallback && len(rc.Mirrors) == 0 && len(rc.Maps) == 0 {
		r.notice("--skip-default-registry-fallback has no effect without --registry-mirror or --registry-map")
	}
	var err error
	if o.Engine.ImageDownloadRetry, err = parseRetries("image-download-retry", c.Int("image-download-retry")); err != nil {
		return err
	}
	extract, err := parseRetries("image-fs-extract-retry", c.Int("image-fs-extract-retry"))
	if err != nil {
		return err
	}
	if extract > o.Engine.ImageDownloadRetry {
		// The engines pull and unpack in one step, so extraction retries
		// are pull retries.
		o.Engine.ImageDownloadRetry = extract
		r.notice("--image-fs-extract-retry=%d: the engines pull and unpack in one step; retrying base-image pulls %d times", extract, extract)
	}
	rc.DockerConfigDir = dockerConfigDir(r.getenv)
	return nil
}

// dockerConfigDir finds the directory with the docker config.json that
// holds registry credentials: $DOCKER_CONFIG, then $HOME/.docker, then
// Kaniko's /kaniko/.docker. It returns "" when there is none.
func dockerConfigDir(getenv func(string) (string, bool)) string {
	var dirs []string
	if d, ok := getenv("DOCKER_CONFIG"); ok && d != "" {
		dirs = append(dirs, d)
	}
	if h, ok := getenv("HOME"); ok && h != "" {
		dirs = append(dirs, filepath.Join(h, ".docker"))
	}
	dirs = append(dirs, "/kaniko/.docker")
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "config.json")); err == nil {
			return d
		}
	}
	return ""
}

func (r *resolver) reproducible(o *build.Options) error {
	o.Engine.Reproducible = r.c.Bool("reproducible")
	if s := r.c.String("timestamp"); s != "" {
		t, err := parseEpoch("--timestamp", s)
		if err != nil {
			return err
		}
		o.Engine.Reproducible = true
		o.Engine.SourceDateEpoch = &t
		return nil
	}
	if s, ok := r.getenv("SOURCE_DATE_EPOCH"); ok && s != "" {
		t, err := parseEpoch("SOURCE_DATE_EPOCH", s)
		if err != nil {
			return err
		}
		o.Engine.SourceDateEpoch = &t
	}
	if o.Engine.Reproducible && o.Engine.SourceDateEpoch == nil {
		t := time.Unix(0, 0).UTC()
		o.Engine.SourceDateEpoch = &t
	}
	return nil
}

func (r *resolver) kanikoNoops(o *build.Options) error {
	c := r.c
	if c.IsSet("bucket") {
		return usagef("bucket", "GCS bucket contexts are not supported; download the tarball and use --context=tar://FILE, or use a git URL")
	}
	for _, n := range []struct{ flag, why string }{
		{"snapshot-mode", "BuildKit and Buildah compute layer changes themselves"},
		{"use-new-run", "kimia always runs RUN in an isolated container"},
		{"single-snapshot", "kimia keeps one layer per filesystem-changing step"},
		{"cleanup", "kimia never writes into its own filesystem, and removes its temporary files itself"},
		{"force", "kimia can build inside or outside a container"},
		{"kaniko-dir", "kimia uses temporary directories and --cache-dir"},
		{"ignore-path", "kimia never snapshots its own filesystem, so there is nothing to ignore"},
		{"ignore-var-run", "kimia never snapshots its own filesystem, so /var/run is never captured"},
		{"force-build-metadata", "kimia adds no layers for metadata-only steps"},
		{"sandbox", "kimia always builds in an isolated root"},
	} {
		if c.IsSet(n.flag) {
			r.notice("--%s is accepted for Kaniko compatibility and has no effect: %s", n.flag, n.why)
		}
	}
	return nil
}

func (r *resolver) engineOptions(o *build.Options, optionFlag string) error {
	opts, err := r.kvs(optionFlag)
	if err != nil {
		return err
	}
	o.Engine.EngineOptions = opts
	return nil
}

// consistency checks combinations of flags.
func (r *resolver) consistency(o *build.Options) error {
	out := &o.Publish
	if !out.NoPush && len(out.Destinations) == 0 && !r.lenient {
		return engine.Errorf(engine.KindUsage, "no --destination given: name where to push, or add --no-push")
	}
	if out.ImageNameTagWithDigestFile != "" || out.ImageNameWithDigestFile != "" {
		if len(out.Destinations) == 0 {
			return engine.Errorf(engine.KindUsage, "--image-name-with-digest-file and --image-name-tag-with-digest-file need at least one --destination")
		}
	}
	if o.Engine.Format == engine.FormatDocker && o.Engine.Compression.Algorithm == "zstd" {
		return engine.Errorf(engine.KindUsage, "--compression=zstd with --format=docker: Docker manifests cannot hold zstd layers; use --format=oci or --compression=gzip")
	}
	if out.TarPath != "" && len(o.Engine.Platforms) > 1 {
		return engine.Errorf(engine.KindUsage, "--tar-path with %d platforms: a docker-archive holds one image per tag; use --oci-layout-path for a multi-platform image", len(o.Engine.Platforms))
	}
	if o.Engine.Cache.Enabled && o.Engine.Cache.Repo == "" && len(out.Destinations) > 0 && !out.NoPush {
		// Kaniko's default: the first destination's repository + /cache.
		// With --no-push Kaniko asks for an explicit --cache-repo; kimia
		// then keeps the local cache only.
		tag, _ := parseDestination(out.Destinations[0])
		o.Engine.Cache.Repo = tag.Context().String() + "/cache"
	}
	if o.Engine.Cache.NoPush && o.Engine.Cache.Repo == "" {
		r.notice("--no-push-cache has no effect without a registry cache (--cache-repo, or --cache with a --destination)")
	}
	if o.Engine.Cache.Repo != "" && !o.Engine.Cache.Enabled {
		r.notice("--cache-repo is used only with --cache; building without a cache")
		o.Engine.Cache.Repo = ""
	}
	return nil
}

// logging sets up the logger and progress display of the request.
func (r *resolver) logging(o *build.Options, optionFlag string) error {
	log, err := newLogger(r.c.App.ErrWriter, r.c.String("verbosity"), r.c.String("log-format"), r.c.Bool("log-timestamp"), FieldNames(optionFlag))
	if err != nil {
		return err
	}
	progress, err := progressMode(r.c.String("progress"), r.c.String("verbosity"))
	if err != nil {
		return err
	}
	o.Log = log
	o.Engine.Progress = r.c.App.ErrWriter
	o.Engine.ProgressMode = progress
	return nil
}
