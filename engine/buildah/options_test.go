package buildah

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"go.podman.io/buildah/define"
	"go.podman.io/image/v5/types"

	"github.com/rapidfort/kimia/engine"
)

func baseRequest() *engine.Request {
	return &engine.Request{ContextDir: "/ctx", Dockerfile: "/ctx/Dockerfile", Format: engine.FormatOCI}
}

func TestTranslate(t *testing.T) {
	amd64 := engine.Platform{OS: "linux", Architecture: "amd64"}
	epoch := time.Unix(1700000000, 0)
	tests := []struct {
		name  string
		req   func(r *engine.Request)
		opts  engineOptions
		check func(t *testing.T, o define.BuildOptions)
	}{
		{
			name: "a plain build commits one layer per step in Docker format, skips unused stages and uses the host network",
			check: func(t *testing.T, o define.BuildOptions) {
				if !o.Layers || !o.NoCache {
					t.Errorf("Layers=%v NoCache=%v, want layers without reuse", o.Layers, o.NoCache)
				}
				if o.OutputFormat != define.Dockerv2ImageManifest {
					t.Errorf("OutputFormat = %q, want Docker (so HEALTHCHECK, SHELL and ONBUILD survive)", o.OutputFormat)
				}
				if o.SkipUnusedStages != types.OptionalBoolTrue {
					t.Errorf("SkipUnusedStages = %v, want true", o.SkipUnusedStages)
				}
				if len(o.NamespaceOptions) != 1 || o.NamespaceOptions[0].Name != "network" || !o.NamespaceOptions[0].Host {
					t.Errorf("NamespaceOptions = %+v, want the host network", o.NamespaceOptions)
				}
				if o.ContextDirectory != "/ctx" || o.PullPolicy != define.PullIfMissing || o.Runtime != "runc" {
					t.Errorf("context %q, pull policy %v, runtime %q", o.ContextDirectory, o.PullPolicy, o.Runtime)
				}
				if o.CommonBuildOpts.IdentityLabel != types.OptionalBoolFalse {
					t.Errorf("IdentityLabel = %v, want false (no io.buildah.version label)", o.CommonBuildOpts.IdentityLabel)
				}
				if want := []struct{ OS, Arch, Variant string }{{"linux", "amd64", ""}}; !reflect.DeepEqual(o.Platforms, want) {
					t.Errorf("Platforms = %v, want %v", o.Platforms, want)
				}
				if o.SourceDateEpoch != nil || o.RewriteTimestamp {
					t.Errorf("timestamps set without an epoch")
				}
			},
		},
		{
			name: "build args, labels and target pass through, last label wins in order",
			req: func(r *engine.Request) {
				r.BuildArgs = []engine.KeyValue{{Key: "A", Value: "1"}, {Key: "B", Value: ""}, {Key: "A", Value: "2"}}
				r.Labels = []engine.KeyValue{{Key: "l", Value: "x"}, {Key: "l", Value: "y"}}
				r.Target = "build"
			},
			check: func(t *testing.T, o define.BuildOptions) {
				if !reflect.DeepEqual(o.Args, map[string]string{"A": "2", "B": ""}) {
					t.Errorf("Args = %v", o.Args)
				}
				if !reflect.DeepEqual(o.Labels, []string{"l=x", "l=y"}) {
					t.Errorf("Labels = %v", o.Labels)
				}
				if o.Target != "build" {
					t.Errorf("Target = %q", o.Target)
				}
			},
		},
		{
			name: "cache reuses layers and checks base images for updates; the TTL is kimia-bud's (pruneCache)",
			req: func(r *engine.Request) {
				r.Cache = engine.Cache{Enabled: true, Dir: "/cache", TTL: time.Hour}
			},
			check: func(t *testing.T, o define.BuildOptions) {
				if o.NoCache || o.PullPolicy != define.PullIfNewer || o.CacheTTL != 0 {
					t.Errorf("NoCache=%v PullPolicy=%v CacheTTL=%v", o.NoCache, o.PullPolicy, o.CacheTTL)
				}
				if len(o.CacheFrom) != 0 || len(o.CacheTo) != 0 {
					t.Errorf("registry cache without --cache-repo")
				}
			},
		},
		{
			name: "a cache repo is imported and exported",
			req: func(r *engine.Request) {
				r.Cache = engine.Cache{Enabled: true, Repo: "reg:5000/app/cache"}
			},
			check: func(t *testing.T, o define.BuildOptions) {
				if len(o.CacheFrom) != 1 || o.CacheFrom[0].String() != "reg:5000/app/cache" || len(o.CacheTo) != 1 {
					t.Errorf("CacheFrom=%v CacheTo=%v", o.CacheFrom, o.CacheTo)
				}
			},
		},
		{
			name: "no-push-cache imports only",
			req: func(r *engine.Request) {
				r.Cache = engine.Cache{Enabled: true, Repo: "reg:5000/app/cache", NoPush: true}
			},
			check: func(t *testing.T, o define.BuildOptions) {
				if len(o.CacheFrom) != 1 || len(o.CacheTo) != 0 {
					t.Errorf("CacheFrom=%v CacheTo=%v", o.CacheFrom, o.CacheTo)
				}
			},
		},
		{
			name: "an epoch sets the created time and clamps file times",
			req:  func(r *engine.Request) { r.SourceDateEpoch = &epoch; r.Reproducible = true },
			check: func(t *testing.T, o define.BuildOptions) {
				if o.SourceDateEpoch == nil || !o.SourceDateEpoch.Equal(epoch) || !o.RewriteTimestamp || o.Timestamp != nil {
					t.Errorf("SourceDateEpoch=%v RewriteTimestamp=%v Timestamp=%v", o.SourceDateEpoch, o.RewriteTimestamp, o.Timestamp)
				}
			},
		},
		{
			name: "secrets from files and from the environment",
			req: func(r *engine.Request) {
				r.Secrets = []engine.Secret{{ID: "a", Src: "/run/a"}, {ID: "b", Env: "TOKEN"}}
			},
			check: func(t *testing.T, o define.BuildOptions) {
				want := []string{"id=a,src=/run/a,type=file", "id=b,env=TOKEN,type=env"}
				if !reflect.DeepEqual(o.CommonBuildOpts.Secrets, want) {
					t.Errorf("Secrets = %v, want %v", o.CommonBuildOpts.Secrets, want)
				}
			},
		},
		{
			name: "ssh with keys, and with the agent of SSH_AUTH_SOCK",
			req: func(r *engine.Request) {
				r.SSH = []engine.SSH{{ID: "default"}, {ID: "git", Paths: []string{"/k1", "/k2"}}}
			},
			check: func(t *testing.T, o define.BuildOptions) {
				want := []string{"default=/agent.sock", "git=/k1,/k2"}
				if !reflect.DeepEqual(o.CommonBuildOpts.SSHSources, want) {
					t.Errorf("SSHSources = %v, want %v", o.CommonBuildOpts.SSHSources, want)
				}
			},
		},
		{
			name: "image download retries and engine options",
			req:  func(r *engine.Request) { r.ImageDownloadRetry = 3 },
			opts: engineOptions{Jobs: 2, RetryDelay: time.Second, CapAdd: []string{"CAP_NET_ADMIN"}, Runtime: "crun", IdentityLabel: true},
			check: func(t *testing.T, o define.BuildOptions) {
				if o.MaxPullPushRetries != 3 || o.PullPushRetryDelay != time.Second || *o.Jobs != 2 {
					t.Errorf("retries %d delay %v jobs %d", o.MaxPullPushRetries, o.PullPushRetryDelay, *o.Jobs)
				}
				if o.Runtime != "crun" || !reflect.DeepEqual(o.AddCapabilities, []string{"CAP_NET_ADMIN"}) || o.CommonBuildOpts.IdentityLabel != types.OptionalBoolTrue {
					t.Errorf("runtime %q caps %v identity %v", o.Runtime, o.AddCapabilities, o.CommonBuildOpts.IdentityLabel)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := baseRequest()
			if tc.req != nil {
				tc.req(req)
			}
			o := tc.opts
			if o.Jobs == 0 {
				o.Jobs = 1
			}
			env := buildEnv{Getenv: func(k string) string {
				if k == "SSH_AUTH_SOCK" {
					return "/agent.sock"
				}
				return ""
			}}
			got, err := translate(req, amd64, env, o)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, got)
		})
	}
}

