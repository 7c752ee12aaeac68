//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rapidfort/kimia/gitctx/gittest"
)

// Build contexts: git repositories served by a real git (http-backend
// behind a Go server that checks a token, and git daemon), tarballs
// from a file and from stdin, and every escape a context could attempt.

const (
	gitUser  = "e2e-bot"
	gitToken = "e2e-token-7c1f9a2b"
)

type gitServers struct {
	fx     *gittest.Fixture
	http   *gittest.HTTPServer
	daemon string
}

// startGitServers builds the fixture repositories (Dockerfiles FROM the
// shared busybox) and serves them for one test function.
func startGitServers(t *testing.T) *gitServers {
	t.Helper()
	if env == nil {
		t.Fatal("e2e environment not set up")
	}
	fx := gittest.NewFixture(t, env.Registry.Ref("library/busybox:latest"))
	// git daemon and http-backend run as root; rootless workers only
	// connect to them. The fixture must still be readable by everyone.
	os.Chmod(fx.Root, 0o755)
	return &gitServers{fx: fx, http: gittest.ServeHTTP(t, fx.Root, gitUser, gitToken), daemon: gittest.ServeDaemon(t, fx.Root)}
}

// gitMetadata is the "git" member of --metadata-file.
type gitMetadata struct {
	URL    string `json:"url"`
	Ref    string `json:"ref"`
	Commit string `json:"commit"`
	SubDir string `json:"subdir"`
}

func readGitMetadata(t *testing.T, path string) (*gitMetadata, string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading --metadata-file: %v", err)
	}
	var md struct {
		Git *gitMetadata `json:"git"`
	}
	if err := json.Unmarshal(b, &md); err != nil {
		t.Fatalf("parsing --metadata-file: %v\n%s", err, b)
	}
	return md.Git, string(b)
}

// buildFrom builds context with args into a fresh repository and returns
// the run, the pushed image and the metadata file's path.
func buildFrom(t *testing.T, sb *Sandbox, name, context string, args ...string) (*Result, v1.Image, string) {
	t.Helper()
	ref := sb.Registry.Ref("ctx/" + name + "-" + sb.Name + ":latest")
	md := sb.Join("metadata-" + name + ".json")
	all := append([]string{"--context=" + context, "--destination=" + ref, "--metadata-file=" + md}, sb.Registry.Flags()...)
	r := sb.MustKimia(append(all, args...)...)
	return r, sb.Registry.Image(t, ref), md
}

func assertNoLeftovers(t *testing.T, sb *Sandbox) {
	t.Helper()
	if left := sb.Leftovers(); len(left) != 0 {
		t.Errorf("left behind in TMPDIR: %v", left)
	}
}

// content is a file's content in the image; for a hard link, that of
// the file it links to.
func content(files map[string]File, p string) string {
	f := files[p]
	if f.Type == tar.TypeLink {
		f = files[strings.TrimPrefix(strings.TrimPrefix(f.Link, "./"), "/")]
	}
	return f.Content
}

