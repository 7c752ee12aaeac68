package buildkit

import (
	"bytes"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	bkconfig "github.com/moby/buildkit/cmd/buildkitd/config"

	"github.com/rapidfort/kimia/dockerfile"
	"github.com/rapidfort/kimia/engine"
)

func baseRequest() *engine.Request {
	return &engine.Request{
		ContextDir: "/ctx",
		Dockerfile: "/df/Dockerfile.prod",
		OutputDir:  "/out",
		Format:     engine.FormatOCI,
		Cache:      engine.Cache{TTL: 336 * time.Hour},
		Compression: engine.Compression{
			Algorithm: "gzip", Level: -1,
		},
	}
}

func TestTranslate(t *testing.T) {
	epoch := time.Unix(1700000000, 0)
	arm := engine.Platform{OS: "linux", Architecture: "arm64"}
	amd := engine.Platform{OS: "linux", Architecture: "amd64"}
	tests := []struct {
		name string
		edit func(*engine.Request)
		df   dockerfile.Info
		// attrs and export are checked as subsets: these keys with these
		// values ("<absent>" for a key that must not be there).
		attrs   map[string]string
		export  map[string]string
		imports []client.CacheOptionsEntry
		exports []client.CacheOptionsEntry
		locals  map[string]string
		wantErr string
	}{
		{
			name:   "a plain build sends the context and the Dockerfile's directory and exports an OCI layout, new layers uncompressed",
			attrs:  map[string]string{"filename": "Dockerfile.prod", "target": "<absent>", "platform": "<absent>"},
			export: map[string]string{"tar": "false", "oci-mediatypes": "true", "rewrite-timestamp": "<absent>", "compression": "uncompressed", "force-compression": "<absent>"},
			locals: map[string]string{"context": "/ctx", "dockerfile": "/df"},
		},
		{
			name: "build args, labels and the target become frontend attributes",
			edit: func(r *engine.Request) {
				r.BuildArgs = []engine.KeyValue{{Key: "A", Value: "1"}, {Key: "B", Value: ""}}
				r.Labels = []engine.KeyValue{{Key: "org.example", Value: "x y"}}
				r.Target = "build"
			},
			df:    dockerfile.Info{Parsed: true, Stages: []string{"build", ""}},
			attrs: map[string]string{"build-arg:A": "1", "build-arg:B": "", "label:org.example": "x y", "target": "build"},
		},
		{
			name:    "a --target the Dockerfile lacks is a usage error naming the stages",
			edit:    func(r *engine.Request) { r.Target = "nope" },
			df:      dockerfile.Info{Parsed: true, Stages: []string{"build", "final"}},
			wantErr: engine.FieldTarget.String() + ` "nope": no such stage in the Dockerfile (its stages: build, final)`,
		},
		{
			name:  "a --target is left to the frontend when the Dockerfile did not parse",
			edit:  func(r *engine.Request) { r.Target = "nope" },
			attrs: map[string]string{"target": "nope"},
		},
		{
			name: "several platforms are one comma-separated attribute; annotations are the shared layer's",
			edit: func(r *engine.Request) {
				r.Platforms = []engine.Platform{amd, arm}
				r.Annotations = []engine.KeyValue{{Key: "org.opencontainers.image.title", Value: "t"}}
			},
			attrs:  map[string]string{"platform": "linux/amd64,linux/arm64"},
			export: map[string]string{"annotation.org.opencontainers.image.title": "<absent>", "annotation-index.org.opencontainers.image.title": "<absent>"},
		},
		{
			name:   "a source date epoch is a build arg and rewrites layer timestamps",
			edit:   func(r *engine.Request) { r.SourceDateEpoch = &epoch; r.Reproducible = true },
			attrs:  map[string]string{"build-arg:SOURCE_DATE_EPOCH": "1700000000"},
			export: map[string]string{"rewrite-timestamp": "true"},
		},
		{
			name: "the format and the compression asked for are the shared layer's: the exporter's stay the same",
			edit: func(r *engine.Request) {
				r.Format = engine.FormatDocker
				r.Compression = engine.Compression{Algorithm: "zstd", Level: 3}
			},
			export: map[string]string{"oci-mediatypes": "true", "compression": "uncompressed", "compression-level": "<absent>", "force-compression": "<absent>"},
		},
		{
			name: "a cache repo is imported and exported in max mode",
			edit: func(r *engine.Request) {
				r.Cache.Enabled = true
				r.Cache.Repo = "reg.example:5000/app/cache"
			},
			imports: []client.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{"ref": "reg.example:5000/app/cache:buildkit"}}},
			exports: []client.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{
				"ref": "reg.example:5000/app/cache:buildkit", "mode": "max", "image-manifest": "true", "oci-mediatypes": "true", "ignore-error": "true"}}},
		},
		{
			name: "--no-push-cache imports only",
			edit: func(r *engine.Request) {
				r.Cache.Enabled, r.Cache.NoPush = true, true
				r.Cache.Repo = "reg.example:5000/app/cache"
			},
			imports: []client.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{"ref": "reg.example:5000/app/cache:buildkit"}}},
		},
		{
			name: "--buildkit-opt passes allowed frontend options",
			edit: func(r *engine.Request) {
				r.EngineOptions = []engine.KeyValue{{Key: "no-cache", Value: ""}, {Key: "build-arg:BUILDKIT_INLINE_CACHE", Value: "1"}}
			},
			attrs: map[string]string{"no-cache": "", "build-arg:BUILDKIT_INLINE_CACHE": "1"},
		},
		{
			name:    "--buildkit-opt refuses what a kimia flag sets",
			edit:    func(r *engine.Request) { r.EngineOptions = []engine.KeyValue{{Key: "platform", Value: "linux/arm64"}} },
			wantErr: engine.FieldEngineOptions.String() + " platform: use " + engine.FieldPlatforms.String() + " instead",
		},
		{
			name:    "--buildkit-opt refuses build args other than BuildKit's own",
			edit:    func(r *engine.Request) { r.EngineOptions = []engine.KeyValue{{Key: "build-arg:TOKEN", Value: "x"}} },
			wantErr: engine.FieldEngineOptions.String() + " build-arg:TOKEN: use " + engine.FieldBuildArgs.String() + " instead",
		},
		{
			name:    "--buildkit-opt refuses unknown options",
			edit:    func(r *engine.Request) { r.EngineOptions = []engine.KeyValue{{Key: "frobnicate", Value: "1"}} },
			wantErr: engine.FieldEngineOptions.String() + " frobnicate: not a dockerfile frontend option",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := baseRequest()
			if tt.edit != nil {
				tt.edit(req)
			}
			p, err := translate(req, tt.df, false)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				if engine.KindOf(err) != engine.KindUsage {
					t.Errorf("kind = %v, want usage", engine.KindOf(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Solve.Frontend != "dockerfile.v0" {
				t.Errorf("frontend = %q", p.Solve.Frontend)
			}
			subset(t, "frontend attrs", p.Solve.FrontendAttrs, tt.attrs)
			if len(p.Solve.Exports) != 1 || p.Solve.Exports[0].Type != client.ExporterOCI || p.Solve.Exports[0].OutputDir != "/out" {
				t.Fatalf("exports = %+v, want one OCI export to /out", p.Solve.Exports)
			}
			subset(t, "export attrs", p.Solve.Exports[0].Attrs, tt.export)
			if !reflect.DeepEqual(p.Solve.CacheImports, tt.imports) {
				t.Errorf("cache imports = %+v, want %+v", p.Solve.CacheImports, tt.imports)
			}
			if !reflect.DeepEqual(p.Solve.CacheExports, tt.exports) {
				t.Errorf("cache exports = %+v, want %+v", p.Solve.CacheExports, tt.exports)
			}
			if tt.locals != nil && !maps.Equal(p.Locals, tt.locals) {
				t.Errorf("locals = %v, want %v", p.Locals, tt.locals)
			}
		})
	}
}

