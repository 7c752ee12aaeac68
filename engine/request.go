package engine

import (
	"context"
	"io"
	"log/slog"
	"time"
)

// Request is what an engine builds with, resolved once from flags and
// environment; it holds no CLI types and nothing an engine does not read.
// The run's other options (where the context comes from, what happens to
// the image) are build.Options; build.Run makes a Request from them.
type Request struct {
	// ContextDir is the local directory that is the build context, with
	// any sub path already applied. Set by the orchestration.
	ContextDir string
	// Dockerfile is the absolute path of the Dockerfile. It may lie
	// outside ContextDir. Set by the orchestration.
	Dockerfile string
	// DockerfileName is the Dockerfile as the user named it,
	// for messages: a clone's temporary path means nothing to the user.
	DockerfileName string

	// Target is the stage to build; empty means the last one.
	Target string
	// BuildArgs, Labels and Annotations keep the user's order; for
	// repeated keys the last one wins.
	BuildArgs   []KeyValue
	Labels      []KeyValue
	Annotations []KeyValue
	// Platforms to build; empty means the host's platform.
	Platforms []Platform
	// Secrets for RUN --mount=type=secret. Only references: values are read
	// by the engine at build time and never stored in the request.
	Secrets []Secret
	// SSH agent sockets or keys for RUN --mount=type=ssh.
	SSH []SSH
	// SkipUnusedStages builds only the stages the target needs.
	SkipUnusedStages bool

	Cache Cache
	// StorageDriver is "native", "overlay", or empty to let the engine
	// probe and choose.
	StorageDriver string
	// Format is the manifest format: FormatOCI (default) or FormatDocker.
	Format string
	// Reproducible strips non-deterministic metadata; with
	// SourceDateEpoch it also fixes times.
	Reproducible bool
	// SourceDateEpoch, when set, is the image's created time and the upper
	// bound for layer file times.
	SourceDateEpoch *time.Time
	Compression     Compression

	// Registry settings apply to every registry access: base-image pulls,
	// cache import/export and pushes.
	Registry RegistryConfig
	// ImageDownloadRetry is how many times a failed base-image pull is
	// retried.
	ImageDownloadRetry int

	// EngineOptions are the engine's own options, raw (the pass-through
	// flag's values).
	// The engine validates them.
	EngineOptions []KeyValue

	// OutputDir is an empty directory, owned by the caller, where Build
	// writes the OCI image layout.
	OutputDir string
	// HaveBlob, when set, says whether the shared layer can do without
	// the bytes of a layer blob the engine would hand over (its compressed
	// form or its uncompressed tar, by digest): it can when it knows what
	// the blob becomes in the image and every destination has that. An
	// engine that copies blobs out (BuildKit's exporter) copies only the
	// others.
	HaveBlob func(ctx context.Context, digest string) bool

	// Log receives the engine's log records; never nil after resolution.
	Log *slog.Logger `json:"-"`
	// Progress receives build progress (stderr in the binaries).
	Progress     io.Writer `json:"-"`
	ProgressMode ProgressMode
}

// Image formats.
const (
	FormatOCI    = "oci"
	FormatDocker = "docker"
)

// Storage drivers, as the user names them.
const (
	StorageNative  = "native"
	StorageOverlay = "overlay"
)

// ProgressMode says how build progress is shown.
type ProgressMode string

// Progress modes.
const (
	ProgressAuto  ProgressMode = "auto"  // a live display on a terminal, plain lines otherwise
	ProgressTTY   ProgressMode = "tty"   // a live display
	ProgressPlain ProgressMode = "plain" // one line per event
	ProgressQuiet ProgressMode = "quiet" // errors only
)

// KeyValue is one K=V pair from a repeatable flag.
type KeyValue struct {
	Key   string
	Value string
}

// Secret references a secret for RUN --mount=type=secret,id=ID: a file
// (Src) or an environment variable (Env) of the kimia process.
type Secret struct {
	ID  string
	Src string
	Env string
}

// SSH references an SSH agent socket or private keys for
// RUN --mount=type=ssh,id=ID. Empty Paths means $SSH_AUTH_SOCK.
type SSH struct {
	ID    string
	Paths []string
}

// Cache configures layer caching.
type Cache struct {
	// Enabled turns on reuse of cached layers.
	Enabled bool
	// Dir holds the engine's persistent state between runs. Empty means
	// a temporary directory removed after the build.
	Dir string
	// Repo is a registry repository for cache import and export; empty
	// means no registry cache.
	Repo string
	// TTL bounds the age of cache entries that are reused.
	TTL time.Duration
	// NoPush imports from Repo but never exports to it.
	NoPush bool
	// CopyLayers and RunLayers say which layers Kaniko would cache. Both
	// engines cache every step; these only restrict what is exported.
	CopyLayers bool
	RunLayers  bool
}

// Compression of pushed layers.
type Compression struct {
	// Algorithm is "gzip" (default), "zstd" or "uncompressed".
	Algorithm string
	// Level is the compression level; -1 means the algorithm's default.
	Level int
}