func TestGitContextForms(t *testing.T) {
	gs := startGitServers(t)
	fx := gs.fx
	repo := gs.http.URL + "/app.git"
	Run(t, func(t *testing.T, sb *Sandbox) {
		for _, tc := range []struct {
			name, context string
			args          []string
			// file and want: a file of the image and its content.
			file, want string
			md         gitMetadata
			submodule  bool
		}{
			{name: "default-branch", context: repo, file: "ctx/version.txt", want: "main\n",
				md: gitMetadata{URL: repo, Ref: "refs/heads/main", Commit: fx.Main}},
			{name: "branch-fragment", context: repo + "#feature", file: "ctx/version.txt", want: "feature\n",
				md: gitMetadata{URL: repo, Ref: "refs/heads/feature", Commit: fx.Feature}},
			{name: "tag-and-subdir", context: repo + "#v1.0:app", file: "app/hello.txt", want: "hello from app\n",
				md: gitMetadata{URL: repo, Ref: "refs/tags/v1.0", Commit: fx.V1, SubDir: "app"}},
			{name: "kaniko-ref-and-commit", context: gs.daemon + "/app.git#refs/heads/main#" + fx.V1, file: "ctx/version.txt", want: "v1\n",
				md: gitMetadata{URL: gs.daemon + "/app.git", Ref: "refs/heads/main", Commit: fx.V1}},
			{name: "git-daemon-git-branch", context: gs.daemon + "/app.git", args: []string{"--git-branch=feature"}, file: "ctx/version.txt", want: "feature\n",
				md: gitMetadata{URL: gs.daemon + "/app.git", Ref: "refs/heads/feature", Commit: fx.Feature}},
			{name: "revision-commit", context: repo, args: []string{"--git-revision=" + fx.V1}, file: "ctx/version.txt", want: "v1\n",
				md: gitMetadata{URL: repo, Commit: fx.V1}},
			{name: "revision-short-commit", context: repo, args: []string{"--git-revision=" + fx.Feature[:9]}, file: "ctx/version.txt", want: "feature\n",
				md: gitMetadata{URL: repo, Commit: fx.Feature}},
			{name: "revision-tag", context: repo, args: []string{"--git-revision=v1.0"}, file: "ctx/version.txt", want: "v1\n",
				md: gitMetadata{URL: repo, Ref: "refs/tags/v1.0", Commit: fx.V1}},
			{name: "kaniko-git-flag-submodules", context: repo, args: []string{"--git=branch=main,single-branch=true,recurse-submodules=true"},
				file: "ctx/lib/lib.txt", want: "library\n", submodule: true,
				md: gitMetadata{URL: repo, Ref: "refs/heads/main", Commit: fx.Main}},
			{name: "context-sub-path", context: repo, args: []string{"--context-sub-path=app", "--git-branch=feature"}, file: "app/hello.txt", want: "hello from app\n",
				md: gitMetadata{URL: repo, Ref: "refs/heads/feature", Commit: fx.Feature, SubDir: "app"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, img, mdPath := buildFrom(t, sb, tc.name, tc.context, tc.args...)
				files := Files(t, img)
				if got := content(files, tc.file); got != tc.want {
					t.Errorf("%s = %q, want %q", tc.file, got, tc.want)
				}
				md, _ := readGitMetadata(t, mdPath)
				if md == nil || *md != tc.md {
					t.Errorf("metadata git = %+v, want %+v", md, tc.md)
				}
				for p := range files {
					if strings.HasSuffix(p, ".git") || strings.Contains(p, ".git/") {
						t.Errorf("git metadata in the image: %s", p)
					}
				}
				if strings.HasPrefix(tc.file, "ctx/") {
					if _, ok := files["ctx/lib/lib.txt"]; ok != tc.submodule {
						t.Errorf("ctx/lib/lib.txt present: %v, want %v", ok, tc.submodule)
					}
					// Only main dropped big.bin.
					if f, ok := files["ctx/big.bin"]; ok != (tc.md.Commit != fx.Main) || ok && f.Size != gittest.BigFileSize {
						t.Errorf("ctx/big.bin: present %v (%d bytes) at %s", ok, f.Size, tc.md.Commit)
					}
				}
				assertNoLeftovers(t, sb)
			})
		}
	})
}

// TestGitContextKeepsSymlinks checks that links in a repository reach
// the image as links, the absolute one included, never followed.
func TestGitContextKeepsSymlinks(t *testing.T) {
	gs := startGitServers(t)
	Run(t, func(t *testing.T, sb *Sandbox) {
		_, img, _ := buildFrom(t, sb, "symlinks", gs.http.URL+"/app.git")
		files := Files(t, img)
		for p, target := range map[string]string{"ctx/current": "version.txt", "ctx/abs": "/etc/hostname"} {
			f := files[p]
			if f.Type != tar.TypeSymlink || f.Link != target {
				t.Errorf("%s: type %q link %q, want a symbolic link to %q", p, f.Type, f.Link, target)
			}
		}
		assertNoLeftovers(t, sb)
	})
}

