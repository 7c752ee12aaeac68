//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/internal/testenv"
)

// Worker is one way of running kimia: a binary, as root or as an
// unprivileged user.
type Worker struct {
	// Name is the subtest name: kimia, kimia-bud, kimia-rootless, ...
	Name string
	// Binary is "kimia" or "kimia-bud".
	Binary string
	Path   string
	// UID and GID run the binary as an unprivileged user when non-zero.
	UID, GID int
	Info     engine.Info
}

// Rootless reports whether the worker runs as an unprivileged user.
func (w *Worker) Rootless() bool { return w.UID != 0 }

// Env is the shared state of a test binary run: set up once by Main.
type Env struct {
	RepoRoot string
	CacheDir string
	Registry *testenv.Registry
	Busybox  v1.Hash
	Workers  []*Worker
	// TestUser is the unprivileged user rootless workers run as.
	TestUser *user.User

	debianOnce sync.Once
	debianRef  string
	debianErr  error
}

var env *Env

// Current returns the shared environment (for tests outside Run).
func Current() *Env { return env }

// Sandbox is what one test body gets for one worker.
type Sandbox struct {
	*Worker
	T        *testing.T
	Registry *testenv.Registry
	// Dir is a directory owned by the worker's user, removed afterwards.
	Dir string
	// Env is added to the environment of every kimia run.
	Env []string
	// TmpDir is the TMPDIR of kimia runs, to check that nothing is left.
	TmpDir string
	// Home is the HOME of kimia runs; its .docker/config.json is the one
	// kimia reads.
	Home string
}

// Run runs f once per worker, as subtests named after the workers. The
// workers' subtests run in parallel (go test -parallel, GOMAXPROCS by
// default): a build spends much of its time waiting (daemon start-up,
// registry round trips, RUN steps that sleep), so two builds share two
// cores well. Each subtest has its own sandbox, and what one shares with
// the other worker (registries, git servers) must be safe to share:
// fixtures that count requests or processes belong inside f.
func Run(t *testing.T, f func(t *testing.T, sb *Sandbox)) {
	t.Helper()
	run(t, true, f)
}

// RunSerial is Run with the workers one after the other, for tests that
// time things or watch the whole machine.
func RunSerial(t *testing.T, f func(t *testing.T, sb *Sandbox)) {
	t.Helper()
	run(t, false, f)
}

func run(t *testing.T, parallel bool, f func(t *testing.T, sb *Sandbox)) {
	t.Helper()
	if env == nil {
		t.Fatal("e2e environment not set up: run through go test -tags e2e ./test/e2e (TestMain)")
	}
	for _, w := range env.Workers {
		w := w
		t.Run(w.Name, func(t *testing.T) {
			if parallel {
				t.Parallel()
			}
			sb := newSandbox(t, w)
			f(t, sb)
		})
	}
}

func newSandbox(t *testing.T, w *Worker) *Sandbox {
	base, err := os.MkdirTemp("", "kimia-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	sb := &Sandbox{Worker: w, T: t, Registry: env.Registry, Dir: filepath.Join(base, "work"),
		TmpDir: filepath.Join(base, "tmp"), Home: filepath.Join(base, "home")}
	for _, d := range []string{sb.Dir, sb.TmpDir, sb.Home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		sb.chown(d)
	}
	return sb
}

func (sb *Sandbox) chown(p string) {
	if sb.UID == 0 {
		return
	}
	filepath.Walk(p, func(path string, info os.FileInfo, err error) error {
		if err == nil {
			os.Lchown(path, sb.UID, sb.GID)
		}
		return nil
	})
}

// Require skips the test for workers whose engine lacks a feature: a
// named skip, never a silent pass.
func (sb *Sandbox) Require(fs ...engine.Feature) {
	sb.T.Helper()
	for _, f := range fs {
		if !sb.Info.Has(f) {
			sb.T.Skipf("%s (%s engine) does not support %s", sb.Name, sb.Info.Name, f)
		}
	}
}

// Busybox is the busybox base index in the shared registry.
func (sb *Sandbox) Busybox() string { return sb.Registry.Ref("library/busybox:latest") }

// Debian is a Debian 12 minbase image in the shared registry, made on
// first use.
func (sb *Sandbox) Debian() string {
	sb.T.Helper()
	env.debianOnce.Do(func() { env.debianRef, env.debianErr = testenv.PushDebian(env.Registry, env.RepoRoot) })
	if env.debianErr != nil {
		sb.T.Fatalf("Debian base image: %v", env.debianErr)
	}
	return env.debianRef
}

// Join returns a path inside the sandbox directory.
func (sb *Sandbox) Join(elem ...string) string {
	return filepath.Join(append([]string{sb.Dir}, elem...)...)
}

