// Package gittest serves real git repositories on loopback for tests:
// git http-backend behind a Go HTTP server with basic-auth checking,
// git daemon for git://, and plain files for git's dumb HTTP protocol.
package gittest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rapidfort/kimia/internal/testenv"
)

// Git runs git in dir with a fixed identity and clock, so that commit
// ids are reproducible, and fails t on error. It returns trimmed stdout.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "protocol.file.allow=always", "-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=kimia test", "GIT_AUTHOR_EMAIL=test@kimia.invalid",
		"GIT_COMMITTER_NAME=kimia test", "GIT_COMMITTER_EMAIL=test@kimia.invalid",
		"GIT_AUTHOR_DATE=2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2024-01-01T00:00:00Z",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+dir, "GIT_TERMINAL_PROMPT=0",
	)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// Fixture is a set of bare repositories under Root:
//
//	app.git            the context repository
//	lib.git            a repository app.git uses as submodule "lib"
//	private/app.git    a copy of app.git that needs credentials over HTTP
//	private/lib.git    its submodule
//
// app.git has these commits:
//
//	V1      Dockerfile, version.txt "v1", app/Dockerfile, app/hello.txt,
//	        current -> version.txt, abs -> /etc/hostname, big.bin
//	        (BigFileSize random bytes); annotated tag v1.0 and
//	        lightweight tag light
//	Main    on top of V1: version.txt "main", big.bin removed, submodule
//	        lib; branch main (HEAD)
//	Feature on top of V1: version.txt "feature"; branch feature
type Fixture struct {
	Root                  string
	V1, Main, Feature     string
	LibCommit             string
	DockerfileFrom        string
	V1Tag, LightweightTag string
}

// NewFixture builds the repositories. Dockerfiles start with
// "FROM "+from and copy the whole context to /ctx/ (app/Dockerfile to
// /app/).
func NewFixture(t testing.TB, from string) *Fixture {
	t.Helper()
	root := t.TempDir()
	work := t.TempDir()
	f := &Fixture{Root: root, DockerfileFrom: from, V1Tag: "v1.0", LightweightTag: "light"}

	lib := filepath.Join(work, "lib")
	Git(t, work, "init", "-q", "lib")
	testenv.WriteFiles(t, lib, map[string]string{"lib.txt": "library\n"})
	Git(t, lib, "add", "-A")
	Git(t, lib, "commit", "-q", "-m", "lib")
	f.LibCommit = Git(t, lib, "rev-parse", "HEAD")
	Git(t, work, "clone", "-q", "--bare", "lib", filepath.Join(root, "lib.git"))
	Git(t, work, "clone", "-q", "--bare", "lib", "lib.git") // for the submodule add below

	app := filepath.Join(work, "app")
	Git(t, work, "init", "-q", "app")
	testenv.WriteFiles(t, app, map[string]string{
		"big.bin":        bigFile(),
		"Dockerfile":     "FROM " + from + "\nCOPY . /ctx/\n",
		"version.txt":    "v1\n",
		"app/Dockerfile": "FROM " + from + "\nCOPY . /app/\n",
		"app/hello.txt":  "hello from app\n",
		"current":        "->version.txt",
		"abs":            "->/etc/hostname",
	})
	Git(t, app, "add", "-A")
	Git(t, app, "commit", "-q", "-m", "v1")
	f.V1 = Git(t, app, "rev-parse", "HEAD")
	Git(t, app, "tag", "-a", "-m", "release v1.0", f.V1Tag)
	Git(t, app, "tag", f.LightweightTag)

	Git(t, app, "checkout", "-q", "-b", "feature")
	testenv.WriteFiles(t, app, map[string]string{"version.txt": "feature\n"})
	Git(t, app, "commit", "-q", "-am", "feature")
	f.Feature = Git(t, app, "rev-parse", "HEAD")

	Git(t, app, "checkout", "-q", "main")
	testenv.WriteFiles(t, app, map[string]string{"version.txt": "main\n"})
	Git(t, app, "rm", "-q", "big.bin")
	// A relative URL, resolved against wherever app.git is fetched from,
	// so the same repository works over every transport.
	Git(t, app, "submodule", "add", "-q", "../lib.git", "lib")
	Git(t, app, "commit", "-q", "-am", "main")
	f.Main = Git(t, app, "rev-parse", "HEAD")

	Git(t, work, "clone", "-q", "--bare", "app", filepath.Join(root, "app.git"))

	if err := os.MkdirAll(filepath.Join(root, "private"), 0o755); err != nil {
		t.Fatal(err)
	}
	Git(t, root, "clone", "-q", "--bare", "--mirror", "app.git", filepath.Join("private", "app.git"))
	Git(t, root, "clone", "-q", "--bare", "--mirror", "lib.git", filepath.Join("private", "lib.git"))
	for _, r := range []string{"app.git", "lib.git", "private/app.git", "private/lib.git"} {
		Git(t, filepath.Join(root, r), "update-server-info") // for dumb HTTP
	}
	return f
}

// BigFileSize is the size of big.bin, which only V1 and Feature have.
const BigFileSize = 256 << 10

// bigFile is incompressible and the same in every run.
func bigFile() string {
	b := make([]byte, BigFileSize)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return string(b)
}

// HTTPServer is git http-backend behind a loopback HTTP server.
// Repositories under /private/ need basic auth with User and Token.
type HTTPServer struct {
	URL   string
	User  string
	Token string

	mu       sync.Mutex
	requests []string
	authOK   int
}

// Requests lists the request URIs the server saw.
func (s *HTTPServer) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// Authenticated counts requests to /private/ that passed the check.
func (s *HTTPServer) Authenticated() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authOK
}

// ServeHTTP serves root's repositories with git's smart HTTP protocol.
func ServeHTTP(t testing.TB, root, user, token string) *HTTPServer {
	t.Helper()
	backend := filepath.Join(execPath(t), "git-http-backend")
	s := &HTTPServer{User: user, Token: token}
	h := &cgi.Handler{
		Path: backend,
		Dir:  root,
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + root},
		// Refusals (unknown refs, missing repositories) are what many
		// tests provoke; the client reports them.
		Stderr: io.Discard,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.RequestURI)
		s.mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/private/") {
			u, p, ok := r.BasicAuth()
			if !ok || u != s.User || p != s.Token {
				w.Header().Set("WWW-Authenticate", `Basic realm="kimia test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			s.mu.Lock()
			s.authOK++
			s.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// ServeDumbHTTP serves root's repositories as plain files: git's dumb
// HTTP protocol, which can fetch neither shallow nor by commit id.
func ServeDumbHTTP(t testing.TB, root string) string {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(root)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// ServeDaemon runs git daemon for root on a random loopback port and
// returns its git:// base URL.
func ServeDaemon(t testing.TB, root string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("git", "daemon", "--reuseaddr", "--listen=127.0.0.1", "--port="+strconv.Itoa(port),
		"--base-path="+root, "--export-all", "--informative-errors", root)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+root)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting git daemon: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return "git://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("git daemon did not listen on %s: %v\n%s", addr, err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func execPath(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v (git must be installed)", err)
	}
	return strings.TrimSpace(string(out))
}