func TestGitContextMissingRefs(t *testing.T) {
	gs := startGitServers(t)
	repo := gs.http.URL + "/app.git"
	missing := strings.Repeat("5a", 20)
	Run(t, func(t *testing.T, sb *Sandbox) {
		for _, tc := range []struct {
			args []string
			code int
			msg  string
		}{
			{[]string{"--context=" + repo + "#nope"}, 7, `ref "nope" not found`},
			{[]string{"--context=" + repo, "--git-branch=nope"}, 7, `ref "nope" not found`},
			{[]string{"--context=" + repo + "#" + missing}, 7, "commit " + missing + " not found"},
			{[]string{"--context=" + gs.daemon + "/app.git#refs/heads/main#" + missing}, 7, "commit " + missing + " not found"},
			{[]string{"--context=" + repo, "--git-revision=deadbeef1"}, 7, `"deadbeef1" is neither a ref nor a commit`},
			{[]string{"--context=" + gs.http.URL + "/nope.git"}, 7, "nope.git"},
			{[]string{"--context=" + repo + "#main", "--git-branch=feature"}, 2, "conflicts with the ref"},
		} {
			r := sb.Kimia(append(append([]string{"--no-push"}, tc.args...), sb.Registry.Flags()...)...)
			if r.Code != tc.code || !strings.Contains(r.Stderr, tc.msg) {
				t.Errorf("%v: exit %d, want %d and %q in stderr:\n%s", tc.args, r.Code, tc.code, tc.msg, r.Stderr)
			}
			if r.Stdout != "" {
				t.Errorf("%v: stdout %q", tc.args, r.Stdout)
			}
		}
		assertNoLeftovers(t, sb)
	})
}

func TestGitContextPrivate(t *testing.T) {
	gs := startGitServers(t)
	repo := gs.http.URL + "/private/app.git"
	Run(t, func(t *testing.T, sb *Sandbox) {
		tokenFile := sb.Join("git-token")
		os.WriteFile(tokenFile, []byte(gitToken+"\n"), 0o600)
		wrongFile := sb.Join("wrong-token")
		os.WriteFile(wrongFile, []byte("wrong-"+gitToken+"\n"), 0o600)
		sb.chown(tokenFile)
		sb.chown(wrongFile)

		assertNoToken := func(t *testing.T, what string, texts ...string) {
			t.Helper()
			for _, s := range texts {
				if strings.Contains(s, gitToken) {
					t.Errorf("%s: the token appears in the output", what)
				}
			}
		}

		t.Run("token-file", func(t *testing.T) {
			before := gs.http.Authenticated()
			r, img, mdPath := buildFrom(t, sb, "private-token-file", repo+"#feature",
				"--git-token-file="+tokenFile, "--git-token-user="+gitUser, "--git=recurse-submodules=true", "--verbosity=debug")
			if gs.http.Authenticated() == before {
				t.Error("the server saw no authenticated request")
			}
			files := Files(t, img)
			if got := content(files, "ctx/version.txt"); got != "feature\n" {
				t.Errorf("version.txt = %q", got)
			}
			md, raw := readGitMetadata(t, mdPath)
			if md == nil || md.URL != repo || md.Commit != gs.fx.Feature {
				t.Errorf("metadata git = %+v", md)
			}
			cfg, err := img.RawConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			var layers []string
			for _, f := range files {
				layers = append(layers, f.Content)
			}
			assertNoToken(t, "stdout, stderr, metadata, image config and files",
				append([]string{r.Stdout, r.Stderr, raw, string(cfg)}, layers...)...)
		})
		t.Run("kaniko-env", func(t *testing.T) {
			sb.Env = []string{"GIT_USERNAME=" + gitUser, "GIT_TOKEN=" + gitToken}
			defer func() { sb.Env = nil }()
			r, img, _ := buildFrom(t, sb, "private-env", repo+"#v1.0:app")
			if got := content(Files(t, img), "app/hello.txt"); got != "hello from app\n" {
				t.Errorf("hello.txt = %q", got)
			}
			assertNoToken(t, "stdout and stderr", r.Stdout, r.Stderr)
		})
		t.Run("git-credentials-file", func(t *testing.T) {
			cred := filepath.Join(sb.Home, ".git-credentials")
			os.WriteFile(cred, []byte(strings.Replace(gs.http.URL, "http://", "http://"+gitUser+":"+gitToken+"@", 1)+"\n"), 0o600)
			sb.chown(cred)
			defer os.Remove(cred)
			r, img, _ := buildFrom(t, sb, "private-credentials", repo)
			if got := content(Files(t, img), "ctx/version.txt"); got != "main\n" {
				t.Errorf("version.txt = %q", got)
			}
			assertNoToken(t, "stdout and stderr", r.Stdout, r.Stderr)
		})
		for _, tc := range []struct {
			name string
			args []string
			env  []string
		}{
			{"wrong-token-file", []string{"--git-token-file=" + wrongFile, "--git-token-user=" + gitUser}, nil},
			{"wrong-kaniko-env", nil, []string{"GIT_USERNAME=" + gitUser, "GIT_PASSWORD=wrong-" + gitToken}},
			{"no-credentials", nil, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				sb.Env = tc.env
				defer func() { sb.Env = nil }()
				md := sb.Join("metadata-" + tc.name + ".json")
				args := append([]string{"--context=" + repo, "--destination=" + sb.Registry.Ref("ctx/private-fail:latest"),
					"--metadata-file=" + md, "--verbosity=debug"}, tc.args...)
				r := sb.Kimia(append(args, sb.Registry.Flags()...)...)
				if r.Code != 5 || !strings.Contains(r.Stderr, "authentication failed") {
					t.Errorf("exit %d, want 5 and \"authentication failed\":\n%s", r.Code, r.Stderr)
				}
				raw, _ := os.ReadFile(md)
				assertNoToken(t, "stdout, stderr and metadata", r.Stdout, r.Stderr, string(raw))
				assertNoLeftovers(t, sb)
			})
		}
		for _, u := range gs.http.Requests() {
			if strings.Contains(u, gitToken) {
				t.Errorf("the token was in a request URL: %s", u)
			}
		}
	})
}

