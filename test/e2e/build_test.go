//go:build e2e

package e2e

// End-to-end tests of what a build produces, run on both binaries: the
// image is pushed to the real registry, read back and checked.

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/internal/testenv"
	"github.com/rapidfort/kimia/publish"
)

var repoSeq atomic.Int64

// freshRepo names a repository no other test or run has used, so that
// "nothing was pushed" can be checked.
func freshRepo(sb *Sandbox, name string) string {
	return fmt.Sprintf("build/%s-%s-%d-%d", name, sb.Name, time.Now().UnixNano()%1e9, repoSeq.Add(1))
}

// buildAndPush builds context with args and pushes it to a fresh repository. It
// returns the run, the pushed reference and the metadata file's content.
func buildAndPush(t *testing.T, sb *Sandbox, name, context string, args ...string) (*Result, string, *publish.Metadata) {
	t.Helper()
	ref := sb.Registry.Ref(freshRepo(sb, name) + ":latest")
	md := sb.Join(fmt.Sprintf("metadata-%s-%d.json", name, repoSeq.Add(1)))
	all := append([]string{"--context=" + context, "--destination=" + ref, "--metadata-file=" + md}, sb.Registry.Flags()...)
	r := sb.MustKimia(append(all, args...)...)
	return r, ref, readMetadata(t, md)
}

func readMetadata(t *testing.T, path string) *publish.Metadata {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading --metadata-file: %v", err)
	}
	var md publish.Metadata
	if err := json.Unmarshal(b, &md); err != nil {
		t.Fatalf("parsing --metadata-file: %v\n%s", err, b)
	}
	return &md
}

// fileIs checks a file in an image: content and, when mode is not zero,
// its mode and owner.
func fileIs(t *testing.T, files map[string]File, path, content string, mode int64, uid, gid int) {
	t.Helper()
	f, ok := files[path]
	if !ok {
		t.Errorf("image lacks %s", path)
		return
	}
	if f.Content != content {
		t.Errorf("%s holds %q, want %q", path, f.Content, content)
	}
	if mode != 0 && (f.Mode != mode || f.UID != uid || f.GID != gid) {
		t.Errorf("%s: mode %o uid %d gid %d, want %o %d %d", path, f.Mode, f.UID, f.GID, mode, uid, gid)
	}
}