func TestTranslateRejects(t *testing.T) {
	tests := []struct {
		name string
		req  func(r *engine.Request)
	}{
		{"a cache repo with a tag", func(r *engine.Request) { r.Cache = engine.Cache{Enabled: true, Repo: "reg/app:tag"} }},
		{"ssh without an agent or keys", func(r *engine.Request) { r.SSH = []engine.SSH{{ID: "default"}} }},
		{"a secret without a source", func(r *engine.Request) { r.Secrets = []engine.Secret{{ID: "x"}} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := baseRequest()
			tc.req(req)
			_, err := translate(req, engine.HostPlatform(), buildEnv{Getenv: func(string) string { return "" }}, engineOptions{Jobs: 1})
			if !errors.Is(err, engine.ErrUsage) {
				t.Fatalf("err = %v, want a usage error", err)
			}
		})
	}
}

func TestIgnoreFile(t *testing.T) {
	dir := t.TempDir()
	ctx := filepath.Join(dir, "ctx")
	os.MkdirAll(filepath.Join(ctx, "sub"), 0o755)
	df := filepath.Join(ctx, "sub", "app.Dockerfile")
	if got := ignoreFile(ctx, df); got != "" {
		t.Errorf("no ignore file: got %q", got)
	}
	os.WriteFile(filepath.Join(ctx, ".containerignore"), []byte("x"), 0o644)
	if got := ignoreFile(ctx, df); got != "" {
		t.Errorf(".containerignore is not read (BuildKit does not): got %q", got)
	}
	os.WriteFile(filepath.Join(ctx, ".dockerignore"), []byte("x"), 0o644)
	if got := ignoreFile(ctx, df); got != filepath.Join(ctx, ".dockerignore") {
		t.Errorf("context .dockerignore: got %q", got)
	}
	os.WriteFile(df+".dockerignore", []byte("x"), 0o644)
	if got := ignoreFile(ctx, df); got != df+".dockerignore" {
		t.Errorf("<Dockerfile>.dockerignore wins: got %q", got)
	}
}
