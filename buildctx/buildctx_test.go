package buildctx

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/gitctx/gittest"
	"github.com/rapidfort/kimia/internal/testenv"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind Kind
		loc  string
	}{
		{".", KindDir, "."},
		{"/src/my.git.repo", KindDir, "/src/my.git.repo"},
		{"github.com/org/repo.git", KindDir, "github.com/org/repo.git"},
		{"dir:///workspace", KindDir, "/workspace"},
		{"tar://ctx.tar.gz", KindTar, "ctx.tar.gz"},
		{"tar://stdin", KindTar, "stdin"},
		{"https://github.com/org/repo.git#main:app", KindGit, "https://github.com/org/repo.git#main:app"},
		{"git://host/org/repo.git#refs/heads/b#0123", KindGit, "git://host/org/repo.git#refs/heads/b#0123"},
		{"git@github.com:org/repo.git", KindGit, "git@github.com:org/repo.git"},
		{"ssh://git@host/repo.git", KindGit, "ssh://git@host/repo.git"},
	} {
		if k, loc := Classify(tc.in); k != tc.kind || loc != tc.loc {
			t.Errorf("Classify(%q) = %s %q, want %s %q", tc.in, k, loc, tc.kind, tc.loc)
		}
	}
}

// isolate gives the test its own TMPDIR and HOME, and returns a function
// that fails the test if anything is left in that TMPDIR.
func isolate(t *testing.T) (tmp string, assertClean func()) {
	t.Helper()
	tmp = t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	return tmp, func() {
		t.Helper()
		if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("left in TMPDIR: %v", names)
		}
	}
}