func TestBuildMultiStage(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		ctx := sb.Context(map[string]string{
			"Dockerfile": `ARG BASE=` + sb.Busybox() + `
FROM ${BASE} AS build
ARG GREETING=hello
ARG WHO
WORKDIR /src
COPY app.txt ./
RUN echo "$GREETING $WHO" > greeting.txt && cat app.txt >> greeting.txt && chmod 0640 greeting.txt && chown 1000:1000 greeting.txt

FROM ${BASE}
ENV APP_HOME=/opt/app PATH=/opt/app/bin:/usr/bin:/bin
LABEL org.example.stage=final
WORKDIR $APP_HOME
COPY --from=build /src/greeting.txt ./greeting.txt
COPY --chown=1000:1000 bin/ ./bin/
RUN mkdir -p /data && chown 1000:1000 /data
USER 1000:1000
EXPOSE 8080/tcp 9090/udp
ENTRYPOINT ["/opt/app/bin/run"]
CMD ["--port", "8080"]
`,
			"app.txt":  "from the context\n",
			"bin/run":  "#!/bin/sh\necho run\n",
			"unused.t": "not copied\n",
		})
		os.Chmod(filepath.Join(ctx, "bin/run"), 0o755)
		_, ref, md := buildAndPush(t, sb, "multistage", ctx, "--build-arg=WHO=kimia", "--label=org.example.build=e2e")

		img := sb.Registry.Image(t, ref)
		cf := Config(t, img)
		c := cf.Config
		if cf.OS != "linux" || cf.Architecture != "amd64" {
			t.Errorf("platform %s/%s, want linux/amd64", cf.OS, cf.Architecture)
		}
		if !containsString(c.Env, "APP_HOME=/opt/app") || !containsString(c.Env, "PATH=/opt/app/bin:/usr/bin:/bin") {
			t.Errorf("env = %q", c.Env)
		}
		if c.Labels["org.example.stage"] != "final" || c.Labels["org.example.build"] != "e2e" {
			t.Errorf("labels = %v", c.Labels)
		}
		if c.User != "1000:1000" || c.WorkingDir != "/opt/app" {
			t.Errorf("user %q workdir %q", c.User, c.WorkingDir)
		}
		if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
			t.Errorf("exposed ports = %v", c.ExposedPorts)
		}
		if _, ok := c.ExposedPorts["9090/udp"]; !ok {
			t.Errorf("exposed ports = %v", c.ExposedPorts)
		}
		if strings.Join(c.Entrypoint, " ") != "/opt/app/bin/run" || strings.Join(c.Cmd, " ") != "--port 8080" {
			t.Errorf("entrypoint %q cmd %q", c.Entrypoint, c.Cmd)
		}

		files := Files(t, img)
		fileIs(t, files, "opt/app/greeting.txt", "hello kimia\nfrom the context\n", 0o640, 1000, 1000)
		fileIs(t, files, "opt/app/bin/run", "#!/bin/sh\necho run\n", 0o755, 1000, 1000)
		if f := files["data"]; f.UID != 1000 || f.Type != '5' {
			t.Errorf("/data: %+v, want a directory owned by 1000", f)
		}
		for _, p := range []string{"src/greeting.txt", "opt/app/unused.t", "opt/app/app.txt"} {
			if _, ok := files[p]; ok {
				t.Errorf("image has %s, which only the build stage or the context had", p)
			}
		}
		if _, ok := files["bin/busybox"]; !ok {
			t.Errorf("image lacks the base image's /bin/busybox")
		}

		// The metadata names the base image by the digest it resolved to.
		if len(md.BaseImages) != 1 || md.BaseImages[0].Ref != sb.Busybox() || md.BaseImages[0].Digest != env.Busybox.String() {
			t.Errorf("metadata base images = %+v, want %s@%s", md.BaseImages, sb.Busybox(), env.Busybox)
		}
		if md.Digest != served(t, sb.Registry, ref).String() {
			t.Errorf("metadata digest %s, registry serves %s", md.Digest, served(t, sb.Registry, ref))
		}
		if md.Engine.Name != sb.Info.Name || (md.Engine.StorageDriver != "overlay" && md.Engine.StorageDriver != "native") {
			t.Errorf("metadata engine = %+v", md.Engine)
		}
		if md.Engine.Rootless != sb.Rootless() {
			t.Errorf("metadata says rootless=%v, worker runs rootless=%v", md.Engine.Rootless, sb.Rootless())
		}
		assertNoLeftovers(t, sb)
	})
}

func TestBuildDockerfileOutsideContextWithItsOwnIgnoreFile(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		ctx := sb.Context(map[string]string{
			"keep.txt":      "keep\n",
			"secret.env":    "TOKEN=do-not-copy\n",
			"logs/a.log":    "log\n",
			".dockerignore": "keep.txt\n", // ignored: the Dockerfile's own ignore file wins
		})
		dfDir := sb.Context(map[string]string{
			"build.Dockerfile": "FROM " + sb.Busybox() + "\nCOPY . /ctx/\n",
			// BuildKit and Buildah read <Dockerfile>.dockerignore next to
			// the Dockerfile in preference to the context's.
			"build.Dockerfile.dockerignore": "secret.env\nlogs\n",
		})
		_, ref, _ := buildAndPush(t, sb, "outside", ctx, "--dockerfile="+filepath.Join(dfDir, "build.Dockerfile"))
		files := Files(t, sb.Registry.Image(t, ref))
		fileIs(t, files, "ctx/keep.txt", "keep\n", 0, 0, 0)
		for _, p := range []string{"ctx/secret.env", "ctx/logs/a.log", "ctx/build.Dockerfile"} {
			if _, ok := files[p]; ok {
				t.Errorf("image has %s, which the ignore file excludes or is not in the context", p)
			}
		}
	})
}

func TestBuildDockerignore(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		ctx := sb.Context(map[string]string{
			"Dockerfile":     "FROM " + sb.Busybox() + "\nCOPY . /ctx/\n",
			".dockerignore":  "*.tmp\nbuild/\n!build/keep.txt\n",
			"a.txt":          "a\n",
			"b.tmp":          "b\n",
			"build/x.o":      "x\n",
			"build/keep.txt": "kept\n",
		})
		_, ref, _ := buildAndPush(t, sb, "dockerignore", ctx)
		files := Files(t, sb.Registry.Image(t, ref))
		fileIs(t, files, "ctx/a.txt", "a\n", 0, 0, 0)
		fileIs(t, files, "ctx/build/keep.txt", "kept\n", 0, 0, 0)
		for _, p := range []string{"ctx/b.tmp", "ctx/build/x.o"} {
			if _, ok := files[p]; ok {
				t.Errorf("image has %s, which .dockerignore excludes", p)
			}
		}
	})
}

