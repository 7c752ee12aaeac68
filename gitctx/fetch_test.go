package gitctx

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/gitctx/gittest"
)

// testEnv is a clean environment for git: no user or system config.
func testEnv(t *testing.T) []string {
	home := t.TempDir()
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GIT_CONFIG_NOSYSTEM=1"}
}

func fetchURL(t *testing.T, ctx context.Context, url string, o Options, env map[string]string) (*Checkout, string, error) {
	t.Helper()
	r, err := Parse(url)
	if err != nil {
		t.Fatalf("Parse(%q): %v", url, err)
	}
	dir := t.TempDir()
	o.Environ = testEnv(t)
	o.Getenv = func(k string) string { return env[k] }
	co, err := Fetch(ctx, r, dir, o)
	return co, dir, err
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	fixtureOnce sync.Once
	fixture     *gittest.Fixture
	smart       *gittest.HTTPServer
	daemonURL   string
	dumbURL     string
)

const (
	testUser  = "ci-bot"
	testToken = "tok-9f8e7d6c5b4a"
)

// servers starts one fixture and its servers for the whole package.
func servers(t *testing.T) (*gittest.Fixture, *gittest.HTTPServer) {
	fixtureOnce.Do(func() {
		ft := &onceT{T: t}
		fixture = gittest.NewFixture(ft, "scratch")
		smart = gittest.ServeHTTP(ft, fixture.Root, testUser, testToken)
		daemonURL = gittest.ServeDaemon(ft, fixture.Root)
		dumbURL = gittest.ServeDumbHTTP(ft, fixture.Root)
	})
	if fixture == nil {
		t.Fatal("fixture set-up failed in an earlier test")
	}
	return fixture, smart
}

// onceT keeps the shared servers alive past the first test that starts
// them: cleanups run when the package's tests end (TestMain).
type onceT struct{ *testing.T }

var cleanups []func()

func (o *onceT) Cleanup(f func()) { cleanups = append(cleanups, f) }
func (o *onceT) TempDir() string {
	d, err := os.MkdirTemp("", "gitctx-test-")
	if err != nil {
		o.T.Fatal(err)
	}
	cleanups = append(cleanups, func() { os.RemoveAll(d) })
	return d
}

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	os.Exit(code)
}

func TestFetchRefs(t *testing.T) {
	f, s := servers(t)
	repo := s.URL + "/app.git"
	for _, tc := range []struct {
		name, url     string
		o             Options
		ref, commit   string
		version       string
		abbreviateRev bool
	}{
		{name: "the default branch", url: repo, ref: "refs/heads/main", commit: f.Main, version: "main"},
		{name: "a branch in the fragment", url: repo + "#feature", ref: "refs/heads/feature", commit: f.Feature, version: "feature"},
		{name: "a full ref in the fragment", url: repo + "#refs/heads/feature", ref: "refs/heads/feature", commit: f.Feature, version: "feature"},
		{name: "an annotated tag", url: repo + "#v1.0", ref: "refs/tags/v1.0", commit: f.V1, version: "v1"},
		{name: "a lightweight tag", url: repo + "#light", ref: "refs/tags/light", commit: f.V1, version: "v1"},
		{name: "--git-branch", url: repo, o: Options{Branch: "feature"}, ref: "refs/heads/feature", commit: f.Feature, version: "feature"},
		{name: "--git-branch naming a tag", url: repo, o: Options{Branch: "v1.0"}, ref: "refs/tags/v1.0", commit: f.V1, version: "v1"},
		{name: "--git-revision naming a tag", url: repo, o: Options{Revision: "v1.0"}, ref: "refs/tags/v1.0", commit: f.V1, version: "v1"},
		{name: "--git-revision with a full commit", url: repo, o: Options{Revision: f.V1}, commit: f.V1, version: "v1"},
		{name: "--git-revision with an abbreviated commit", url: repo, o: Options{Revision: f.Feature[:10]}, commit: f.Feature, version: "feature"},
		{name: "a commit in the fragment", url: repo + "#" + f.Feature, commit: f.Feature, version: "feature"},
		{name: "Kaniko's ref and commit", url: repo + "#refs/heads/main#" + f.V1, ref: "refs/heads/main", commit: f.V1, version: "v1"},
		{name: "--git-branch with a commit", url: repo, o: Options{Branch: "main", Revision: f.V1}, ref: "refs/heads/main", commit: f.V1, version: "v1"},
		{name: "--git-branch with an abbreviated commit", url: repo, o: Options{Branch: "main", Revision: f.V1[:8]}, ref: "refs/heads/main", commit: f.V1, version: "v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			co, _, err := fetchURL(t, context.Background(), tc.url, tc.o, nil)
			if err != nil {
				t.Fatal(err)
			}
			if co.Ref != tc.ref || co.Commit != tc.commit {
				t.Errorf("got ref %q commit %s, want ref %q commit %s", co.Ref, co.Commit, tc.ref, tc.commit)
			}
			if co.URL != repo {
				t.Errorf("URL = %q, want %q", co.URL, repo)
			}
			if got := readFile(t, filepath.Join(co.Dir, "version.txt")); got != tc.version+"\n" {
				t.Errorf("version.txt = %q, want %q", got, tc.version)
			}
			assertNoGitDirs(t, co.Dir)
		})
	}
}