// tarEntry is a tarball entry: a file, a "dir/", a symlink ("->target")
// or a hard link ("=>target").
type tarEntry struct{ name, body string }

func makeTarball(t *testing.T, gz bool, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	var zw *gzip.Writer
	var tw *tar.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		tw = tar.NewWriter(zw)
	} else {
		tw = tar.NewWriter(&buf)
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, ModTime: time.Unix(1700000000, 0)}
		switch {
		case strings.HasSuffix(e.name, "/"):
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		case strings.HasPrefix(e.body, "->"):
			h.Typeflag, h.Linkname = tar.TypeSymlink, strings.TrimPrefix(e.body, "->")
		case strings.HasPrefix(e.body, "=>"):
			h.Typeflag, h.Linkname = tar.TypeLink, strings.TrimPrefix(e.body, "=>")
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	if zw != nil {
		zw.Close()
	}
	return buf.Bytes()
}

func writeTarball(t *testing.T, sb *Sandbox, name string, data []byte) string {
	t.Helper()
	p := sb.Join(name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sb.chown(p)
	return p
}

func TestTarballContext(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		entries := []tarEntry{
			{"Dockerfile", "FROM " + sb.Busybox() + "\nCOPY . /ctx/\n"},
			{"app/", ""},
			{"app/Dockerfile", "FROM " + sb.Busybox() + "\nCOPY . /app/\n"},
			{"app/hello.txt", "hello from a tarball\n"},
			{"app/link", "->hello.txt"},
			{"a.txt", "a\n"},
			{"hard.txt", "=>a.txt"},
		}
		for _, tc := range []struct {
			name, file string
			gz         bool
			args       []string
			check      map[string]string
		}{
			{name: "tar-gz", file: "ctx.tar.gz", gz: true, check: map[string]string{"ctx/a.txt": "a\n", "ctx/hard.txt": "a\n", "ctx/app/hello.txt": "hello from a tarball\n"}},
			{name: "tgz-sub-path", file: "ctx.tgz", gz: true, args: []string{"--context-sub-path=app"}, check: map[string]string{"app/hello.txt": "hello from a tarball\n"}},
			{name: "plain-tar-dockerfile", file: "ctx.tar", args: []string{"--dockerfile=app/Dockerfile"}, check: map[string]string{"app/a.txt": "a\n"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := writeTarball(t, sb, tc.file, makeTarball(t, tc.gz, entries...))
				_, img, _ := buildFrom(t, sb, tc.name, "tar://"+p, tc.args...)
				files := Files(t, img)
				for f, want := range tc.check {
					if got := content(files, f); got != want {
						t.Errorf("%s = %q, want %q", f, got, want)
					}
				}
				assertNoLeftovers(t, sb)
			})
		}
		t.Run("stdin", func(t *testing.T) {
			ref := sb.Registry.Ref("ctx/stdin-" + sb.Name + ":latest")
			args := append([]string{"--context=tar://stdin", "--destination=" + ref, "--context-sub-path=app"}, sb.Registry.Flags()...)
			r := sb.KimiaContext(context.Background(), bytes.NewReader(makeTarball(t, true, entries...)), args...)
			if r.Code != 0 {
				t.Fatalf("build from stdin failed:\n%s", r)
			}
			files := Files(t, sb.Registry.Image(t, ref))
			if got := content(files, "app/hello.txt"); got != "hello from a tarball\n" {
				t.Errorf("app/hello.txt = %q", got)
			}
			if f := files["app/link"]; f.Type != tar.TypeSymlink || f.Link != "hello.txt" {
				t.Errorf("app/link: %+v, want a symbolic link to hello.txt", f)
			}
			assertNoLeftovers(t, sb)
		})
	})
}