func TestBuildTargetAndSubPath(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		ctx := sb.Context(map[string]string{
			"app/Dockerfile": "FROM " + sb.Busybox() + " AS base\nRUN echo base > /stage\n" +
				"FROM base AS test\nRUN echo test > /stage\n" +
				"FROM base\nRUN echo final > /stage\n",
			"README": "outside the sub path\n",
		})
		_, ref, _ := buildAndPush(t, sb, "target", ctx, "--context-sub-path=app", "--target=test")
		fileIs(t, Files(t, sb.Registry.Image(t, ref)), "stage", "test\n", 0, 0, 0)
	})
}

func TestBuildAnnotationsAndFormat(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		ctx := sb.Context(map[string]string{"Dockerfile": "FROM " + sb.Busybox() + "\nRUN true\n"})
		_, ref, _ := buildAndPush(t, sb, "annotations", ctx, "--annotation=org.opencontainers.image.source=https://example.com/app")
		m, err := sb.Registry.Image(t, ref).Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Annotations["org.opencontainers.image.source"] != "https://example.com/app" {
			t.Errorf("manifest annotations = %v", m.Annotations)
		}
		if m.MediaType != "application/vnd.oci.image.manifest.v1+json" {
			t.Errorf("media type %s, want an OCI manifest by default", m.MediaType)
		}
	})
}

func TestBuildSecretStaysOutOfTheImage(t *testing.T) {
	const secret = "s3cr3t-value-e2e"
	Run(t, func(t *testing.T, sb *Sandbox) {
		sb.Require(engine.FeatureSecrets)
		src := sb.Join("token.txt")
		if err := os.WriteFile(src, []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
		sb.chown(src)
		sb.Env = append(sb.Env, "E2E_SECRET_ENV="+secret+"-env")
		// The Dockerfile names the secrets by digest only: RUN lines are
		// recorded in the image's history.
		sum := func(s string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(s))) }
		ctx := sb.Context(map[string]string{"Dockerfile": "FROM " + sb.Busybox() + "\n" +
			"RUN --mount=type=secret,id=tok test \"$(sha256sum < /run/secrets/tok | cut -d' ' -f1)\" = " + sum(secret) + " && echo file-ok > /file-ok\n" +
			"RUN --mount=type=secret,id=envtok test \"$(sha256sum < /run/secrets/envtok | cut -d' ' -f1)\" = " + sum(secret+"-env") + " && echo env-ok > /env-ok\n"})
		r, ref, _ := buildAndPush(t, sb, "secret", ctx, "--secret=id=tok,src="+src, "--secret=id=envtok,env=E2E_SECRET_ENV")
		img := sb.Registry.Image(t, ref)
		files := Files(t, img)
		fileIs(t, files, "file-ok", "file-ok\n", 0, 0, 0)
		fileIs(t, files, "env-ok", "env-ok\n", 0, 0, 0)
		for p, f := range files {
			if strings.Contains(f.Content, secret) {
				t.Errorf("the secret is in the image, in %s", p)
			}
		}
		raw, _ := img.RawConfigFile()
		if strings.Contains(string(raw), secret) {
			t.Errorf("the secret is in the image config")
		}
		if strings.Contains(r.Stderr, secret) {
			t.Errorf("the secret is in kimia's output")
		}
	})
}

