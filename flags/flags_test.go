package flags

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rapidfort/kimia/build"
	"github.com/rapidfort/kimia/engine"
)

// fakeEngine lets the CLI be tested without building anything.
type fakeEngine struct{}

func (fakeEngine) Info(context.Context) (engine.Info, error) {
	return engine.Info{Name: "fake", Version: "0"}, nil
}

func (fakeEngine) Build(context.Context, *engine.Request) (*engine.Result, error) {
	return nil, errors.New("fake engine does not build")
}

// parse runs the CLI on args up to the resolved request, without building.
func parse(t *testing.T, env map[string]string, args ...string) (*build.Options, []string, error) {
	t.Helper()
	app := App(Binary{Name: "kimia", Engine: fakeEngine{}, EngineName: "Fake", OptionFlag: "buildkit-opt"})
	var req *build.Options
	var notices []string
	app.Action = func(c *cli.Context) error {
		r := &resolver{c: c, onCLI: cliFlagNames(c.App, args), getenv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		}}
		var err error
		req, err = r.resolve("buildkit-opt")
		notices = r.notices
		return err
	}
	// Only the case's variables: the caller's own (KIMIA_E2E_WORKERS, a
	// KIMIA_CACHE someone exported) must not change what the flags mean.
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, mine := env[k]; !mine && (strings.HasPrefix(k, "KIMIA_") || strings.HasPrefix(k, "KANIKO_")) {
			t.Setenv(k, "") // restored after the test
			os.Unsetenv(k)
		}
	}
	for k, v := range env {
		if strings.HasPrefix(k, "KIMIA_") || strings.HasPrefix(k, "KANIKO_") {
			t.Setenv(k, v)
		}
	}
	full := append([]string{"kimia"}, args...)
	if err := checkArgs(app, full); err != nil {
		return nil, nil, err
	}
	err := app.RunContext(context.Background(), full)
	return req, notices, err
}

