package buildkit

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/rapidfort/kimia/engine"
)

// daemonConfig is the part of buildkitd.toml kimia writes. Field names
// and TOML keys follow github.com/moby/buildkit/cmd/buildkitd/config; a
// unit test reads the generated file back with that package, so a drift
// shows up there. Paths and addresses are passed as flags, not here.
type daemonConfig struct {
	Worker   workerConfig               `toml:"worker"`
	Registry map[string]registrySection `toml:"registry,omitempty"`
	History  historyConfig              `toml:"history"`
}

type workerConfig struct {
	OCI        ociWorker        `toml:"oci"`
	Containerd containerdWorker `toml:"containerd"`
}

type ociWorker struct {
	Enabled     bool   `toml:"enabled"`
	Snapshotter string `toml:"snapshotter"`
	Rootless    bool   `toml:"rootless"`
	// Binary is the OCI runtime: Debian's runc works, rootless too.
	Binary string `toml:"binary"`
	// NetworkMode is "host": RUN shares kimia's network, as Kaniko's RUN
	// does; no CNI or slirp4netns is needed.
	NetworkMode string `toml:"networkMode"`
	// Platforms are the host's and the requested ones. Naming them skips
	// buildkitd's start-up probe, which executes a test binary for every
	// architecture binfmt_misc knows (a dozen QEMU starts); kimia checks
	// the emulators it needs itself (engine.Emulator).
	Platforms []string   `toml:"platforms"`
	GC        bool       `toml:"gc"`
	GCPolicy  []gcPolicy `toml:"gcpolicy,omitempty"`
}

type containerdWorker struct {
	Enabled bool `toml:"enabled"`
	// Platforms is set only to skip the same probe for this disabled
	// worker.
	Platforms []string `toml:"platforms"`
}

type gcPolicy struct {
	All          bool     `toml:"all,omitempty"`
	Filters      []string `toml:"filters,omitempty"`
	KeepDuration string   `toml:"keepDuration,omitempty"`
	MaxUsedSpace string   `toml:"maxUsedSpace,omitempty"`
	MinFreeSpace string   `toml:"minFreeSpace,omitempty"`
}

type historyConfig struct {
	MaxAge     string `toml:"maxAge"`
	MaxEntries int64  `toml:"maxEntries"`
}

// registrySection is one [registry."host"] table.
type registrySection struct {
	Mirrors   []string  `toml:"mirrors,omitempty"`
	PlainHTTP *bool     `toml:"http,omitempty"`
	Insecure  *bool     `toml:"insecure,omitempty"`
	RootCAs   []string  `toml:"ca,omitempty"`
	KeyPairs  []keyPair `toml:"keypair,omitempty"`
}

type keyPair struct {
	Key         string `toml:"key"`
	Certificate string `toml:"cert"`
}

// Snapshotter names as buildkitd knows them.
const (
	snapshotterAuto    = "auto"
	snapshotterOverlay = "overlayfs"
	snapshotterNative  = "native"
)

// snapshotterFor maps the storage driver asked for to a buildkitd snapshotter. An
// empty driver lets buildkitd probe: it mounts overlayfs in its state dir,
// in its own namespaces, which is the only honest test of whether
// overlay works for this daemon.
func snapshotterFor(driver string) string {
	switch driver {
	case engine.StorageNative:
		return snapshotterNative
	case engine.StorageOverlay:
		return snapshotterOverlay
	}
	return snapshotterAuto
}

// newDaemonConfig returns the configuration for one build. pullHosts are
// the registries the Dockerfile pulls from; pushHosts are registries
// buildkitd pushes to (the registry cache).
func newDaemonConfig(req *engine.Request, rootless bool, pullHosts, pushHosts []string) daemonConfig {
	plats := []string{engine.HostPlatform().String()}
	for _, p := range req.Platforms {
		if !slices.Contains(plats, p.String()) {
			plats = append(plats, p.String())
		}
	}
	cfg := daemonConfig{
		Worker: workerConfig{
			OCI: ociWorker{
				Enabled:     true,
				Snapshotter: snapshotterFor(req.StorageDriver),
				Rootless:    rootless,
				Binary:      "runc",
				NetworkMode: "host",
				Platforms:   plats,
				GC:          true,
				GCPolicy:    gcPolicies(req.Cache.TTL),
			},
			Containerd: containerdWorker{Enabled: false, Platforms: plats},
		},
		// The build history is only for `buildctl debug`; keep it small
		// in a cache dir that lives for many builds.
		History:  historyConfig{MaxAge: "48h", MaxEntries: 20},
		Registry: registrySections(&req.Registry, pullHosts, pushHosts),
	}
	return cfg
}

// gcPolicies keeps what the cache TTL says, and bounds the state dir the way
// buildkitd's defaults do: transient records (contexts, cache mounts, git
// checkouts) go first, everything else after ttl or when the disk fills.
func gcPolicies(ttl time.Duration) []gcPolicy {
	if ttl <= 0 {
		ttl = 14 * 24 * time.Hour // Kaniko's default cache TTL
	}
	transient := min(ttl, 48*time.Hour)
	return []gcPolicy{
		{
			Filters:      []string{"type==source.local", "type==exec.cachemount", "type==source.git.checkout"},
			KeepDuration: transient.String(),
			MaxUsedSpace: "512MB",
		},
		{All: true, KeepDuration: ttl.String()},
		{All: true, MaxUsedSpace: "20%", MinFreeSpace: "10%"},
	}
}