// At debug and trace verbosity, in text and JSON, no secret value reaches
// the log, also a secret mounted as an environment variable (Buildah
// prints a RUN's runtime spec, environment included, at debug level), and
// in JSON every log record is JSON.
func TestBuildSecretStaysOutOfDebugLogs(t *testing.T) {
	const secret = "s3cr3t-debug-e2e"
	Run(t, func(t *testing.T, sb *Sandbox) {
		sb.Require(engine.FeatureSecrets)
		src := sb.Join("token.txt")
		if err := os.WriteFile(src, []byte(secret+"-file"), 0o600); err != nil {
			t.Fatal(err)
		}
		sb.chown(src)
		sb.Env = append(sb.Env, "E2E_SECRET_ENV="+secret+"-env")
		ctx := sb.Context(map[string]string{"Dockerfile": "FROM " + sb.Busybox() + "\n" +
			"RUN --mount=type=secret,id=envtok,env=B test -n \"$B\" && echo env-ok > /env-ok\n" +
			"RUN --mount=type=secret,id=tok test -s /run/secrets/tok && echo file-ok > /file-ok\n"})
		for _, args := range [][]string{
			{"--verbosity=debug"},
			{"--verbosity=trace", "--log-format=json"},
		} {
			r := sb.MustKimia(append([]string{"--context", ctx, "--no-push", "--secret=id=tok,src=" + src, "--secret=id=envtok,env=E2E_SECRET_ENV"}, args...)...)
			if strings.Contains(r.Stderr, secret) || strings.Contains(r.Stdout, secret) {
				for _, l := range strings.Split(r.Stderr, "\n") {
					if strings.Contains(l, secret) {
						t.Errorf("%v: a secret value is in the log: %.300s", args, l)
					}
				}
			}
			if args[len(args)-1] == "--log-format=json" {
				for _, l := range strings.Split(r.Stderr, "\n") {
					if strings.HasPrefix(l, "level=") || strings.HasPrefix(l, "time=") {
						t.Errorf("%v: a text log record among JSON: %.200s", args, l)
					}
				}
			}
		}
	})
}

func TestBuildStorageDrivers(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		ctx := sb.Context(map[string]string{
			"Dockerfile": "FROM " + sb.Busybox() + "\nCOPY a.txt /a.txt\nRUN echo ran >> /a.txt && rm /etc/group\n",
			"a.txt":      "a\n",
		})
		for _, driver := range sb.Info.StorageDrivers {
			_, ref, md := buildAndPush(t, sb, "storage-"+driver, ctx, "--storage-driver="+driver)
			if md.Engine.StorageDriver != driver {
				t.Errorf("--storage-driver=%s: metadata says %s", driver, md.Engine.StorageDriver)
			}
			files := Files(t, sb.Registry.Image(t, ref))
			fileIs(t, files, "a.txt", "a\nran\n", 0, 0, 0)
			if _, ok := files["etc/group"]; ok {
				t.Errorf("--storage-driver=%s: /etc/group was removed by RUN but is in the image", driver)
			}
		}
	})
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// digestOf returns the digest the registry serves for ref.
func digestOf(t *testing.T, sb *Sandbox, ref string) v1.Hash {
	t.Helper()
	return served(t, sb.Registry, ref)
}

// copyForWorker copies a file the test made (a CA, say) into the
// sandbox, readable by the worker's user.
func copyForWorker(t *testing.T, sb *Sandbox, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := sb.Join(filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sb.chown(dst)
	return dst
}

func TestBaseImageOverTLS(t *testing.T) {
	// 127.0.0.2: a loopback address that must not be taken for a local
	// plain-HTTP registry.
	tlsReg := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true, Host: "127.0.0.2"})
	if _, err := testenv.PushBusybox(tlsReg, env.CacheDir); err != nil {
		t.Fatal(err)
	}
	Run(t, func(t *testing.T, sb *Sandbox) {
		ca := copyForWorker(t, sb, tlsReg.CAFile)
		ctx := sb.Context(map[string]string{"Dockerfile": "FROM " + tlsReg.Ref("library/busybox:1.36") + "\nRUN echo tls > /tls\n"})

		_, ref, md := buildAndPush(t, sb, "tlsbase", ctx, "--registry-certificate="+tlsReg.Host+"="+ca)
		fileIs(t, Files(t, sb.Registry.Image(t, ref)), "tls", "tls\n", 0, 0, 0)
		if len(md.BaseImages) != 1 || md.BaseImages[0].Digest != env.Busybox.String() {
			t.Errorf("base images %+v, want the busybox index %s", md.BaseImages, env.Busybox)
		}

		t.Run("without the CA the pull fails and names the registry", func(t *testing.T) {
			repo := freshRepo(sb, "tlsnoca")
			failing(t, sb, 4, repo, []string{tlsReg.Host},
				append([]string{"--context=" + ctx, "--destination=" + sb.Registry.Ref(repo+":1")}, sb.Registry.Flags()...)...)
		})
		t.Run("--skip-tls-verify-pull pulls without the CA", func(t *testing.T) {
			buildAndPush(t, sb, "tlsskip", ctx, "--skip-tls-verify-pull")
		})
	})
}