func assertNoGitDirs(t *testing.T, dir string) {
	t.Helper()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Name() == ".git" {
			t.Errorf("git metadata left in the context: %s", p)
		}
		return nil
	})
}

// TestFetchShallow checks that only the wanted commit is transferred:
// V1's big.bin (deleted on main) fits the size limit only if the fetch
// of main leaves history behind. The dumb HTTP server, which cannot
// fetch shallow, must exceed it.
func TestFetchShallow(t *testing.T) {
	servers(t)
	limit := Options{MaxSize: gittest.BigFileSize / 2}
	co, _, err := fetchURL(t, context.Background(), smart.URL+"/app.git", limit, nil)
	if err != nil {
		t.Fatalf("shallow fetch of main: %v", err)
	}
	if _, err := os.Stat(filepath.Join(co.Dir, "big.bin")); !os.IsNotExist(err) {
		t.Fatalf("big.bin is on main: %v", err)
	}
	_, _, err = fetchURL(t, context.Background(), dumbURL+"/app.git", limit, nil)
	if err == nil || !strings.Contains(err.Error(), "--context-max-size") {
		t.Fatalf("full fetch over dumb HTTP: got %v, want the size limit to be hit", err)
	}
}

func TestFetchMissing(t *testing.T) {
	f, s := servers(t)
	repo := s.URL + "/app.git"
	missing := strings.Repeat("ab", 20)
	for _, tc := range []struct {
		name, url string
		o         Options
		msg       string
	}{
		{name: "a branch that does not exist", url: repo + "#nope", msg: `ref "nope" not found`},
		{name: "--git-branch that does not exist", url: repo, o: Options{Branch: "nope"}, msg: `ref "nope" not found`},
		{name: "a full ref that does not exist", url: repo + "#refs/heads/v1.0", msg: `ref "refs/heads/v1.0" not found`},
		{name: "a commit that does not exist", url: repo + "#" + missing, msg: "commit " + missing + " not found"},
		{name: "an abbreviated commit that does not exist", url: repo, o: Options{Revision: "abcdef12"}, msg: `"abcdef12" is neither a ref nor a commit`},
		{name: "an abbreviated commit not on the branch", url: repo, o: Options{Branch: "main", Revision: f.Feature[:10]}, msg: "is neither a ref nor a commit in refs/heads/main"},
		{name: "Kaniko's form with a missing ref", url: repo + "#refs/heads/nope#" + f.V1, msg: `ref "refs/heads/nope" not found`},
		{name: "a repository that does not exist", url: s.URL + "/nope.git", msg: "nope.git"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := fetchURL(t, context.Background(), tc.url, tc.o, nil)
			if err == nil {
				t.Fatal("fetch succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", err, tc.msg)
			}
			if k := engine.KindOf(err); k != engine.KindContext {
				t.Errorf("kind %v, want %v (%v)", k, engine.KindContext, err)
			}
		})
	}
}

func TestFetchConflicts(t *testing.T) {
	_, s := servers(t)
	repo := s.URL + "/app.git"
	for _, tc := range []struct {
		name, url string
		o         Options
	}{
		{"--git-branch against the fragment", repo + "#main", Options{Branch: "feature"}},
		{"--git-revision commit against the fragment's commit", repo + "#main#" + sha, Options{Revision: strings.Repeat("1", 40)}},
		{"--git-revision ref against --git-branch", repo, Options{Branch: "main", Revision: "v1.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := fetchURL(t, context.Background(), tc.url, tc.o, nil)
			if k := engine.KindOf(err); err == nil || k != engine.KindUsage {
				t.Errorf("got %v (kind %v), want a usage error", err, k)
			}
		})
	}
}