// TestContextEscapesAreRefused tries every way out of a context; each
// fails with the context exit code, a message naming the culprit, and
// nothing left behind.
func TestContextEscapesAreRefused(t *testing.T) {
	gs := startGitServers(t)
	repo := gs.http.URL + "/app.git"
	Run(t, func(t *testing.T, sb *Sandbox) {
		df := tarEntry{"Dockerfile", "FROM " + sb.Busybox() + "\n"}
		tarball := func(name string, entries ...tarEntry) string {
			return "tar://" + writeTarball(t, sb, name+".tar.gz", makeTarball(t, true, append([]tarEntry{df}, entries...)...))
		}
		outside := sb.Join("outside")
		os.MkdirAll(outside, 0o755)
		for _, tc := range []struct {
			name string
			args []string
			code int
			msg  string
		}{
			{"tar-dotdot", []string{"--context=" + tarball("dotdot", tarEntry{"../evil", "x"})}, 7, `"../evil" leaves the context`},
			{"tar-absolute", []string{"--context=" + tarball("absolute", tarEntry{"/tmp/evil", "x"})}, 7, `"/tmp/evil" has an absolute path`},
			{"tar-symlink-absolute", []string{"--context=" + tarball("symabs", tarEntry{"passwd", "->/etc/passwd"})}, 7, "absolute target leaves the context"},
			{"tar-symlink-dotdot", []string{"--context=" + tarball("symdotdot", tarEntry{"a/up", "->../../" + filepath.Base(outside)})}, 7, "target leaves the context"},
			{"tar-symlinks-combined", []string{"--context=" + tarball("symcombined", tarEntry{"q", "->s/.."}, tarEntry{"s", "->."})}, 7, "leaves the context through other links"},
			{"tar-write-through-link", []string{"--context=" + tarball("through", tarEntry{"d/", ""}, tarEntry{"d/l", "->.."}, tarEntry{"d/l/l2", "->../x"})}, 7, "leaves the context"},
			{"tar-hardlink-out", []string{"--context=" + tarball("hardout", tarEntry{"h", "=>../../etc/shadow"})}, 7, "leaves the context"},
			{"tar-hardlink-absolute", []string{"--context=" + tarball("hardabs", tarEntry{"h", "=>/etc/shadow"})}, 7, "absolute path"},
			{"tar-dockerfile-out", []string{"--context=" + tarball("dfout", tarEntry{"app/x", "x"}), "--context-sub-path=app", "--dockerfile=../../x"}, 7, "leaves the context"},
			{"tar-dockerfile-absolute", []string{"--context=" + tarball("dfabs"), "--dockerfile=/etc/passwd"}, 7, "an absolute path cannot name a file"},
			{"tar-sub-path-out", []string{"--context=" + tarball("subout"), "--context-sub-path=../" + filepath.Base(outside)}, 7, "leaves the context"},
			{"git-sub-path-out", []string{"--context=" + repo, "--context-sub-path=app/../.."}, 7, "leaves the context"},
			{"git-sub-path-link-out", []string{"--context=" + repo, "--context-sub-path=abs"}, 7, "leaves the context through a symbolic link"},
			{"git-dockerfile-link-out", []string{"--context=" + repo, "--dockerfile=abs"}, 7, "leaves the context through a symbolic link"},
			{"git-dockerfile-out", []string{"--context=" + repo + "#:app", "--dockerfile=../../x"}, 7, "leaves the context"},
			{"git-dockerfile-absolute", []string{"--context=" + repo, "--dockerfile=/etc/passwd"}, 7, "an absolute path cannot name a file"},
			{"git-url-subdir-out", []string{"--context=" + repo + "#main:../x"}, 2, "leaves the repository"},
		} {
			r := sb.Kimia(append(append([]string{"--no-push"}, tc.args...), sb.Registry.Flags()...)...)
			if r.Code != tc.code || !strings.Contains(r.Stderr, tc.msg) {
				t.Errorf("%s: exit %d, want %d and %q in stderr:\n%s", tc.name, r.Code, tc.code, tc.msg, r.Stderr)
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 0 {
				t.Errorf("%s: something was written outside the context: %v", tc.name, entries)
			}
		}
		for _, p := range []string{"/tmp/evil", filepath.Join(filepath.Dir(sb.TmpDir), "evil")} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s was written", p)
				os.Remove(p)
			}
		}
		assertNoLeftovers(t, sb)
	})
}