func subset(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		switch {
		case v == "<absent>" && ok:
			t.Errorf("%s: %s = %q, want it absent", what, k, g)
		case v != "<absent>" && (!ok || g != v):
			t.Errorf("%s: %s = %q (present %v), want %q", what, k, g, ok, v)
		}
	}
}

func TestDaemonConfig(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(*engine.Request)
		rootless bool
		pull     []string
		push     []string
		want     map[string]registrySection
		snap     string
	}{
		{
			name: "no registry settings give no registry tables and a probed snapshotter",
			snap: "auto",
		},
		{
			name: "--storage-driver picks the snapshotter",
			edit: func(r *engine.Request) { r.StorageDriver = engine.StorageNative },
			snap: "native",
		},
		{
			name: "--insecure-registry is plain HTTP with fallback for that host only",
			edit: func(r *engine.Request) { r.Registry.InsecureRegistries = []string{"reg:5000"} },
			pull: []string{"reg:5000", "other:5000"},
			want: map[string]registrySection{"reg:5000": {PlainHTTP: ptr(true), Insecure: ptr(true)}},
		},
		{
			name: "--insecure-pull applies to every registry the Dockerfile pulls from",
			edit: func(r *engine.Request) { r.Registry.InsecurePull = true },
			pull: []string{"a:5000", "b:5000"},
			want: map[string]registrySection{
				"a:5000": {PlainHTTP: ptr(true), Insecure: ptr(true)},
				"b:5000": {PlainHTTP: ptr(true), Insecure: ptr(true)},
			},
		},
		{
			name: "--insecure (push) applies to the cache registry, not to pulls",
			edit: func(r *engine.Request) { r.Registry.Insecure = true },
			pull: []string{"a:5000"},
			push: []string{"cache:5000"},
			want: map[string]registrySection{"cache:5000": {PlainHTTP: ptr(true), Insecure: ptr(true)}},
		},
		{
			name: "--skip-tls-verify-pull only skips verification",
			edit: func(r *engine.Request) { r.Registry.SkipTLSVerifyPull = true },
			pull: []string{"a:5000"},
			want: map[string]registrySection{"a:5000": {PlainHTTP: ptr(false), Insecure: ptr(true)}},
		},
		{
			name: "a CA for a loopback registry means TLS, not buildkitd's plain-HTTP default for loopback",
			edit: func(r *engine.Request) {
				r.Registry.Certificates = []engine.HostFile{{Host: "127.0.0.2:5443", Path: "/ca.pem"}}
			},
			want: map[string]registrySection{"127.0.0.2:5443": {PlainHTTP: ptr(false), RootCAs: []string{"/ca.pem"}}},
		},
		{
			name: "certificates and client certificates go to their host",
			edit: func(r *engine.Request) {
				r.Registry.Certificates = []engine.HostFile{{Host: "tls:443", Path: "/ca.pem"}}
				r.Registry.ClientCerts = []engine.ClientCert{{Host: "tls:443", Cert: "/c.pem", Key: "/k.pem"}}
			},
			want: map[string]registrySection{"tls:443": {PlainHTTP: ptr(false), RootCAs: []string{"/ca.pem"}, KeyPairs: []keyPair{{Key: "/k.pem", Certificate: "/c.pem"}}}},
		},
		{
			name: "--registry-mirror mirrors Docker Hub, named docker.io for buildkitd",
			edit: func(r *engine.Request) { r.Registry.Mirrors = mirrors("mirror.example", "http://m2:5000/path") },
			pull: []string{"docker.io"},
			want: map[string]registrySection{
				"docker.io": {Mirrors: []string{"mirror.example", "m2:5000/path"}},
				"m2:5000":   {PlainHTTP: ptr(true), Insecure: ptr(true)},
			},
		},
		{
			name: "--registry-map mirrors the mapped registry",
			edit: func(r *engine.Request) {
				r.Registry.Maps = []engine.RegistryMap{{From: "quay.io", To: mirrors("local:5000")}}
				r.Registry.InsecureRegistries = []string{"local:5000"}
			},
			want: map[string]registrySection{
				"quay.io":    {Mirrors: []string{"local:5000"}},
				"local:5000": {PlainHTTP: ptr(true), Insecure: ptr(true)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := baseRequest()
			if tt.edit != nil {
				tt.edit(req)
			}
			cfg := newDaemonConfig(req, tt.rootless, tt.pull, tt.push)
			if !reflect.DeepEqual(cfg.Registry, tt.want) && !(len(cfg.Registry) == 0 && len(tt.want) == 0) {
				t.Errorf("registry = %#v\nwant %#v", cfg.Registry, tt.want)
			}
			snap := tt.snap
			if snap == "" {
				snap = "auto"
			}
			// What buildkitd itself reads from the file.
			b, err := cfg.encode()
			if err != nil {
				t.Fatal(err)
			}
			got, err := bkconfig.Load(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("buildkitd cannot read the generated config: %v\n%s", err, b)
			}
			if got.Workers.OCI.Snapshotter != snap || got.Workers.OCI.Binary != "runc" || got.Workers.OCI.NetworkConfig.Mode != "host" {
				t.Errorf("oci worker = %+v", got.Workers.OCI)
			}
			if got.Workers.Containerd.Enabled == nil || *got.Workers.Containerd.Enabled {
				t.Errorf("containerd worker enabled = %v, want false", got.Workers.Containerd.Enabled)
			}
			if len(got.Workers.OCI.GCPolicy) != 3 || got.Workers.OCI.GCPolicy[1].KeepDuration.Duration != 336*time.Hour {
				t.Errorf("gc policy = %+v, want the cache TTL kept", got.Workers.OCI.GCPolicy)
			}
			for host, s := range tt.want {
				r, ok := got.Registries[host]
				if !ok {
					t.Errorf("buildkitd sees no [registry.%q]:\n%s", host, b)
					continue
				}
				if !reflect.DeepEqual(r.Mirrors, s.Mirrors) || !reflect.DeepEqual(r.PlainHTTP, s.PlainHTTP) || !reflect.DeepEqual(r.Insecure, s.Insecure) || !reflect.DeepEqual(r.RootCAs, s.RootCAs) {
					t.Errorf("buildkitd reads [registry.%q] as %+v, want %+v", host, r, s)
				}
			}
		})
	}
}