func TestPrepareDirectory(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	ctx := t.TempDir()
	testenv.WriteFiles(t, ctx, map[string]string{
		"Dockerfile":         "FROM scratch\n",
		"app/Dockerfile":     "FROM scratch\n",
		"out":                "->" + outside,
		"app/Dockerfile.lnk": "->../Dockerfile",
	})
	for _, tc := range []struct {
		name, sub, df string
		dir, file     string
		msg           string
	}{
		{name: "the default Dockerfile", dir: ".", file: "Dockerfile"},
		{name: "a sub path", sub: "app", dir: "app", file: "app/Dockerfile"},
		{name: "a Dockerfile through a link in the context", sub: "app", df: "Dockerfile.lnk", dir: "app", file: "app/Dockerfile.lnk"},
		{name: "a sub path that climbs out", sub: "../..", msg: "leaves the context"},
		{name: "an absolute sub path", sub: "/etc", msg: "must be relative"},
		{name: "a sub path through a link to outside", sub: "out", msg: "leaves the context through a symbolic link"},
		{name: "a missing sub path", sub: "nope", msg: "no such directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Prepare(context.Background(), Source{Context: ctx, SubPath: tc.sub, Dockerfile: tc.df}, nil)
			if tc.msg != "" {
				if err == nil || !strings.Contains(err.Error(), tc.msg) || engine.KindOf(err) != engine.KindContext {
					t.Fatalf("got %v, want a context error containing %q", err, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			real, _ := filepath.EvalSymlinks(ctx)
			if want := filepath.Join(real, tc.dir); p.Dir != want {
				t.Errorf("Dir = %q, want %q", p.Dir, want)
			}
			if want := filepath.Join(real, tc.file); p.Dockerfile != want {
				t.Errorf("Dockerfile = %q, want %q", p.Dockerfile, want)
			}
			if p.Git != nil {
				t.Errorf("Git = %+v for a directory", p.Git)
			}
		})
	}
}

func writeTar(t *testing.T, entries ...entry) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ctx.tar.gz")
	if err := os.WriteFile(p, makeTar(t, true, entries...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrepareTarball(t *testing.T) {
	_, clean := isolate(t)
	tarball := writeTar(t,
		entry{Name: "Dockerfile", Body: "FROM scratch\n"},
		entry{Name: "app/Dockerfile", Body: "FROM scratch\nCOPY . /\n"},
		entry{Name: "app/ro/", Mode: 0o500},
		entry{Name: "app/ro/f", Body: "x", Mode: 0o400})
	p, err := Prepare(context.Background(), Source{Context: "tar://" + tarball, SubPath: "app"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(p.Dir) != "app" || p.Dockerfile != filepath.Join(p.Dir, "Dockerfile") {
		t.Errorf("Dir %q Dockerfile %q", p.Dir, p.Dockerfile)
	}
	if b, _ := os.ReadFile(p.Dockerfile); string(b) != "FROM scratch\nCOPY . /\n" {
		t.Errorf("Dockerfile content %q", b)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	clean()
}

func TestPrepareTarballFromStdin(t *testing.T) {
	_, clean := isolate(t)
	old := stdin
	defer func() { stdin = old }()
	stdin = bytes.NewReader(makeTar(t, false, entry{Name: "sub/Dockerfile.web", Body: "FROM scratch\n"}))
	p, err := Prepare(context.Background(), Source{Context: "tar://stdin", Dockerfile: "sub/Dockerfile.web"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(p.Dockerfile, "/sub/Dockerfile.web") {
		t.Errorf("Dockerfile %q", p.Dockerfile)
	}
	p.Close()
	clean()
}

func TestPrepareTarballFailuresLeaveNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  Source
		msg  string
	}{
		{"an escaping entry", Source{Context: "tar://" + writeTar(t, entry{Name: "Dockerfile", Body: "x"}, entry{Name: "../evil", Body: "x"})},
			`"../evil" leaves the context`},
		{"a link to outside", Source{Context: "tar://" + writeTar(t, entry{Name: "Dockerfile", Symlink: "/etc/passwd"})},
			"absolute target leaves the context"},
		{"too large", Source{Context: "tar://" + writeTar(t, entry{Name: "Dockerfile", Body: strings.Repeat("x", 100)}), MaxSize: 10},
			"--context-max-size"},
		{"a Dockerfile outside the context", Source{Context: "tar://" + writeTar(t, entry{Name: "app/x", Body: "x"}), SubPath: "app", Dockerfile: "../../Dockerfile"},
			"leaves the context"},
		{"an absolute Dockerfile", Source{Context: "tar://" + writeTar(t, entry{Name: "Dockerfile", Body: "x"}), Dockerfile: "/etc/passwd"},
			"an absolute path cannot name a file of a tarball or git context"},
		{"a sub path that climbs out", Source{Context: "tar://" + writeTar(t, entry{Name: "Dockerfile", Body: "x"}), SubPath: "../"},
			"leaves the context"},
		{"a missing file", Source{Context: "tar:///nonexistent/ctx.tgz"}, "no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, clean := isolate(t)
			_, err := Prepare(context.Background(), tc.src, nil)
			if err == nil || !strings.Contains(err.Error(), tc.msg) || engine.KindOf(err) != engine.KindContext {
				t.Fatalf("got %v, want a context error containing %q", err, tc.msg)
			}
			clean()
		})
	}
}

const (
	testUser  = "ci-bot"
	testToken = "tok-buildctx-55aa"
)

func TestPrepareGit(t *testing.T) {
	f := gittest.NewFixture(t, "scratch")
	srv := gittest.ServeHTTP(t, f.Root, testUser, testToken)
	repo := srv.URL + "/app.git"

	t.Run("a tag and a sub directory in the URL", func(t *testing.T) {
		_, clean := isolate(t)
		p, err := Prepare(context.Background(), Source{Context: repo + "#v1.0:app"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := GitSource{URL: repo, Ref: "refs/tags/v1.0", Commit: f.V1, SubDir: "app"}
		if *p.Git != want {
			t.Errorf("Git = %+v, want %+v", *p.Git, want)
		}
		if filepath.Base(p.Dir) != "app" || p.Dockerfile != filepath.Join(p.Dir, "Dockerfile") {
			t.Errorf("Dir %q Dockerfile %q", p.Dir, p.Dockerfile)
		}
		if b, _ := os.ReadFile(filepath.Join(p.Dir, "hello.txt")); string(b) != "hello from app\n" {
			t.Errorf("hello.txt = %q", b)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		clean()
	})
	t.Run("a branch, a sub path and a Dockerfile outside it", func(t *testing.T) {
		_, clean := isolate(t)
		p, err := Prepare(context.Background(), Source{Context: repo, SubPath: "app", Dockerfile: "../Dockerfile",
			Git: GitOptions{Branch: "feature"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p.Git.Commit != f.Feature || p.Git.SubDir != "app" || p.Dockerfile != filepath.Join(p.Root, "Dockerfile") {
			t.Errorf("Git %+v Dockerfile %q", p.Git, p.Dockerfile)
		}
		p.Close()
		clean()
	})
	t.Run("a private repository with a token file", func(t *testing.T) {
		_, clean := isolate(t)
		tok := filepath.Join(t.TempDir(), "token")
		os.WriteFile(tok, []byte(testToken+"\n"), 0o600)
		p, err := Prepare(context.Background(), Source{Context: srv.URL + "/private/app.git",
			Git: GitOptions{TokenFile: tok, TokenUser: testUser, RecurseSubmodules: true}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(p.Dir, "lib", "lib.txt")); string(b) != "library\n" {
			t.Errorf("lib/lib.txt = %q", b)
		}
		p.Close()
		clean()
	})
	for _, tc := range []struct {
		name string
		src  Source
		kind engine.Kind
		msg  string
	}{
		{"a missing branch", Source{Context: repo + "#nope"}, engine.KindContext, `ref "nope" not found`},
		{"a wrong token", Source{Context: srv.URL + "/private/app.git", Git: GitOptions{TokenFile: writeToken(t, "wrong"), TokenUser: testUser}},
			engine.KindAuth, "authentication failed"},
		{"a sub path against the URL's", Source{Context: repo + "#main:app", SubPath: "other"}, engine.KindUsage, "conflicts with the sub directory"},
		{"a Dockerfile through a link to outside", Source{Context: repo, Dockerfile: "abs"}, engine.KindContext, "leaves the context through a symbolic link"},
		{"a Dockerfile that climbs out", Source{Context: repo + "#:app", Dockerfile: "../../x"}, engine.KindContext, "leaves the context"},
		{"a sub path that climbs out", Source{Context: repo, SubPath: "app/../.."}, engine.KindContext, "leaves the context"},
		{"too large", Source{Context: repo + "#v1.0", MaxSize: gittest.BigFileSize / 2}, engine.KindContext, "--context-max-size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, clean := isolate(t)
			_, err := Prepare(context.Background(), tc.src, nil)
			if err == nil || !strings.Contains(err.Error(), tc.msg) || engine.KindOf(err) != tc.kind {
				t.Fatalf("got %v (kind %v), want %v containing %q", err, engine.KindOf(err), tc.kind, tc.msg)
			}
			if strings.Contains(err.Error(), "wrong") && strings.Contains(tc.name, "token") {
				t.Errorf("the token is in the error: %v", err)
			}
			clean()
		})
	}
	t.Run("canceled while git waits for the server", func(t *testing.T) {
		_, clean := isolate(t)
		hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
		defer hang.Close()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		_, err := Prepare(ctx, Source{Context: hang.URL + "/app.git"}, nil)
		if err == nil || engine.KindOf(err) != engine.KindCanceled {
			t.Fatalf("got %v (kind %v), want canceled", err, engine.KindOf(err))
		}
		clean()
	})
}

func writeToken(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "token")
	os.WriteFile(p, []byte(s), 0o600)
	return p
}