// registrySections turns kimia's registry settings into buildkitd's
// per-host tables. Every host the settings name gets a table, and so does
// every pull host when a setting applies to all pulls (InsecurePull,
// SkipTLSVerifyPull) and every push host when one applies to all pushes
// (Insecure, SkipTLSVerify). Docker Hub is "docker.io" to
// buildkitd.
func registrySections(rc *engine.RegistryConfig, pullHosts, pushHosts []string) map[string]registrySection {
	type use struct{ pull, push bool }
	uses := map[string]*use{}
	var order []string
	note := func(h string, pull, push bool) {
		h = engine.CanonicalHost(h)
		if h == "" {
			return
		}
		u, ok := uses[h]
		if !ok {
			u = &use{}
			uses[h] = u
			order = append(order, h)
		}
		u.pull = u.pull || pull
		u.push = u.push || push
	}
	for _, h := range rc.Hosts() {
		note(h, true, false)
	}
	for _, h := range pullHosts {
		note(h, true, false)
	}
	for _, h := range pushHosts {
		note(h, false, true)
	}

	out := map[string]registrySection{}
	for _, h := range order {
		u := uses[h]
		var s registrySection
		var plain, skip bool
		var cas []string
		var certs []engine.ClientCert
		for _, op := range []struct {
			on bool
			op engine.Op
		}{{u.pull, engine.Pull}, {u.push, engine.Push}} {
			if !op.on {
				continue
			}
			hs := rc.Host(h, op.op)
			plain = plain || hs.PlainHTTP
			skip = skip || hs.SkipTLSVerify
			for _, f := range hs.CAFiles {
				if !slices.Contains(cas, f) {
					cas = append(cas, f)
				}
			}
			for _, c := range hs.ClientCerts {
				if !slices.Contains(certs, c) {
					certs = append(certs, c)
				}
			}
		}
		var mirrors []string
		if u.pull && !rc.SkipDefaultRegistryFallback {
			for _, m := range rc.MirrorsFor(h) {
				mirrors = append(mirrors, m.String())
			}
		}
		if rc.SkipDefaultRegistryFallback {
			// Pulls go to the first mirror (noFallbackPolicy), which
			// falls back to the other mirrors only.
			mirrors = append(mirrors, fallbackMirrors(rc, h)...)
		}
		if !plain && !skip && len(cas) == 0 && len(certs) == 0 && len(mirrors) == 0 {
			continue
		}
		s.Mirrors = mirrors
		switch {
		case plain:
			// Plain HTTP as go-containerregistry's name.Insecure does it
			// for the shared push: HTTPS first, then HTTP. buildkitd
			// falls back only with both settings.
			s.PlainHTTP, s.Insecure = ptr(true), ptr(true)
		case skip || len(cas) > 0 || len(certs) > 0:
			// TLS settings mean TLS, said explicitly: buildkitd otherwise
			// speaks plain HTTP to every loopback address, TLS
			// registries on 127.0.0.x too.
			s.PlainHTTP = ptr(false)
			if skip {
				s.Insecure = ptr(true)
			}
		}
		s.RootCAs = cas
		for _, c := range certs {
			s.KeyPairs = append(s.KeyPairs, keyPair{Key: c.Key, Certificate: c.Cert})
		}
		out[buildkitHost(h)] = s
	}
	// A mirror given as http://host is plain HTTP even without
	// listing it as an insecure registry.
	for _, m := range append(slices.Clone(rc.Mirrors), mapTargets(rc)...) {
		if m.PlainHTTP {
			h := buildkitHost(engine.CanonicalHost(m.Host))
			s := out[h]
			s.PlainHTTP, s.Insecure = ptr(true), ptr(true)
			out[h] = s
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// fallbackMirrors are the mirrors tried for host when it is itself the
// first mirror of a registry and the default registry is never to be
// asked (SkipDefaultRegistryFallback).
func fallbackMirrors(rc *engine.RegistryConfig, host string) []string {
	var out []string
	for _, from := range append([]string{engine.DockerHub}, mapSources(rc)...) {
		ms := rc.MirrorsFor(from)
		if len(ms) < 2 || engine.CanonicalHost(ms[0].Host) != host {
			continue
		}
		for _, m := range ms[1:] {
			if spec := m.String(); !slices.Contains(out, spec) {
				out = append(out, spec)
			}
		}
	}
	return out
}

func mapSources(rc *engine.RegistryConfig) []string {
	var out []string
	for _, m := range rc.Maps {
		out = append(out, m.From)
	}
	return out
}

func mapTargets(rc *engine.RegistryConfig) []engine.Mirror {
	var out []engine.Mirror
	for _, m := range rc.Maps {
		out = append(out, m.To...)
	}
	return out
}

// buildkitHost names a canonical host the way buildkitd's resolver looks
// it up.
func buildkitHost(h string) string {
	if h == engine.DockerHub {
		return "docker.io"
	}
	return h
}

func ptr[T any](v T) *T { return &v }

// encode renders the configuration as TOML.
func (c daemonConfig) encode() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# Generated by kimia for one build; see engine/buildkit/config.go.\n")
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return nil, fmt.Errorf("encoding buildkitd.toml: %w", err)
	}
	return buf.Bytes(), nil
}
