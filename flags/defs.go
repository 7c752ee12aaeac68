package flags

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// Help headings, in the order --help and docs/cli-reference.md show them.
const (
	catCore       = "Core"
	catBuild      = "Build"
	catCache      = "Cache"
	catOutput     = "Output"
	catAttest     = "Attestation & signing"
	catGit        = "Git"
	catRegistry   = "Registry"
	catReproduce  = "Reproducible builds"
	catLogging    = "Logging"
	catAdvanced   = "Advanced"
	catKanikoNoop = "Kaniko compatibility (accepted, no effect)"
)

var categoryOrder = []string{
	catCore, catBuild, catCache, catOutput, catAttest, catGit, catRegistry,
	catReproduce, catLogging, catAdvanced, catKanikoNoop,
}

// envVar is the KIMIA_* variable that sets a flag: --build-arg is
// KIMIA_BUILD_ARG.
func envVar(flag string) string {
	return "KIMIA_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// envs lists a flag's environment variables: its own, then Kaniko's.
func envs(flag string, kaniko ...string) []string {
	return append([]string{envVar(flag)}, kaniko...)
}

func strFlag(cat, name string, aliases []string, def, usage string, kanikoEnv ...string) *cli.StringFlag {
	return &cli.StringFlag{Name: name, Aliases: aliases, Value: def, Usage: usage, Category: cat, EnvVars: envs(name, kanikoEnv...)}
}

func boolFlag(cat, name string, def bool, usage string, kanikoEnv ...string) *cli.BoolFlag {
	return &cli.BoolFlag{Name: name, Value: def, Usage: usage, Category: cat, EnvVars: envs(name, kanikoEnv...)}
}

func intFlag(cat, name string, def int, usage string) *cli.IntFlag {
	return &cli.IntFlag{Name: name, Value: def, Usage: usage, Category: cat, EnvVars: envs(name)}
}

// hidden keeps a deprecated spelling out of --help (it still works).
func hidden(f *cli.StringSliceFlag) *cli.StringSliceFlag {
	f.Hidden = true
	return f
}

// listFlag is a repeatable flag. The app disables urfave's comma
// splitting, so a value such as --build-arg LIST=a,b arrives whole; from
// the environment, values are separated by newlines (see resolver.list).
func listFlag(cat, name string, aliases []string, usage string, kanikoEnv ...string) *cli.StringSliceFlag {
	return &cli.StringSliceFlag{Name: name, Aliases: aliases, Usage: usage + " (repeatable)", Category: cat, EnvVars: envs(name, kanikoEnv...)}
}

// commonFlags are the flags both binaries share. optionFlag is the engine's
// pass-through flag ("buildkit-opt" or "buildah-opt").
func commonFlags(optionFlag, engineName string) []cli.Flag {
	return []cli.Flag{
		// Core
		strFlag(catCore, "context", []string{"c"}, ".", "build context: a directory, dir://DIR, tar://FILE.tar[.gz], tar://stdin, or a git URL (https://, git://, ssh://, git@host:repo)"),
		strFlag(catCore, "dockerfile", []string{"f"}, "Dockerfile", "path to the Dockerfile, relative to the context (or absolute)"),
		listFlag(catCore, "destination", []string{"d"}, "image to push, as registry/repo:tag"),
		strFlag(catCore, "target", []string{"t"}, "", "stage of a multi-stage Dockerfile to build"),
		strFlag(catCore, "context-sub-path", nil, "", "directory inside the context to use as the context"),

		// Build
		listFlag(catBuild, "build-arg", nil, "build-time variable KEY=VALUE; KEY alone takes the value from the environment"),
		listFlag(catBuild, "label", nil, "image label KEY=VALUE"),
		listFlag(catBuild, "annotation", nil, "manifest annotation KEY=VALUE"),
		listFlag(catBuild, "platform", nil, "platforms to build, as os/arch[/variant]; comma-separated for a multi-platform index"),
		listFlag(catBuild, "custom-platform", nil, "Kaniko's spelling of --platform"),
		hidden(listFlag(catBuild, "customPlatform", nil, "Kaniko's deprecated spelling of --platform")),
		listFlag(catBuild, "secret", nil, "secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR"),
		listFlag(catBuild, "ssh", nil, "SSH agent socket or keys for RUN --mount=type=ssh: default, or ID=PATH[,PATH]"),
		boolFlag(catBuild, "skip-unused-stages", false, "build only the stages the target needs"),
		strFlag(catBuild, "storage-driver", nil, "", "storage backend: native or overlay (default: overlay when it works here, native otherwise)"),
		strFlag(catBuild, "format", nil, engineFormatDefault, "manifest format: oci or docker (docker keeps HEALTHCHECK, SHELL and STOPSIGNAL in every engine)"),

		// Cache
		boolFlag(catCache, "cache", false, "reuse cached layers: local state in --cache-dir and a registry cache in --cache-repo"),
		strFlag(catCache, "cache-dir", nil, "", "directory that keeps the engine's state and layer cache between builds (default with --cache: $XDG_CACHE_HOME/kimia)"),
		strFlag(catCache, "cache-repo", nil, "", "registry repository for the layer cache (default with --cache: <first destination>/cache)"),
		&cli.DurationFlag{Name: "cache-ttl", Value: 336 * 60 * 60 * 1e9, Usage: "maximum age of reused cache entries", Category: catCache, EnvVars: envs("cache-ttl")},
		boolFlag(catCache, "no-push-cache", false, "import the registry cache but do not export to it"),
		boolFlag(catCache, "cache-copy-layers", false, "Kaniko: cache COPY layers (always done by kimia)"),
		boolFlag(catCache, "cache-run-layers", true, "Kaniko: cache RUN layers (always done by kimia)"),
		boolFlag(catCache, "compressed-caching", true, "Kaniko: compress cached layers (always done by kimia)"),

		// Output
		boolFlag(catOutput, "no-push", false, "build without pushing", "KANIKO_NO_PUSH"),
		strFlag(catOutput, "tar-path", []string{"tarPath"}, "", "also write the image as a docker-archive with every destination's tag"),
		strFlag(catOutput, "oci-layout-path", nil, "", "also write the image as an OCI image layout directory"),
		strFlag(catOutput, "digest-file", nil, "", "write the image digest to this file"),
		strFlag(catOutput, "image-name-with-digest-file", nil, "", "write repo@digest, one line per destination, to this file"),
		strFlag(catOutput, "image-name-tag-with-digest-file", nil, "", "write [{image, digest}] JSON, one entry per destination tag, to this file"),
		strFlag(catOutput, "metadata-file", nil, "", "write build metadata (destinations, digests, platforms, sizes, duration, cache hits) as JSON to this file"),
		intFlag(catOutput, "push-retry", 3, "retries of a whole push after a transient failure (5xx, 429, reset, timeout), with exponential backoff; single requests are first retried on their own, honouring Retry-After"),
		intFlag(catOutput, "push-retry-initial-delay", 1000, "milliseconds before the first push retry"),
		intFlag(catOutput, "push-retry-max-delay", 30000, "longest wait in milliseconds between push retries"),
		&cli.Float64Flag{Name: "push-retry-backoff-multiplier", Value: 2, Usage: "growth factor of the wait between push retries", Category: catOutput, EnvVars: envs("push-retry-backoff-multiplier")},
		boolFlag(catOutput, "push-ignore-immutable-tag-errors", false, "treat a registry's refusal to overwrite an immutable tag as success"),
		boolFlag(catOutput, "skip-push-permission-check", false, "do not check push permission on each destination before building"),
		strFlag(catOutput, "compression", nil, "gzip", "layer compression: gzip, zstd or uncompressed"),
		intFlag(catOutput, "compression-level", -1, "compression level (gzip 1-9, zstd 1-22; -1 is the default)"),

		// Attestation & signing
		strFlag(catAttest, "attestation", nil, "off", "attestations: off, min (provenance without build-arg values) or max (SBOM and full provenance)"),
		listFlag(catAttest, "attest", nil, "docker-style attestation: type=sbom|provenance[,mode=min|max][,builder-id=URI][,format=spdx-json|cyclonedx-json]"),
		strFlag(catAttest, "attestation-storage", nil, "both", "where attestations go: index, cosign, both or referrers"),
		boolFlag(catAttest, "sign", false, "sign the image (and its attestations) with a cosign key"),
		strFlag(catAttest, "cosign-key", nil, "", "cosign private key (cosign's encrypted format or plain PEM)"),
		strFlag(catAttest, "cosign-password-env", nil, "COSIGN_PASSWORD", "environment variable that holds the key's password"),
		listFlag(catAttest, "sign-annotations", nil, "annotation KEY=VALUE added to signatures"),
		strFlag(catAttest, "sbom-file", nil, "", "also write the SBOM to this file"),
		strFlag(catAttest, "provenance-file", nil, "", "also write the provenance statement to this file"),

		// Git
		&cli.StringFlag{Name: "git", Usage: "Kaniko's git options: branch=NAME,single-branch=BOOL,recurse-submodules=BOOL,insecure-skip-tls=BOOL", Category: catGit, EnvVars: envs("git")},
		strFlag(catGit, "git-branch", nil, "", "git branch to check out"),
		strFlag(catGit, "git-revision", nil, "", "git commit, tag or ref to check out"),
		strFlag(catGit, "git-token-file", nil, "", "file holding a token for HTTPS git contexts"),
		strFlag(catGit, "git-token-user", nil, "", "user name sent with the git token (default: oauth2)"),
		strFlag(catGit, "context-max-size", nil, "10GiB", "largest tarball or clone accepted as a context"),

		// Registry
		boolFlag(catRegistry, "insecure", false, "push to registries over plain HTTP"),
		boolFlag(catRegistry, "insecure-pull", false, "pull from registries over plain HTTP"),
		listFlag(catRegistry, "insecure-registry", nil, "registry reached over plain HTTP for push and pull"),
		boolFlag(catRegistry, "skip-tls-verify", false, "push without verifying TLS certificates"),
		boolFlag(catRegistry, "skip-tls-verify-pull", false, "pull without verifying TLS certificates"),
		listFlag(catRegistry, "skip-tls-verify-registry", nil, "registry whose TLS certificate is not verified"),
		listFlag(catRegistry, "registry-certificate", nil, "CA certificate for a registry: host=/path/ca.crt"),
		listFlag(catRegistry, "registry-client-cert", nil, "TLS client certificate for a registry: host=/path/cert.crt,/path/key.key"),
		listFlag(catRegistry, "registry-mirror", nil, "pull-through mirror used instead of docker.io", "KANIKO_REGISTRY_MIRROR"),
		listFlag(catRegistry, "registry-map", nil, "pull-through mirrors for other registries: original.registry=new.registry[;...]", "KANIKO_REGISTRY_MAP"),
		boolFlag(catRegistry, "skip-default-registry-fallback", false, "fail instead of pulling from the original registry when every mirror failed"),
		intFlag(catRegistry, "image-download-retry", 0, "retries of a failed base-image pull"),
		intFlag(catRegistry, "image-fs-extract-retry", 0, "Kaniko: retries of base-image extraction (kimia folds these into --image-download-retry)"),

		// Reproducible builds
		boolFlag(catReproduce, "reproducible", false, "reproducible image: fixed times (SOURCE_DATE_EPOCH or 0), clamped file times, sorted metadata"),
		strFlag(catReproduce, "timestamp", nil, "", "image creation time as a Unix epoch; implies --reproducible"),

		// Logging
		strFlag(catLogging, "verbosity", []string{"v"}, "info", "log level: trace, debug, info, warn, error (fatal and panic mean error)"),
		strFlag(catLogging, "log-format", nil, "text", "log format: text, color or json"),
		boolFlag(catLogging, "log-timestamp", false, "prefix log lines with a timestamp"),
		strFlag(catLogging, "progress", nil, "auto", "build progress: auto, tty, plain or quiet"),

		// Advanced
		listFlag(catAdvanced, optionFlag, nil, "option passed to "+engineName+" as KEY=VALUE (see docs/cli-reference.md)"),
		boolFlag(catAdvanced, "no-preflight", false, "skip the checks that run before the build"),

		// Kaniko flags that mean nothing for kimia: accepted, with a notice.
		strFlag(catKanikoNoop, "snapshot-mode", []string{"snapshotMode"}, "", "Kaniko: how to detect file changes (kimia's engines track changes themselves)"),
		boolFlag(catKanikoNoop, "use-new-run", false, "Kaniko: experimental RUN implementation (kimia always isolates RUN)"),
		boolFlag(catKanikoNoop, "single-snapshot", false, "Kaniko: one snapshot at the end (kimia keeps one layer per step)"),
		boolFlag(catKanikoNoop, "cleanup", false, "Kaniko: clean the filesystem at the end (kimia never touches its own filesystem)"),
		boolFlag(catKanikoNoop, "force", false, "Kaniko: build outside a container (kimia builds anywhere)"),
		strFlag(catKanikoNoop, "kaniko-dir", nil, "", "Kaniko: its work directory (kimia uses temporary directories and --cache-dir)", "KANIKO_DIR"),
		listFlag(catKanikoNoop, "ignore-path", nil, "Kaniko: paths left out of snapshots (kimia never snapshots its own filesystem)"),
		boolFlag(catKanikoNoop, "ignore-var-run", true, "Kaniko: leave /var/run out of snapshots (kimia never snapshots its own filesystem)"),
		boolFlag(catKanikoNoop, "force-build-metadata", false, "Kaniko: add layers for metadata-only steps (kimia adds none)"),
		boolFlag(catKanikoNoop, "sandbox", false, "Kaniko fork: build in /kaniko/sandbox (kimia always builds in an isolated root)"),
		strFlag(catKanikoNoop, "bucket", []string{"b"}, "", "Kaniko: GCS bucket holding the context (not supported: use tar:// or a git URL)"),
	}
}

// engineFormatDefault is the default manifest format.
const engineFormatDefault = "oci"
