package gitctx

import (
	"strings"
	"testing"

	"github.com/rapidfort/kimia/engine"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Remote
	}{
		{"https URL", "https://github.com/org/repo.git",
			Remote{URL: "https://github.com/org/repo.git"}},
		{"https URL with a branch", "https://github.com/org/repo.git#main",
			Remote{URL: "https://github.com/org/repo.git", Ref: "main"}},
		{"BuildKit's ref and sub directory", "https://github.com/org/repo.git#v1.2:docker/app",
			Remote{URL: "https://github.com/org/repo.git", Ref: "v1.2", SubDir: "docker/app"}},
		{"sub directory alone", "https://github.com/org/repo.git#:docker",
			Remote{URL: "https://github.com/org/repo.git", SubDir: "docker"}},
		{"sub directory is cleaned", "https://github.com/org/repo.git#main:./a//b/",
			Remote{URL: "https://github.com/org/repo.git", Ref: "main", SubDir: "a/b"}},
		{"Kaniko's ref and commit", "git://github.com/org/repo.git#refs/heads/dev#" + sha,
			Remote{URL: "git://github.com/org/repo.git", Ref: "refs/heads/dev", Commit: sha}},
		{"a fragment that is a commit id", "https://host/repo.git#" + sha,
			Remote{URL: "https://host/repo.git", Commit: sha}},
		{"scp-like ssh", "git@github.com:org/repo.git",
			Remote{URL: "git@github.com:org/repo.git"}},
		{"scp-like ssh with ref and sub directory", "git@github.com:org/repo.git#dev:app",
			Remote{URL: "git@github.com:org/repo.git", Ref: "dev", SubDir: "app"}},
		{"ssh URL with a port", "ssh://git@host:2222/org/repo.git#dev",
			Remote{URL: "ssh://git@host:2222/org/repo.git", Ref: "dev"}},
		{"git+https", "git+https://host/org/repo.git",
			Remote{URL: "https://host/org/repo.git"}},
		{"credentials leave the URL", "https://bob:s3cret@host/org/repo.git#main",
			Remote{URL: "https://host/org/repo.git", Ref: "main", User: "bob", Password: "s3cret"}},
		{"a lone token as user leaves the URL", "https://ghp_tok@host/org/repo.git",
			Remote{URL: "https://host/org/repo.git", User: "ghp_tok"}},
		{"an ssh password is dropped, the user kept", "ssh://git:pw@host/repo.git",
			Remote{URL: "ssh://git@host/repo.git"}},
		{"plain http", "http://127.0.0.1:8080/repo.git",
			Remote{URL: "http://127.0.0.1:8080/repo.git"}},
		{"a repository without .git", "https://host/org/repo",
			Remote{URL: "https://host/org/repo"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if *got != tc.want {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tc.in, *got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, msg string
	}{
		{"a second fragment that is not a commit", "git://host/repo.git#main#abc", "not a full commit id"},
		{"three fragments", "git://host/repo.git#a#b#c", "too many"},
		{"a ref that git would read as an option", "https://host/repo.git#--upload-pack=x", "may not start with '-'"},
		{"a ref with ..", "https://host/repo.git#a..b", "not a valid git ref"},
		{"a sub directory that climbs out", "https://host/repo.git#main:../etc", "leaves the repository"},
		{"an absolute sub directory", "https://host/repo.git#main:/etc", "leaves the repository"},
		{"an unsupported scheme", "git+ftp://host/repo.git", "unsupported scheme"},
		{"no host", "https:///repo.git", "no host"},
		{"no path", "https://host", "no repository path"},
		{"a remote tarball", "https://host/files/ctx.tar.gz", "remote tarballs are not supported"},
		{"a query string", "https://host/repo.git?ref=main", "query strings are not supported"},
		{"a host that git would read as an option", "ssh://-oProxyCommand=x/repo.git", "no host"},
		{"two different commits", "https://host/repo.git#" + sha + "#" + strings.Repeat("f", 40), "two different commits"},
		{"not a URL at all", "git@", "not a git URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.in)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want an error containing %q", tc.in, tc.msg)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Parse(%q): %v, want it to contain %q", tc.in, err, tc.msg)
			}
			if k := engine.KindOf(err); k != engine.KindUsage {
				t.Errorf("Parse(%q): kind %v, want %v", tc.in, k, engine.KindUsage)
			}
		})
	}
}

func TestParseErrorsHideThePassword(t *testing.T) {
	_, err := Parse("https://bob:hunter2@host/repo.git#a..b")
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestIsRemote(t *testing.T) {
	for in, want := range map[string]bool{
		"https://github.com/org/repo.git": true,
		"git://host/repo.git":             true,
		"git@github.com:org/repo.git":     true,
		"ssh://git@host/repo.git":         true,
		"git+ssh://git@host/repo.git":     true,
		"/src/my.git.repo":                false,
		"./repo.git":                      false,
		"repo.git":                        false,
		"github.com/org/repo.git":         false,
		"tar://ctx.tar.gz":                false,
	} {
		if got := IsRemote(in); got != want {
			t.Errorf("IsRemote(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://bob:pw@host/repo.git#main": "https://***@host/repo.git#main",
		"https://tok@host/repo.git":         "https://***@host/repo.git",
		"https://host/repo.git":             "https://host/repo.git",
		"ssh://git@host/repo.git":           "ssh://git@host/repo.git",
		"git@host:org/repo.git":             "git@host:org/repo.git",
		"https://host/a@b/repo.git":         "https://host/a@b/repo.git",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