func TestFetchSubmodulesAndSymlinks(t *testing.T) {
	f, s := servers(t)
	co, _, err := fetchURL(t, context.Background(), s.URL+"/app.git", Options{RecurseSubmodules: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if co.Commit != f.Main {
		t.Errorf("commit %s, want %s", co.Commit, f.Main)
	}
	if got := readFile(t, filepath.Join(co.Dir, "lib", "lib.txt")); got != "library\n" {
		t.Errorf("lib/lib.txt = %q", got)
	}
	assertNoGitDirs(t, co.Dir)
	for link, target := range map[string]string{"current": "version.txt", "abs": "/etc/hostname"} {
		got, err := os.Readlink(filepath.Join(co.Dir, link))
		if err != nil || got != target {
			t.Errorf("%s: readlink = %q, %v; want a symbolic link to %q", link, got, err, target)
		}
	}

	// Without the option the submodule stays an empty directory.
	co, _, err = fetchURL(t, context.Background(), s.URL+"/app.git", Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Join(co.Dir, "lib")); len(entries) != 0 {
		t.Errorf("lib has %d entries without --git recurse-submodules=true", len(entries))
	}
}

func TestFetchPrivate(t *testing.T) {
	f, s := servers(t)
	repo := s.URL + "/private/app.git"
	t.Run("with the right token, submodules included", func(t *testing.T) {
		before := s.Authenticated()
		co, _, err := fetchURL(t, context.Background(), repo+"#feature",
			Options{RecurseSubmodules: true, Auth: Auth{Username: testUser, Password: testToken, From: "test"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if co.Commit != f.Feature {
			t.Errorf("commit %s, want %s", co.Commit, f.Feature)
		}
		if s.Authenticated() == before {
			t.Error("the server saw no authenticated request")
		}
		co, _, err = fetchURL(t, context.Background(), repo,
			Options{RecurseSubmodules: true, Auth: Auth{Username: testUser, Password: testToken, From: "test"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, filepath.Join(co.Dir, "lib", "lib.txt")); got != "library\n" {
			t.Errorf("private submodule: lib/lib.txt = %q", got)
		}
		for _, u := range s.Requests() {
			if strings.Contains(u, testToken) {
				t.Errorf("the token was in a request URL: %s", u)
			}
		}
	})
	t.Run("with credentials in the URL", func(t *testing.T) {
		u := strings.Replace(repo, "http://", "http://"+testUser+":"+testToken+"@", 1)
		r, err := Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		a, err := ResolveAuth(r, "", "", func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		co, _, err := fetchURL(t, context.Background(), u, Options{Auth: a}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if co.URL != repo {
			t.Errorf("URL = %q, want it without credentials: %q", co.URL, repo)
		}
	})
	for _, tc := range []struct {
		name string
		auth Auth
	}{
		{"with a wrong token", Auth{Username: testUser, Password: "wrong-" + testToken, From: "--git-token-file"}},
		{"without credentials", Auth{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := fetchURL(t, context.Background(), repo, Options{Auth: tc.auth}, nil)
			if err == nil {
				t.Fatal("fetch succeeded")
			}
			if k := engine.KindOf(err); k != engine.KindAuth {
				t.Errorf("kind %v, want %v: %v", k, engine.KindAuth, err)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("the token is in the error: %v", err)
			}
			if !strings.Contains(err.Error(), "authentication failed") {
				t.Errorf("error does not say authentication failed: %v", err)
			}
		})
	}
}

// TestTokenNeverInArgv watches every process's command line while a
// private fetch runs.
func TestTokenNeverInArgv(t *testing.T) {
	_, s := servers(t)
	stop, done := make(chan struct{}), make(chan struct{})
	var leaks []string
	seen := 0
	host := strings.TrimPrefix(s.URL, "http://")
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, p := range procs {
				b, err := os.ReadFile(p)
				if err != nil || len(b) == 0 {
					continue
				}
				cmd := strings.ReplaceAll(string(b), "\x00", " ")
				if strings.Contains(cmd, host) {
					seen++
				}
				if strings.Contains(cmd, testToken) {
					leaks = append(leaks, cmd)
				}
			}
		}
	}()
	_, _, err := fetchURL(t, context.Background(), s.URL+"/private/app.git",
		Options{RecurseSubmodules: true, Auth: Auth{Username: testUser, Password: testToken, From: "test"}}, nil)
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if seen == 0 {
		t.Fatal("the watcher saw no git process; it cannot tell whether the token leaked")
	}
	for _, l := range leaks {
		t.Errorf("token in a command line: %s", l)
	}
}

func TestFetchGitDaemon(t *testing.T) {
	f, _ := servers(t)
	co, _, err := fetchURL(t, context.Background(), daemonURL+"/app.git#refs/heads/feature#"+f.V1, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if co.Commit != f.V1 || co.Ref != "refs/heads/feature" {
		t.Errorf("got %s %s", co.Ref, co.Commit)
	}
	co, _, err = fetchURL(t, context.Background(), daemonURL+"/app.git#v1.0", Options{RecurseSubmodules: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if co.Commit != f.V1 {
		t.Errorf("got %s", co.Commit)
	}
}

// TestPullMethod follows Kaniko: GIT_PULL_METHOD=http fetches a git://
// URL over http.
func TestPullMethod(t *testing.T) {
	f, s := servers(t)
	u := "git://" + strings.TrimPrefix(s.URL, "http://") + "/app.git#feature"
	co, _, err := fetchURL(t, context.Background(), u, Options{}, map[string]string{EnvPullMethod: "http"})
	if err != nil {
		t.Fatal(err)
	}
	if co.Commit != f.Feature || !strings.HasPrefix(co.URL, "http://") {
		t.Errorf("got %s from %s", co.Commit, co.URL)
	}
	// Without it, git:// is the git protocol: against a port where no
	// git daemon listens the failure says how to get Kaniko's behaviour.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	_, _, err = fetchURL(t, context.Background(), "git://"+closed+"/app.git", Options{}, nil)
	if err == nil || !strings.Contains(err.Error(), "GIT_PULL_METHOD") {
		t.Errorf("got %v, want a failure that mentions GIT_PULL_METHOD", err)
	}
}

// TestDumbHTTP covers servers that can fetch neither shallow nor by
// commit id: kimia falls back to history and still finds exactly what
// was asked for, or fails.
func TestDumbHTTP(t *testing.T) {
	f, _ := servers(t)
	repo := dumbURL + "/app.git"
	co, _, err := fetchURL(t, context.Background(), repo+"#feature", Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if co.Commit != f.Feature {
		t.Errorf("branch: got %s", co.Commit)
	}
	co, _, err = fetchURL(t, context.Background(), repo+"#"+f.V1, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if co.Commit != f.V1 {
		t.Errorf("commit: got %s", co.Commit)
	}
	_, _, err = fetchURL(t, context.Background(), repo+"#"+strings.Repeat("cd", 20), Options{}, nil)
	if err == nil || engine.KindOf(err) != engine.KindContext || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing commit: got %v", err)
	}
}

func TestFetchMaxSize(t *testing.T) {
	_, s := servers(t)
	_, _, err := fetchURL(t, context.Background(), s.URL+"/app.git", Options{MaxSize: 512}, nil)
	if err == nil || engine.KindOf(err) != engine.KindContext || !strings.Contains(err.Error(), "--context-max-size") {
		t.Fatalf("got %v, want a context error naming --context-max-size", err)
	}
}

// TestFetchCanceled stops a fetch that hangs on the server and checks
// that git and its helpers are gone.
func TestFetchCanceled(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hang)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	start := time.Now()
	_, _, err := fetchURL(t, ctx, srv.URL+"/slow.git", Options{}, nil)
	if err == nil || !errors.Is(err, context.Canceled) || engine.KindOf(err) != engine.KindCanceled {
		t.Fatalf("got %v, want a canceled error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelation took %v", d)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	deadline := time.Now().Add(2 * time.Second)
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
			t.Fatalf("processes left after cancelation: %q", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSSH runs an scp-like and an ssh:// URL through a stand-in ssh
// client that serves the fixture locally, and checks the options kimia
// gives ssh for a key and a known_hosts file.
func TestSSH(t *testing.T) {
	f, _ := servers(t)
	bin := t.TempDir()
	argsFile := filepath.Join(bin, "args")
	fake := "#!/bin/sh\n" +
		"printf '%s\\n' \"$@\" >> " + shellQuote(argsFile) + "\n" +
		"for a; do last=$a; done\n" +
		"eval \"set -- $last\"\n" +
		"exec git \"${1#git-}\" " + shellQuote(f.Root) + "/\"${2#/}\"\n"
	if err := os.WriteFile(filepath.Join(bin, "ssh"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	old := sshProgram
	sshProgram = filepath.Join(bin, "ssh")
	defer func() { sshProgram = old }()

	key := filepath.Join(bin, "id_test")
	if err := os.WriteFile(key, []byte("not really a key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(bin, "known_hosts")
	for _, u := range []string{"git@fakehost:app.git#feature", "ssh://git@fakehost:2222/app.git#feature"} {
		t.Run(u, func(t *testing.T) {
			os.Remove(argsFile)
			co, dir, err := fetchURL(t, context.Background(), u,
				Options{Auth: Auth{SSHKeyFile: key, SSHKnownHosts: known}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if co.Commit != f.Feature {
				t.Errorf("got %s", co.Commit)
			}
			args := readFile(t, argsFile)
			keyCopy := filepath.Join(dir, "ssh", "key")
			for _, want := range []string{"BatchMode=yes", "-i\n" + keyCopy + "\n", "IdentitiesOnly=yes", "UserKnownHostsFile=" + known, "StrictHostKeyChecking=yes", "fakehost"} {
				if !strings.Contains(args, want) {
					t.Errorf("ssh arguments lack %q:\n%s", want, args)
				}
			}
			if fi, err := os.Stat(keyCopy); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("key copy: %v %v, want mode 0600", fi, err)
			}
			if strings.HasPrefix(keyCopy, co.Dir) {
				t.Error("the key copy is inside the context")
			}
		})
	}
}