// Context writes files (relative path -> content; a trailing "/" makes a
// directory) into a new directory and returns its path. Content of the
// form "->target" makes a symbolic link.
func (sb *Sandbox) Context(files map[string]string) string {
	sb.T.Helper()
	dir, err := os.MkdirTemp(sb.Dir, "ctx-")
	if err != nil {
		sb.T.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	testenv.WriteFiles(sb.T, dir, files)
	sb.chown(dir)
	return dir
}

// Result is one run of a kimia binary.
type Result struct {
	Args     []string
	Stdout   string
	Stderr   string
	Code     int
	Duration time.Duration
}

func (r *Result) String() string {
	return fmt.Sprintf("kimia %s\nexit code %d\n--- stdout\n%s\n--- stderr\n%s", strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
}

// Kimia runs the worker's binary with args and returns what it did.
func (sb *Sandbox) Kimia(args ...string) *Result {
	sb.T.Helper()
	return sb.KimiaContext(context.Background(), nil, args...)
}

// KimiaContext runs the binary with stdin and a context; canceling ctx
// sends SIGTERM.
func (sb *Sandbox) KimiaContext(ctx context.Context, stdin io.Reader, args ...string) *Result {
	sb.T.Helper()
	cmd := exec.Command(sb.Path, args...)
	cmd.Dir = sb.Dir
	cmd.Env = sb.environ()
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if sb.UID != 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(sb.UID), Gid: uint32(sb.GID)}
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		sb.T.Fatalf("starting %s: %v", sb.Path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		cmd.Process.Signal(syscall.SIGTERM)
		err = <-done
	}
	r := &Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Duration: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.Code = 128 + int(ws.Signal())
		}
	} else if err != nil {
		sb.T.Fatalf("running %s: %v", sb.Path, err)
	}
	sb.T.Logf("%s %s: exit %d in %.1fs", sb.Name, strings.Join(args, " "), r.Code, r.Duration.Seconds())
	return r
}

// MustKimia runs the binary and fails the test unless it exits 0.
// For returns sb reporting to t: a subtest of the worker's test must fail
// itself, not its parent (FailNow from a subtest's goroutine on the
// parent's T aborts the wrong test).
func (sb *Sandbox) For(t *testing.T) *Sandbox {
	c := *sb
	c.T = t
	return &c
}

func (sb *Sandbox) MustKimia(args ...string) *Result {
	sb.T.Helper()
	r := sb.Kimia(args...)
	if r.Code != 0 {
		sb.T.Fatalf("%s failed:\n%s", sb.Name, r)
	}
	return r
}

func (sb *Sandbox) environ() []string {
	keep := []string{"PATH", "LANG", "TZ"}
	var out []string
	for _, k := range keep {
		if v, ok := os.LookupEnv(k); ok {
			out = append(out, k+"="+v)
		}
	}
	out = append(out, "HOME="+sb.Home, "TMPDIR="+sb.TmpDir, "DOCKER_CONFIG="+filepath.Join(sb.Home, ".docker"))
	if sb.UID != 0 {
		run := filepath.Join(sb.Home, ".run")
		os.MkdirAll(run, 0o700)
		os.Chown(run, sb.UID, sb.GID)
		name := "kimia-e2e"
		if env.TestUser != nil {
			name = env.TestUser.Username
		}
		out = append(out, "USER="+name, "LOGNAME="+name, "XDG_RUNTIME_DIR="+run)
	}
	return append(out, sb.Env...)
}

// DockerConfig writes credentials for a registry into the sandbox's
// docker config, which kimia reads through DOCKER_CONFIG.
func (sb *Sandbox) DockerConfig(auths map[string][2]string) {
	sb.T.Helper()
	type entry struct {
		Auth string `json:"auth"`
	}
	cfg := struct {
		Auths map[string]entry `json:"auths"`
	}{Auths: map[string]entry{}}
	for host, up := range auths {
		cfg.Auths[host] = entry{Auth: b64(up[0] + ":" + up[1])}
	}
	b, _ := json.Marshal(cfg)
	dir := filepath.Join(sb.Home, ".docker")
	os.MkdirAll(dir, 0o700)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		sb.T.Fatal(err)
	}
	sb.chown(dir)
}

// Leftovers lists what kimia runs left in the sandbox's TMPDIR.
func (sb *Sandbox) Leftovers() []string {
	entries, _ := os.ReadDir(sb.TmpDir)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// File is one entry of an image's flattened filesystem.
type File struct {
	Type   byte
	Mode   int64
	UID    int
	GID    int
	Size   int64
	SHA256 string
	// Content holds regular files up to 1 MiB.
	Content string
	Link    string
}

// Files flattens img's layers into path -> File (paths without a
// leading slash).
func Files(t testing.TB, img v1.Image) map[string]File {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]File{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading image filesystem: %v", err)
		}
		f := File{Type: h.Typeflag, Mode: h.Mode & 0o7777, UID: h.Uid, GID: h.Gid, Size: h.Size, Link: h.Linkname}
		if h.Typeflag == tar.TypeReg {
			sum := sha256.New()
			var buf bytes.Buffer
			w := io.Writer(sum)
			if h.Size <= 1<<20 {
				w = io.MultiWriter(sum, &buf)
			}
			if _, err := io.Copy(w, tr); err != nil {
				t.Fatal(err)
			}
			f.SHA256 = hex.EncodeToString(sum.Sum(nil))
			f.Content = buf.String()
		}
		out[strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")] = f
	}
	return out
}

// Config reads an image's config file.
func Config(t testing.TB, img v1.Image) *v1.ConfigFile {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("reading image config: %v", err)
	}
	return cf
}

// PlatformImage returns the image for platform ("linux/arm64") in idx.
func PlatformImage(t testing.TB, idx v1.ImageIndex, platform string) v1.Image {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.String() == platform {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
	}
	t.Fatalf("no %s image in the index (%d manifests)", platform, len(im.Manifests))
	return nil
}