func TestContextMaxSize(t *testing.T) {
	gs := startGitServers(t)
	Run(t, func(t *testing.T, sb *Sandbox) {
		big := tarEntry{"big.bin", strings.Repeat("x", 200<<10)}
		tarball := writeTarball(t, sb, "big.tar.gz", makeTarball(t, true, tarEntry{"Dockerfile", "FROM " + sb.Busybox() + "\n"}, big))
		for _, args := range [][]string{
			{"--context=tar://" + tarball, "--context-max-size=100KiB"},
			{"--context=" + gs.http.URL + "/app.git#v1.0", "--context-max-size=100KiB"},
		} {
			r := sb.Kimia(append(append([]string{"--no-push"}, args...), sb.Registry.Flags()...)...)
			if r.Code != 7 || !strings.Contains(r.Stderr, "--context-max-size") {
				t.Errorf("%v: exit %d, want 7 and a message naming --context-max-size:\n%s", args, r.Code, r.Stderr)
			}
		}
		// main dropped big.bin: its shallow clone fits.
		_, img, _ := buildFrom(t, sb, "max-size-fits", gs.http.URL+"/app.git", "--context-max-size=100KiB")
		if got := content(Files(t, img), "ctx/version.txt"); got != "main\n" {
			t.Errorf("version.txt = %q", got)
		}
		assertNoLeftovers(t, sb)
	})
}

// TestGitContextSIGTERM stops kimia while git waits for a server that
// never answers: kimia exits as SIGTERM says, and neither git processes
// nor the temporary clone stay behind.
func TestGitContextSIGTERM(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		// A server per worker: leftover git processes are found by its
		// address.
		hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
		defer hang.Close()
		host := strings.TrimPrefix(hang.URL, "http://")
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(3*time.Second, cancel)
		r := sb.KimiaContext(ctx, nil, "--no-push", "--context="+hang.URL+"/slow.git")
		if r.Code != 143 {
			t.Errorf("exit %d, want 143 (SIGTERM):\n%s", r.Code, r)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			var left []string
			procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, p := range procs {
				if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), host) {
					left = append(left, strings.ReplaceAll(string(b), "\x00", " "))
				}
			}
			if len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("git processes left after SIGTERM: %q", left)
			}
			time.Sleep(100 * time.Millisecond)
		}
		assertNoLeftovers(t, sb)
	})
}