func TestDaemonConfigPlatforms(t *testing.T) {
	req := baseRequest()
	req.Platforms = []engine.Platform{{OS: "linux", Architecture: "arm64"}, engine.HostPlatform()}
	b, _ := newDaemonConfig(req, false, nil, nil).encode()
	got, err := bkconfig.Load(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	// Naming the platforms is what keeps buildkitd from probing every
	// emulator at start; both workers need them.
	want := []string{engine.HostPlatform().String(), "linux/arm64"}
	if !reflect.DeepEqual(got.Workers.OCI.Platforms, want) || !reflect.DeepEqual(got.Workers.Containerd.Platforms, want) {
		t.Errorf("platforms oci %v containerd %v, want %v", got.Workers.OCI.Platforms, got.Workers.Containerd.Platforms, want)
	}
}

func TestDaemonConfigRootless(t *testing.T) {
	cfg := newDaemonConfig(baseRequest(), true, nil, nil)
	b, _ := cfg.encode()
	got, err := bkconfig.Load(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Workers.OCI.Rootless {
		t.Errorf("rootless = false in\n%s", b)
	}
}

func TestIsStep(t *testing.T) {
	for name, want := range map[string]bool{
		"[internal] load build definition from Dockerfile":              false,
		"[internal] load metadata for docker.io/library/busybox:latest": false,
		"[build 1/3] FROM docker.io/library/busybox:latest@sha256:abc":  false,
		"[build 2/3] RUN echo hi":                                       true,
		"[stage-1 2/2] COPY --from=build /a /a":                         true,
		"exporting to oci image format":                                 false,
		"importing cache manifest from reg/cache":                       false,
		"[auth] library/busybox:pull token for registry-1.docker.io":    false,
	} {
		if got := isStep(name); got != want {
			t.Errorf("isStep(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestSkipDefaultRegistryFallback(t *testing.T) {
	req := baseRequest()
	req.Registry.Mirrors = mirrors("m1:5000", "m2:5000/hub")
	req.Registry.SkipDefaultRegistryFallback = true
	p, err := translate(req, dockerfile.Info{Parsed: true, Images: []string{"busybox:1.36", "other.example/x:1"}, Stages: []string{""}}, false)
	if err != nil {
		t.Fatal(err)
	}
	pol := p.Solve.SourcePolicy
	if pol == nil || len(pol.Rules) != 1 {
		t.Fatalf("source policy = %v, want one rule for Docker Hub", pol)
	}
	r := pol.Rules[0]
	if r.Selector.Identifier != "docker-image://docker.io/*" || r.Updates.Identifier != "docker-image://m1:5000/${1}" {
		t.Errorf("rule %v, want docker.io rewritten to the first mirror", r)
	}
	if s, ok := p.Daemon.Registry["docker.io"]; ok && len(s.Mirrors) > 0 {
		t.Errorf("docker.io keeps mirrors %v; nothing may fall back to it", s.Mirrors)
	}
	if got := p.Daemon.Registry["m1:5000"].Mirrors; !reflect.DeepEqual(got, []string{"m2:5000/hub"}) {
		t.Errorf("m1:5000 mirrors = %v, want the other mirror", got)
	}

	req.Registry.SkipDefaultRegistryFallback = false
	p, _ = translate(req, dockerfile.Info{Parsed: true, Images: []string{"busybox:1.36"}}, false)
	if p.Solve.SourcePolicy != nil {
		t.Errorf("a source policy without --skip-default-registry-fallback")
	}
}

// mirrors parses mirrors as the CLI does.
func mirrors(ss ...string) []engine.Mirror {
	var out []engine.Mirror
	for _, s := range ss {
		m, err := engine.ParseMirror(s)
		if err != nil {
			panic(err)
		}
		out = append(out, m)
	}
	return out
}
