package gitctx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rapidfort/kimia/engine"
)

func TestResolveAuth(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	os.MkdirAll(home, 0o755)
	os.WriteFile(filepath.Join(home, ".git-credentials"), []byte(
		"# comment\n"+
			"https://other:x@elsewhere.example\n"+
			"https://scoped:y@git.example/otherorg\n"+
			"https://stored:z@git.example\n"), 0o600)
	xdg := filepath.Join(dir, "xdg")
	os.MkdirAll(filepath.Join(xdg, "git"), 0o755)
	os.WriteFile(filepath.Join(xdg, "git", "credentials"), []byte("http://xdguser:w@plain.example:8080\n"), 0o600)

	for _, tc := range []struct {
		name, url, tokenFile, tokenUser string
		env                             map[string]string
		user, pass, from                string
	}{
		{name: "a token file with the default user", url: "https://git.example/org/repo.git", tokenFile: tokenFile,
			user: DefaultTokenUser, pass: "file-token", from: "--git-token-file"},
		{name: "a token file with --git-token-user", url: "https://git.example/org/repo.git", tokenFile: tokenFile, tokenUser: "bot",
			user: "bot", pass: "file-token", from: "--git-token-file"},
		{name: "the token file wins over the environment", url: "https://git.example/r.git", tokenFile: tokenFile,
			env: map[string]string{EnvToken: "env-token", EnvUsername: "u", EnvPassword: "p"}, user: "u", pass: "file-token", from: "--git-token-file"},
		{name: "Kaniko's GIT_TOKEN", url: "https://git.example/r.git", env: map[string]string{EnvToken: "env-token"},
			user: DefaultTokenUser, pass: "env-token", from: EnvToken},
		{name: "Kaniko's GIT_USERNAME and GIT_PASSWORD", url: "https://git.example/r.git", env: map[string]string{EnvUsername: "u", EnvPassword: "p"},
			user: "u", pass: "p", from: "GIT_USERNAME/GIT_PASSWORD"},
		{name: "credentials from the URL", url: "https://a:b@git.example/r.git",
			user: "a", pass: "b", from: "the context URL"},
		{name: "the environment wins over the URL", url: "https://a:b@git.example/r.git", env: map[string]string{EnvToken: "env-token-2"},
			user: DefaultTokenUser, pass: "env-token-2", from: EnvToken},
		{name: "a .git-credentials entry for the host", url: "https://git.example/org/repo.git", env: map[string]string{"HOME": home},
			user: "stored", pass: "z", from: filepath.Join(home, ".git-credentials")},
		{name: "a .git-credentials entry scoped to a path", url: "https://git.example/otherorg/repo.git", env: map[string]string{"HOME": home},
			user: "scoped", pass: "y", from: filepath.Join(home, ".git-credentials")},
		{name: "git's XDG credentials file", url: "http://plain.example:8080/r.git", env: map[string]string{"HOME": home, "XDG_CONFIG_HOME": xdg},
			user: "xdguser", pass: "w", from: filepath.Join(xdg, "git", "credentials")},
		{name: "no entry for the host", url: "https://nowhere.example/r.git", env: map[string]string{"HOME": home}},
		{name: "credential files are not used for ssh", url: "git@git.example:org/r.git", env: map[string]string{"HOME": home}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			a, err := ResolveAuth(r, tc.tokenFile, tc.tokenUser, func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if a.Username != tc.user || a.Password != tc.pass || a.From != tc.from {
				t.Errorf("got %q/%q from %q, want %q/%q from %q", a.Username, a.Password, a.From, tc.user, tc.pass, tc.from)
			}
			if strings.Contains(a.String(), tc.pass) && tc.pass != "" {
				t.Errorf("String() shows the secret: %s", a)
			}
		})
	}
}

func TestResolveAuthErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	twoLines := filepath.Join(dir, "two")
	os.WriteFile(twoLines, []byte("secret-one\nsecret-two\n"), 0o600)
	r, _ := Parse("https://git.example/r.git")
	for _, tc := range []struct{ name, file, msg string }{
		{"a missing token file", filepath.Join(dir, "nope"), "no such file"},
		{"an empty token file", empty, "is empty"},
		{"a token file of two lines", twoLines, "more than one line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ResolveAuth(r, tc.file, "", func(string) string { return "" })
			if err == nil || !strings.Contains(err.Error(), tc.msg) || engine.KindOf(err) != engine.KindAuth {
				t.Fatalf("got %v, want an auth error containing %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), "secret-") {
				t.Errorf("the error shows the file's content: %v", err)
			}
		})
	}
}

func TestSecretsIncludeALoneTokenUser(t *testing.T) {
	a := Auth{Username: "ghp_abc"}
	if s := a.secrets(); len(s) != 1 || s[0] != "ghp_abc" {
		t.Errorf("secrets() = %q", s)
	}
	a = Auth{Username: "bot", Password: "pw"}
	if s := a.secrets(); len(s) != 1 || s[0] != "pw" {
		t.Errorf("secrets() = %q", s)
	}
}

func TestChildEnvDropsCredentialsAndRepositoryOverrides(t *testing.T) {
	env := childEnv([]string{"PATH=/bin", "GIT_TOKEN=t", "GIT_PASSWORD=p", "GIT_DIR=/x", "KIMIA_GIT_CRED_PASSWORD=old", "GIT_ASKPASS=/usr/bin/ask", "HOME=/h"}, "EXTRA=1")
	got := strings.Join(env, "\n")
	for _, bad := range []string{"GIT_TOKEN=", "GIT_PASSWORD=", "GIT_DIR=", "KIMIA_GIT_CRED_PASSWORD=old", "/usr/bin/ask"} {
		if strings.Contains(got, bad) {
			t.Errorf("child environment keeps %q:\n%s", bad, got)
		}
	}
	for _, want := range []string{"PATH=/bin", "HOME=/h", "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "EXTRA=1"} {
		if !strings.Contains(got, want) {
			t.Errorf("child environment lacks %q", want)
		}
	}
}