func TestRegistryMirrorAndMap(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		// The machine is offline: Docker Hub and the mapped registry are
		// reachable only through the mirror, the shared test registry.
		t.Run("--registry-mirror serves Docker Hub images", func(t *testing.T) {
			ctx := sb.Context(map[string]string{"Dockerfile": "FROM busybox:1.36\nRUN echo mirrored > /m\n"})
			_, ref, _ := buildAndPush(t, sb, "mirror", ctx, "--registry-mirror="+sb.Registry.Host)
			fileIs(t, Files(t, sb.Registry.Image(t, ref)), "m", "mirrored\n", 0, 0, 0)
		})
		t.Run("--skip-default-registry-fallback uses the mirrors only", func(t *testing.T) {
			ctx := sb.Context(map[string]string{"Dockerfile": "FROM busybox:1.36\nRUN echo second > /m\n"})
			// The first mirror is down; the second serves.
			_, ref, _ := buildAndPush(t, sb, "nofallback", ctx, "--registry-mirror=127.0.0.1:1", "--registry-mirror="+sb.Registry.Host, "--skip-default-registry-fallback")
			fileIs(t, Files(t, sb.Registry.Image(t, ref)), "m", "second\n", 0, 0, 0)
			// Only a mirror that is down: the error names it, not Docker Hub.
			repo := freshRepo(sb, "nofallbackdown")
			failing(t, sb, 4, repo, []string{"127.0.0.1:1"}, append([]string{"--context=" + ctx, "--destination=" + sb.Registry.Ref(repo+":1"),
				"--registry-mirror=127.0.0.1:1", "--skip-default-registry-fallback"}, sb.Registry.Flags()...)...)
		})
		t.Run("--registry-map redirects another registry", func(t *testing.T) {
			ctx := sb.Context(map[string]string{"Dockerfile": "FROM quay.example.invalid/library/busybox:latest\nRUN echo mapped > /m\n"})
			_, ref, _ := buildAndPush(t, sb, "regmap", ctx, "--registry-map=quay.example.invalid="+sb.Registry.Host)
			fileIs(t, Files(t, sb.Registry.Image(t, ref)), "m", "mapped\n", 0, 0, 0)
		})
	})
}

func TestImageDownloadRetry(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		// The first manifest requests fail with 503; the pull succeeds
		// only when kimia retries.
		proxy := testenv.StartFlakyProxy(t, sb.Registry, func(n int64, r *http.Request) string {
			if strings.Contains(r.URL.Path, "/manifests/") && n <= 6 {
				return "503"
			}
			return ""
		})
		ctx := sb.Context(map[string]string{"Dockerfile": "FROM " + proxy.Host + "/library/busybox:1.31\nRUN echo retried > /r\n"})
		flags := append(sb.Registry.Flags(), "--insecure-registry="+proxy.Host)

		repo := freshRepo(sb, "noretry")
		failing(t, sb, 4, repo, []string{proxy.Host},
			append([]string{"--context=" + ctx, "--destination=" + sb.Registry.Ref(repo+":1"), "--image-download-retry=0"}, flags...)...)

		proxy.Requests.Store(0)
		ref := sb.Registry.Ref(freshRepo(sb, "retry") + ":1")
		r := sb.Kimia(append([]string{"--context=" + ctx, "--destination=" + ref, "--image-download-retry=5"}, flags...)...)
		if r.Code != 0 {
			t.Fatalf("--image-download-retry=5 did not get through %d failed requests:\n%s", proxy.Failed.Load(), r)
		}
		fileIs(t, Files(t, sb.Registry.Image(t, ref)), "r", "retried\n", 0, 0, 0)
	})
}

func TestSSHAgentForwarding(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		sb.Require(engine.FeatureSSH)
		agent, err := exec.LookPath("ssh-agent")
		if err != nil {
			t.Fatalf("ssh-agent is missing (Debian package openssh-client): %v", err)
		}
		sock := sb.Join("agent.sock")
		cmd := exec.Command(agent, "-D", "-a", sock)
		if sb.UID != 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(sb.UID), Gid: uint32(sb.GID)}}
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		for i := 0; i < 100; i++ {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		ctx := sb.Context(map[string]string{"Dockerfile": "FROM " + sb.Busybox() + "\n" +
			"RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo agent > /ssh-ok\n"})
		_, ref, _ := buildAndPush(t, sb, "ssh", ctx, "--ssh=default="+sock)
		files := Files(t, sb.Registry.Image(t, ref))
		fileIs(t, files, "ssh-ok", "agent\n", 0, 0, 0)
	})
}
