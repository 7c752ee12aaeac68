// Package gitctx fetches a git repository at one commit into a local
// directory to serve as a build context. It drives the git CLI, which
// speaks every transport users have (https, git, ssh), shallow-fetches
// exactly what a build needs, and keeps credentials out of URLs, argv,
// logs and the checked-out tree.
package gitctx

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/rapidfort/kimia/engine"
)

// Remote is a git context as the user wrote it, taken apart.
type Remote struct {
	// URL is what git fetches from. It never carries credentials.
	URL string
	// Ref is the branch, tag or full ref from the fragment; empty means
	// the remote's default branch.
	Ref string
	// Commit is a full commit id: Kaniko's second fragment
	// (url#ref#commit), or a fragment that is itself a commit id.
	Commit string
	// SubDir is BuildKit's url#ref:subdir.
	SubDir string
	// User and Password came from the URL's user info
	// (https://user:token@host/...). They are kept out of URL and handed
	// to git through the credential helper only.
	User     string
	Password string
}

// IsRemote tells whether s is written as a git URL: a scheme git
// understands, git+scheme, or scp-like git@host:path. Anything else,
// including paths that merely contain ".git", is not.
func IsRemote(s string) bool {
	for _, p := range []string{"https://", "http://", "git://", "ssh://", "git+https://", "git+http://", "git+ssh://", "git@"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

var (
	commitRE  = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
	abbrevRE  = regexp.MustCompile(`^[0-9a-f]{4,63}$`)
	scpLikeRE = regexp.MustCompile(`^([A-Za-z0-9._~-]+@)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):([^/].*|/.+)$`)
)

// IsCommit tells whether s is a full commit id (SHA-1 or SHA-256).
func IsCommit(s string) bool { return commitRE.MatchString(s) }

// Parse takes a git context apart. Fragments follow both Kaniko
// (url#refs/heads/branch#commit) and BuildKit (url#ref:subdir).
func Parse(s string) (*Remote, error) {
	raw := s
	s = strings.TrimPrefix(s, "git+")
	base, frag, hasFrag := strings.Cut(s, "#")
	r := &Remote{}
	if hasFrag {
		if err := r.parseFragment(frag); err != nil {
			return nil, engine.Errorf(engine.KindUsage, "context %q: %v", Redact(raw), err)
		}
	}
	if err := r.parseBase(base); err != nil {
		return nil, engine.Errorf(engine.KindUsage, "context %q: %v", Redact(raw), err)
	}
	return r, nil
}

func (r *Remote) parseFragment(frag string) error {
	parts := strings.Split(frag, "#")
	if len(parts) > 2 {
		return fmt.Errorf("too many '#' fragments (want #REF, #REF:SUBDIR or #REF#COMMIT)")
	}
	ref, sub, _ := strings.Cut(parts[0], ":")
	if ref != "" {
		if err := checkRef(ref); err != nil {
			return err
		}
		if IsCommit(ref) {
			r.Commit = ref
		} else {
			r.Ref = ref
		}
	}
	if sub != "" {
		clean := path.Clean(sub)
		if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return fmt.Errorf("sub directory %q leaves the repository", sub)
		}
		if clean != "." {
			r.SubDir = clean
		}
	}
	if len(parts) == 2 {
		c := parts[1]
		if !IsCommit(c) {
			return fmt.Errorf("%q after the second '#' is not a full commit id", c)
		}
		if r.Commit != "" && r.Commit != c {
			return fmt.Errorf("two different commits, %s and %s", r.Commit, c)
		}
		r.Commit = c
	}
	return nil
}

// checkRef keeps refs that git would read as options or that
// check-ref-format refuses out of every git command line.
func checkRef(ref string) error {
	switch {
	case strings.HasPrefix(ref, "-"):
		return fmt.Errorf("ref %q may not start with '-'", ref)
	case strings.Contains(ref, ".."), strings.ContainsAny(ref, " ~^?*[\\\x7f"),
		strings.HasSuffix(ref, "/"), strings.HasSuffix(ref, ".lock"), strings.Contains(ref, "@{"):
		return fmt.Errorf("%q is not a valid git ref", ref)
	}
	for _, c := range ref {
		if c < 0x20 {
			return fmt.Errorf("%q is not a valid git ref", ref)
		}
	}
	return nil
}

func (r *Remote) parseBase(base string) error {
	if !strings.Contains(base, "://") {
		m := scpLikeRE.FindStringSubmatch(base)
		if m == nil {
			return fmt.Errorf("not a git URL (want https://, git://, ssh:// or git@host:path)")
		}
		r.URL = base
		return nil
	}
	u, err := url.Parse(base)
	if err != nil {
		// url.Error repeats the whole URL, which may hold a password.
		return fmt.Errorf("not a valid URL")
	}
	switch u.Scheme {
	case "https", "http", "git", "ssh":
	default:
		return fmt.Errorf("unsupported scheme %q (want https, http, git or ssh)", u.Scheme)
	}
	if u.Host == "" || strings.HasPrefix(u.Host, "-") {
		return fmt.Errorf("no host")
	}
	if u.Path == "" || u.Path == "/" {
		return fmt.Errorf("no repository path")
	}
	if u.RawQuery != "" {
		return fmt.Errorf("query strings are not supported; give the ref and sub directory as #REF:SUBDIR")
	}
	lower := strings.ToLower(u.Path)
	if (u.Scheme == "https" || u.Scheme == "http") &&
		(strings.HasSuffix(lower, ".tar.gz") || strings.HasSuffix(lower, ".tgz") || strings.HasSuffix(lower, ".tar")) {
		return fmt.Errorf("remote tarballs are not supported; download it and use --context=tar://FILE")
	}
	if u.User != nil {
		if u.Scheme == "https" || u.Scheme == "http" {
			r.User = u.User.Username()
			r.Password, _ = u.User.Password()
			u.User = nil
		} else if _, hasPw := u.User.Password(); hasPw {
			// ssh and git:// cannot use a password from the URL; keep the
			// user name only.
			u.User = url.User(u.User.Username())
		}
	}
	u.Fragment = ""
	r.URL = u.String()
	return nil
}

// Redact removes the password (or lone user name, which is often a
// token) from a URL-like string, for messages.
func Redact(s string) string {
	base, frag, hasFrag := strings.Cut(s, "#")
	scheme, rest, ok := strings.Cut(base, "://")
	if !ok {
		return s
	}
	hostEnd := strings.IndexAny(rest, "/?")
	if hostEnd < 0 {
		hostEnd = len(rest)
	}
	at := strings.LastIndex(rest[:hostEnd], "@")
	if at < 0 || strings.HasSuffix(scheme, "ssh") && !strings.Contains(rest[:at], ":") {
		return s
	}
	out := scheme + "://" + "***@" + rest[at+1:]
	if hasFrag {
		out += "#" + frag
	}
	return out
}

// scheme returns the transport scheme; "ssh" for scp-like URLs.
func (r *Remote) scheme() string {
	if i := strings.Index(r.URL, "://"); i > 0 {
		return r.URL[:i]
	}
	return "ssh"
}

// host returns host[:port] of an URL remote, as git's credential
// protocol names it.
func (r *Remote) host() string {
	u, err := url.Parse(r.URL)
	if err != nil {
		return ""
	}
	return u.Host
}
