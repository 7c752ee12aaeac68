//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// The CLI is the same in both binaries; these run each binary for real.

func TestHelpListsEveryFlag(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		r := sb.MustKimia("--help")
		for _, f := range []string{
			"--context", "--dockerfile", "--destination", "--target", "--context-sub-path",
			"--build-arg", "--label", "--annotation", "--platform", "--custom-platform", "--secret", "--ssh",
			"--skip-unused-stages", "--storage-driver", "--cache", "--cache-dir", "--cache-repo", "--cache-ttl",
			"--no-push-cache", "--cache-copy-layers", "--cache-run-layers", "--compressed-caching",
			"--no-push", "--tar-path", "--oci-layout-path", "--digest-file", "--image-name-with-digest-file",
			"--image-name-tag-with-digest-file", "--metadata-file", "--push-retry", "--push-ignore-immutable-tag-errors",
			"--skip-push-permission-check", "--compression", "--compression-level", "--attestation", "--attest",
			"--sign", "--cosign-key", "--cosign-password-env", "--git", "--git-branch", "--git-revision",
			"--git-token-file", "--git-token-user", "--insecure", "--insecure-pull", "--insecure-registry",
			"--skip-tls-verify", "--skip-tls-verify-pull", "--skip-tls-verify-registry", "--registry-certificate",
			"--registry-client-cert", "--registry-mirror", "--registry-map", "--skip-default-registry-fallback",
			"--image-download-retry", "--image-fs-extract-retry", "--reproducible", "--timestamp", "--verbosity",
			"--log-format", "--log-timestamp", "--snapshot-mode", "--use-new-run", "--single-snapshot",
			"--cleanup", "--force", "--kaniko-dir", "--ignore-path", "--ignore-var-run", "--force-build-metadata",
		} {
			if !strings.Contains(r.Stdout, f+" ") && !strings.Contains(r.Stdout, f+",") {
				t.Errorf("--help does not list %s", f)
			}
		}
		own, other := "--buildkit-opt", "--buildah-opt"
		if sb.Binary == "kimia-bud" {
			own, other = other, own
		}
		if !strings.Contains(r.Stdout, own) || strings.Contains(r.Stdout, other) {
			t.Errorf("%s --help must list %s and not %s", sb.Binary, own, other)
		}
		for _, heading := range []string{"Core:", "Build:", "Cache:", "Output:", "Attestation & signing:", "Git:", "Registry:", "Reproducible builds:", "Logging:", "Advanced:"} {
			if !strings.Contains(r.Stdout, "\n"+heading+"\n") {
				t.Errorf("--help has no %q group", heading)
			}
		}
	})
}

func TestVersionReportsTheEngine(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		r := sb.MustKimia("version")
		want := map[string]string{"kimia": "engine: buildkit", "kimia-bud": "engine: buildah"}[sb.Binary]
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("version output lacks %q:\n%s", want, r.Stdout)
		}
		if sb.Info.Version == "" {
			t.Errorf("version --json reports no engine version: %+v", sb.Info)
		}
	})
}

func TestUsageErrorsExitWithTwo(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--no-push", "--no-such-flag"}, "unknown flag --no-such-flag"},
			{[]string{"--destination", "--no-push"}, "--destination needs a value"},
			{[]string{"--no-push", "--platform=linux/sparc"}, `unknown architecture "sparc"`},
			{[]string{"--no-push", "--push-retry=-3"}, "--push-retry: -3"},
			{[]string{"--no-push", "--verbosity=chatty"}, `--verbosity: "chatty"`},
			{[]string{"--no-push", "--build-arg==x"}, "--build-arg"},
			{[]string{}, "no --destination given"},
			{[]string{"--no-push", "extra"}, `unexpected argument "extra"`},
		} {
			r := sb.Kimia(tc.args...)
			if r.Code != 2 || !strings.Contains(r.Stderr, tc.want) {
				t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, r.Code, r.Stderr, tc.want)
			}
			if r.Stdout != "" {
				t.Errorf("%v: stdout %q, want nothing", tc.args, r.Stdout)
			}
		}
	})
}

// An engine's usage errors come before the context is fetched: a git
// context that cannot be reached is never tried, and the message names
// the flag (the engines name request fields).
func TestEngineUsageErrorsComeBeforeTheContext(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		opt := map[string]string{"kimia": "--buildkit-opt", "kimia-bud": "--buildah-opt"}[sb.Binary]
		unreachable := "--context=git://127.0.0.1:1/nothing.git"
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{opt + "=frobnicate=1"}, opt + " frobnicate"},
			{[]string{"--cache", "--cache-repo=r.example/cache:v1", "--" + map[string]string{"kimia": "buildkit-opt=no-cache", "kimia-bud": "buildah-opt=jobs=1"}[sb.Binary]}, "--cache-repo"},
			{[]string{"--secret=id=t,env=KIMIA_E2E_UNSET_SECRET_VARIABLE"}, "KIMIA_E2E_UNSET_SECRET_VARIABLE"},
		} {
			args := append([]string{"--no-push", unreachable}, tc.args...)
			r := sb.Kimia(args...)
			if r.Code != 2 || !strings.Contains(r.Stderr, tc.want) || strings.Contains(r.Stderr, "127.0.0.1:1") {
				t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q, before the context is fetched", args, r.Code, r.Stderr, tc.want)
			}
		}
	})
}

func TestBadContextExitsWithSeven(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		ctx := sb.Context(map[string]string{"NotADockerfile": "FROM scratch\n"})
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--no-push", "--context=" + filepath.Join(sb.Dir, "missing")}, "no such file or directory"},
			{[]string{"--no-push", "--context=" + ctx}, `--dockerfile "Dockerfile": not found`},
			{[]string{"--no-push", "--context=" + ctx, "--context-sub-path=../.."}, "leaves the context"},
		} {
			r := sb.Kimia(tc.args...)
			if r.Code != 7 || !strings.Contains(r.Stderr, tc.want) {
				t.Errorf("%v: exit %d, stderr %q; want exit 7 and %q", tc.args, r.Code, r.Stderr, tc.want)
			}
		}
		if left := sb.Leftovers(); len(left) != 0 {
			t.Errorf("left behind in TMPDIR: %v", left)
		}
	})
}

func TestKanikoNoopFlagsSayWhy(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		ctx := sb.Context(map[string]string{"x": "y"})
		// The context has no Dockerfile: the run stops after the notices.
		r := sb.Kimia("--no-push", "--context="+ctx, "--snapshot-mode=redo", "--cleanup", "--kaniko-dir=/kaniko")
		for _, f := range []string{"--snapshot-mode", "--cleanup", "--kaniko-dir"} {
			if !strings.Contains(r.Stderr, f+" is accepted for Kaniko compatibility and has no effect") {
				t.Errorf("no notice for %s:\n%s", f, r.Stderr)
			}
		}
	})
}

func TestEnvironmentSetsFlags(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		sb.Env = append(sb.Env, "KIMIA_NO_PUSH=true", "KIMIA_CONTEXT="+filepath.Join(sb.Dir, "nowhere"))
		r := sb.Kimia()
		if r.Code != 7 || !strings.Contains(r.Stderr, filepath.Join(sb.Dir, "nowhere")) {
			t.Errorf("KIMIA_CONTEXT/KIMIA_NO_PUSH not honoured: %s", r)
		}
		sb.Env = []string{"KANIKO_NO_PUSH=true", "KIMIA_PLATFORM=linux/sparc"}
		if r := sb.Kimia(); r.Code != 2 || !strings.Contains(r.Stderr, "sparc") {
			t.Errorf("a bad value from the environment: %s", r)
		}
	})
}