func TestValidRequests(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(secretFile, []byte("x"), 0o600)
	for _, tc := range []struct {
		name  string
		env   map[string]string
		args  []string
		check func(t *testing.T, o *build.Options, notices []string)
	}{
		{
			name: "Kaniko's short flags and a destination",
			args: []string{"-c", "/src", "-f", "build/Dockerfile", "-d", "reg.example/app:v1", "-t", "final"},
			check: func(t *testing.T, o *build.Options, _ []string) {
				if o.Source.Context != "/src" || o.Source.Dockerfile != "build/Dockerfile" || o.Engine.Target != "final" {
					t.Errorf("source %+v target %q", o.Source, o.Engine.Target)
				}
				if got := o.Publish.Destinations; len(got) != 1 || got[0] != "reg.example/app:v1" {
					t.Errorf("destinations %v", got)
				}
			},
		},
		{
			name: "a destination without a tag gets latest",
			args: []string{"--destination=reg.example/app"},
			check: func(t *testing.T, o *build.Options, _ []string) {
				if o.Publish.Destinations[0] != "reg.example/app:latest" {
					t.Errorf("destination %v", o.Publish.Destinations)
				}
			},
		},
		{
			name: "build args keep commas and take bare names from the environment",
			env:  map[string]string{"FROM_ENV": "env-value"},
			args: []string{"--no-push", "--build-arg", "LIST=a,b,c", "--build-arg", "FROM_ENV", "--build-arg", "UNSET"},
			check: func(t *testing.T, o *build.Options, notices []string) {
				want := []engine.KeyValue{{Key: "LIST", Value: "a,b,c"}, {Key: "FROM_ENV", Value: "env-value"}}
				if len(o.Engine.BuildArgs) != 2 || o.Engine.BuildArgs[0] != want[0] || o.Engine.BuildArgs[1] != want[1] {
					t.Errorf("build args %v, want %v", o.Engine.BuildArgs, want)
				}
				if len(notices) != 1 || !strings.Contains(notices[0], "UNSET") {
					t.Errorf("notices %v, want one about UNSET", notices)
				}
			},
		},
		{
			name: "platforms from the buildx and Kaniko spellings, deduplicated",
			args: []string{"--no-push", "--platform=linux/amd64,linux/arm64", "--customPlatform=linux/aarch64", "--custom-platform", "linux/arm/v7"},
			check: func(t *testing.T, o *build.Options, _ []string) {
				var got []string
				for _, p := range o.Engine.Platforms {
					got = append(got, p.String())
				}
				if strings.Join(got, " ") != "linux/amd64 linux/arm64 linux/arm/v7" {
					t.Errorf("platforms %v", got)
				}
			},
		},
		{
			name: "every flag from KIMIA_ variables, lists one per line",
			env: map[string]string{
				"KIMIA_DESTINATION": "reg.example/a:1\nreg.example/b:2",
				"KIMIA_CACHE":       "true",
				"KIMIA_PUSH_RETRY":  "7",
				"KIMIA_BUILD_ARG":   "A=1,2",
			},
			check: func(t *testing.T, o *build.Options, _ []string) {
				if len(o.Publish.Destinations) != 2 || !o.Engine.Cache.Enabled || o.Publish.PushRetry != 7 {
					t.Errorf("destinations %v cache %v retry %d", o.Publish.Destinations, o.Engine.Cache.Enabled, o.Publish.PushRetry)
				}
				if len(o.Engine.BuildArgs) != 1 || o.Engine.BuildArgs[0].Value != "1,2" {
					t.Errorf("build args %v", o.Engine.BuildArgs)
				}
				if o.Engine.Cache.Repo != "reg.example/a/cache" {
					t.Errorf("cache repo %q, want Kaniko's default reg.example/a/cache", o.Engine.Cache.Repo)
				}
			},
		},
		{
			name: "the command line wins over the environment",
			env:  map[string]string{"KIMIA_DESTINATION": "reg.example/env:1"},
			args: []string{"-d", "reg.example/cli:1"},
			check: func(t *testing.T, o *build.Options, _ []string) {
				if len(o.Publish.Destinations) != 1 || o.Publish.Destinations[0] != "reg.example/cli:1" {
					t.Errorf("destinations %v", o.Publish.Destinations)
				}
			},
		},
		{
			name: "Kaniko's own variables",
			env:  map[string]string{"KANIKO_NO_PUSH": "true", "KANIKO_REGISTRY_MIRROR": "mirror.example,mirror2.example", "KANIKO_REGISTRY_MAP": "index.docker.io=m.example;quay.io=q.example"},
			check: func(t *testing.T, o *build.Options, _ []string) {
				if !o.Publish.NoPush {
					t.Error("KANIKO_NO_PUSH ignored")
				}
				if fmt.Sprint(o.Engine.Registry.Mirrors) != "[mirror.example mirror2.example]" {
					t.Errorf("mirrors %v", o.Engine.Registry.Mirrors)
				}
				if len(o.Engine.Registry.Maps) != 2 || o.Engine.Registry.Maps[1].From != "quay.io" {
					t.Errorf("maps %+v", o.Engine.Registry.Maps)
				}
			},
		},
		{
			name: "SOURCE_DATE_EPOCH sets the time; --reproducible alone means epoch 0",
			env:  map[string]string{"SOURCE_DATE_EPOCH": "1609459200"},
			args: []string{"--no-push"},
			check: func(t *testing.T, o *build.Options, _ []string) {
				if o.Engine.SourceDateEpoch == nil || !o.Engine.SourceDateEpoch.Equal(time.Unix(1609459200, 0)) || o.Engine.Reproducible {
					t.Errorf("epoch %v reproducible %v", o.Engine.SourceDateEpoch, o.Engine.Reproducible)
				}
			},
		},
		{
			name: "--timestamp implies --reproducible",
			args: []string{"--no-push", "--timestamp=42"},
			check: func(t *testing.T, o *build.Options, _ []string) {
				if !o.Engine.Reproducible || o.Engine.SourceDateEpoch.Unix() != 42 {
					t.Errorf("reproducible %v epoch %v", o.Engine.Reproducible, o.Engine.SourceDateEpoch)
				}
			},
		},
		{
			name: "secrets from files and environment variables, by reference only",
			env:  map[string]string{"API_TOKEN": "hunter2"},
			args: []string{"--no-push", "--secret", "id=file,src=" + secretFile, "--secret", "id=tok,env=API_TOKEN", "--secret", "id=API_TOKEN"},
			check: func(t *testing.T, o *build.Options, _ []string) {
				want := []engine.Secret{{ID: "file", Src: secretFile}, {ID: "tok", Env: "API_TOKEN"}, {ID: "API_TOKEN", Env: "API_TOKEN"}}
				for i, w := range want {
					if o.Engine.Secrets[i] != w {
						t.Errorf("secret %d = %+v, want %+v", i, o.Engine.Secrets[i], w)
					}
				}
			},
		},
		{
			name: "no-op Kaniko flags are accepted with a notice each",
			args: []string{"--no-push", "--snapshotMode=redo", "--use-new-run", "--single-snapshot", "--cleanup", "--force", "--kaniko-dir=/kaniko", "--ignore-path=/x", "--ignore-var-run=false"},
			check: func(t *testing.T, _ *build.Options, notices []string) {
				for _, f := range []string{"snapshot-mode", "use-new-run", "single-snapshot", "cleanup", "force", "kaniko-dir", "ignore-path", "ignore-var-run"} {
					found := false
					for _, n := range notices {
						found = found || strings.Contains(n, "--"+f+" ")
					}
					if !found {
						t.Errorf("no notice for --%s in %v", f, notices)
					}
				}
			},
		},
		{
			name: "registry settings",
			args: []string{"--no-push", "--insecure-registry=r1:5000", "--skip-tls-verify-registry=r2", "--registry-certificate=r3=" + secretFile, "--registry-client-cert=r4=" + secretFile + "," + secretFile, "--registry-mirror=mirror.example", "--insecure-pull"},
			check: func(t *testing.T, o *build.Options, _ []string) {
				rc := o.Engine.Registry
				if !rc.Host("r1:5000", engine.Push).PlainHTTP || !rc.Host("r2", engine.Push).SkipTLSVerify || rc.Host("r2", engine.Push).PlainHTTP {
					t.Errorf("hosts %+v", rc)
				}
				if got := rc.Host("r3", engine.Pull).CAFiles; len(got) != 1 {
					t.Errorf("CA files %v", got)
				}
				if !rc.Host("anything", engine.Pull).PlainHTTP || rc.Host("anything", engine.Push).PlainHTTP {
					t.Error("--insecure-pull must apply to pulls only")
				}
				if got := rc.MirrorsFor("docker.io"); len(got) != 1 || got[0].String() != "mirror.example" {
					t.Errorf("mirrors %v", got)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, notices, err := parse(t, tc.env, tc.args...)
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			tc.check(t, r, notices)
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string // in the message: the flag and the bad value
	}{
		{"an unknown flag", nil, []string{"--no-push", "--frobnicate"}, "unknown flag --frobnicate"},
		{"an unknown short flag", nil, []string{"--no-push", "-x"}, "unknown flag -x"},
		{"a value flag followed by a flag", nil, []string{"--destination", "--no-push"}, "--destination needs a value, but the next argument is the flag --no-push"},
		{"a value flag at the end", nil, []string{"--no-push", "--target"}, "--target needs a value"},
		{"a positional argument", nil, []string{"--no-push", "."}, `unexpected argument "."`},
		{"no destination and no --no-push", nil, nil, "no --destination given"},
		{"a digest destination", nil, []string{"-d", "reg.example/app@sha256:" + strings.Repeat("a", 64)}, "names a digest"},
		{"a bad image reference", nil, []string{"-d", "UPPER/Case:tag"}, `--destination: "UPPER/Case:tag"`},
		{"a bad platform", nil, []string{"--no-push", "--platform=linux"}, `platform "linux"`},
		{"a non-linux platform", nil, []string{"--no-push", "--platform=windows/amd64"}, "only linux"},
		{"a build arg without a key", nil, []string{"--no-push", "--build-arg", "=x"}, "--build-arg"},
		{"a label without =", nil, []string{"--no-push", "--label", "novalue"}, `--label: "novalue" is not of the form KEY=VALUE`},
		{"a bad epoch", nil, []string{"--no-push", "--timestamp=yesterday"}, `--timestamp: "yesterday"`},
		{"a bad SOURCE_DATE_EPOCH", map[string]string{"SOURCE_DATE_EPOCH": "-5"}, []string{"--no-push"}, `SOURCE_DATE_EPOCH: "-5"`},
		{"a retry count that is not a number", nil, []string{"--no-push", "--push-retry=many"}, `invalid value "many" for flag --push-retry`},
		{"a negative retry count", nil, []string{"--no-push", "--push-retry=-1"}, "--push-retry: -1"},
		{"a bad verbosity from the environment", map[string]string{"KIMIA_VERBOSITY": "loud"}, []string{"--no-push"}, `--verbosity: "loud"`},
		{"a bad storage driver", nil, []string{"--no-push", "--storage-driver=zfs"}, `--storage-driver: "zfs"`},
		{"a bad compression level", nil, []string{"--no-push", "--compression=gzip", "--compression-level=12"}, "--compression-level: 12"},
		{"a secret whose file is missing", nil, []string{"--no-push", "--secret=id=x,src=/nonexistent/file"}, `--secret: id "x"`},
		{"a secret from an unset variable", nil, []string{"--no-push", "--secret=id=x,env=NOPE"}, `environment variable "NOPE" is not set`},
		{"a bad registry map", nil, []string{"--no-push", "--registry-map=quay.io"}, "--registry-map"},
		{"an unknown --git option", nil, []string{"--no-push", "--git=depth=1"}, `--git: unknown option "depth"`},
		{"a non-boolean --git option", nil, []string{"--no-push", "--git=single-branch=maybe"}, `single-branch="maybe"`},
		{"a GCS bucket", nil, []string{"--no-push", "--bucket=b"}, "--bucket: GCS bucket contexts are not supported"},
		{"a bad attestation mode", nil, []string{"--no-push", "--attestation=all"}, `--attestation: "all"`},
		{"attestation off with --attest", nil, []string{"--no-push", "--attestation=off", "--attest=type=sbom"}, "--attestation=off conflicts with --attest"},
		{"conflicting provenance modes", nil, []string{"--no-push", "--attestation=min", "--attest=type=provenance,mode=max"}, "conflicts"},
		{"--sign with nothing to sign", nil, []string{"--no-push", "--sign", "--cosign-key=/etc/hostname"}, "--sign with nothing to sign"},
		{"--sign without a key", nil, []string{"-d", "r.example/a:1", "--sign"}, "--sign needs --cosign-key"},
		{"--tar-path with several platforms", nil, []string{"--no-push", "--tar-path=/tmp/x.tar", "--platform=linux/amd64,linux/arm64"}, "--tar-path with 2 platforms"},
		{"a bool flag with a value", nil, []string{"--no-push=maybe"}, "no-push"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parse(t, tc.env, tc.args...)
			if err == nil {
				t.Fatal("accepted")
			}
			if code := ExitCode(err); code != 2 {
				t.Errorf("exit code %d, want 2 (usage): %v", code, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("message %q does not contain %q", err.Error(), tc.want)
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("flag provided but not defined: -x"), 2},
		{engine.Errorf(engine.KindInternal, "bug"), 1},
		{engine.Errorf(engine.KindBuild, "RUN failed"), 3},
		{engine.Errorf(engine.KindRegistry, "unreachable"), 4},
		{engine.Errorf(engine.KindAuth, "denied"), 5},
		{engine.Errorf(engine.KindSigning, "bad key"), 6},
		{engine.Errorf(engine.KindContext, "no dir"), 7},
		{engine.Errorf(engine.KindEnvironment, "no qemu"), 8},
		{SignalError{15}, 143},
		{SignalError{2}, 130},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// Every Kaniko executor flag (v1.24 and the maintained forks) is accepted.
func TestEveryKanikoFlagIsDefined(t *testing.T) {
	app := App(Binary{Name: "kimia", Engine: fakeEngine{}, EngineName: "Fake", OptionFlag: "buildkit-opt"})
	_, known := FlagKinds(app.Flags)
	for _, f := range kanikoFlags {
		if !known[f] {
			t.Errorf("Kaniko flag --%s is not defined", f)
		}
	}
}

// kanikoFlags are the flags of Kaniko's executor v1.24 and its maintained
// forks; docs/kaniko-compatibility.md lists what kimia does with each.
var kanikoFlags = []string{
	"f", "dockerfile", "c", "context", "d", "destination", "context-sub-path", "build-arg", "target",
	"cache", "cache-repo", "cache-dir", "cache-ttl", "cache-copy-layers", "cache-run-layers", "compressed-caching",
	"no-push", "no-push-cache", "tar-path", "tarPath", "oci-layout-path", "digest-file",
	"image-name-with-digest-file", "image-name-tag-with-digest-file", "snapshot-mode", "snapshotMode",
	"use-new-run", "single-snapshot", "reproducible", "insecure", "insecure-pull", "insecure-registry",
	"skip-tls-verify", "skip-tls-verify-pull", "skip-tls-verify-registry", "registry-certificate",
	"registry-client-cert", "registry-mirror", "registry-map", "skip-default-registry-fallback",
	"custom-platform", "customPlatform", "label", "ignore-path", "ignore-var-run", "skip-unused-stages",
	"cleanup", "force", "kaniko-dir", "git", "push-retry", "image-download-retry", "image-fs-extract-retry",
	"push-ignore-immutable-tag-errors", "skip-push-permission-check", "force-build-metadata", "compression",
	"compression-level", "v", "verbosity", "log-format", "log-timestamp", "bucket", "b", "sandbox",
	"push-retry-initial-delay", "push-retry-max-delay", "push-retry-backoff-multiplier",
	// buildx spellings and kimia's own
	"platform", "annotation", "secret", "ssh", "metadata-file",
}

// docs/cli-reference.md is generated from the flag definitions.
func TestCLIReferenceIsCurrent(t *testing.T) {
	b, err := os.ReadFile("../docs/cli-reference.md")
	if err != nil {
		t.Fatalf("reading docs/cli-reference.md: %v (run make docs)", err)
	}
	if string(b) != Reference() {
		t.Fatal("docs/cli-reference.md is stale: run make docs")
	}
}

// docs/kaniko-compatibility.md names every Kaniko flag.
func TestKanikoCompatibilityDocCoversEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../docs/kaniko-compatibility.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range kanikoFlags {
		if len(f) == 1 {
			continue
		}
		if !strings.Contains(string(b), "`--"+f+"`") {
			t.Errorf("docs/kaniko-compatibility.md does not mention --%s", f)
		}
	}
}
