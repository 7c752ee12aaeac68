package gitctx

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/rapidfort/kimia/engine"
)

// Auth holds what kimia hands git to authenticate. Values are secrets:
// they travel to git only through the environment of git's own process
// tree, read back by a credential helper, never in argv or a URL.
type Auth struct {
	// Username and Password are HTTP(S) basic credentials.
	Username string
	Password string
	// From says where the credentials came from, for messages
	// ("--git-token-file", "GIT_TOKEN", ...). Never a value.
	From string
	// SSHKeyFile is a private key for ssh:// and git@ URLs.
	SSHKeyFile string
	// SSHKnownHosts is a known_hosts file to verify the server with.
	SSHKnownHosts string
}

// DefaultTokenUser is the user name sent with a token when none is
// given. GitLab requires it for OAuth tokens; GitHub, Gitea and
// Bitbucket accept any name with a token.
const DefaultTokenUser = "oauth2"

// Environment variables kimia reads for git credentials. The first three
// are Kaniko's.
const (
	EnvUsername      = "GIT_USERNAME"
	EnvPassword      = "GIT_PASSWORD"
	EnvToken         = "GIT_TOKEN"
	EnvSSHKey        = "GIT_SSH_KEY_FILE"
	EnvSSHKnownHosts = "GIT_SSH_KNOWN_HOSTS"
	// EnvPullMethod is Kaniko's: "https" or "http" makes git:// URLs
	// fetch over that protocol instead of the git protocol.
	EnvPullMethod = "GIT_PULL_METHOD"
)

// ResolveAuth picks the credentials for r, first found wins:
// --git-token-file (with --git-token-user), $GIT_TOKEN, $GIT_USERNAME
// and $GIT_PASSWORD, user info in the URL, then a git-credentials file
// ($HOME/.git-credentials, $XDG_CONFIG_HOME/git/credentials) entry for
// the host. SSH settings come from $GIT_SSH_KEY_FILE and
// $GIT_SSH_KNOWN_HOSTS. getenv is os.Getenv outside tests.
func ResolveAuth(r *Remote, tokenFile, tokenUser string, getenv func(string) string) (Auth, error) {
	a := Auth{SSHKeyFile: getenv(EnvSSHKey), SSHKnownHosts: getenv(EnvSSHKnownHosts)}
	user := func(def string) string {
		if tokenUser != "" {
			return tokenUser
		}
		if u := getenv(EnvUsername); u != "" {
			return u
		}
		return def
	}
	switch {
	case tokenFile != "":
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return a, engine.Errorf(engine.KindAuth, "reading --git-token-file %q: %v", tokenFile, unwrapPath(err))
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return a, engine.Errorf(engine.KindAuth, "--git-token-file %q is empty", tokenFile)
		}
		if strings.ContainsAny(tok, "\n\r\x00") {
			return a, engine.Errorf(engine.KindAuth, "--git-token-file %q holds more than one line; it must hold only the token", tokenFile)
		}
		a.Username, a.Password, a.From = user(DefaultTokenUser), tok, "--git-token-file"
	case getenv(EnvToken) != "":
		a.Username, a.Password, a.From = user(DefaultTokenUser), getenv(EnvToken), EnvToken
	case getenv(EnvUsername) != "" || getenv(EnvPassword) != "":
		a.Username, a.Password, a.From = getenv(EnvUsername), getenv(EnvPassword), EnvUsername+"/"+EnvPassword
	case r.User != "" || r.Password != "":
		a.Username, a.Password, a.From = r.User, r.Password, "the context URL"
	default:
		if u, p, file := fromCredentialFiles(r, getenv); file != "" {
			a.Username, a.Password, a.From = u, p, file
		}
	}
	for _, v := range []string{a.Username, a.Password} {
		if strings.ContainsAny(v, "\n\r\x00") {
			return a, engine.Errorf(engine.KindAuth, "git credentials from %s contain a line break", a.From)
		}
	}
	return a, nil
}

// fromCredentialFiles looks r's host up in git's credential-store files,
// read-only: git's own "store" helper would erase an entry the server
// rejects, and a mounted secret must not change.
func fromCredentialFiles(r *Remote, getenv func(string) string) (user, pass, file string) {
	scheme := r.scheme()
	if scheme != "https" && scheme != "http" {
		return "", "", ""
	}
	var files []string
	if h := getenv("HOME"); h != "" {
		files = append(files, filepath.Join(h, ".git-credentials"))
	}
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		files = append(files, filepath.Join(x, "git", "credentials"))
	} else if h := getenv("HOME"); h != "" {
		files = append(files, filepath.Join(h, ".config", "git", "credentials"))
	}
	want, err := url.Parse(r.URL)
	if err != nil {
		return "", "", ""
	}
	for _, f := range files {
		if u, p, ok := lookupCredentials(f, want); ok {
			return u, p, f
		}
	}
	return "", "", ""
}

// lookupCredentials finds the first line of a git-credentials file
// (scheme://user:password@host[/path]) for want's scheme and host whose
// path, if it has one, prefixes want's.
func lookupCredentials(file string, want *url.URL) (string, string, bool) {
	f, err := os.Open(file)
	if err != nil {
		return "", "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, err := url.Parse(line)
		if err != nil || u.User == nil || u.Scheme != want.Scheme || !strings.EqualFold(u.Host, want.Host) {
			continue
		}
		if p := strings.Trim(u.Path, "/"); p != "" && !strings.HasPrefix(strings.Trim(want.Path, "/")+"/", p+"/") {
			continue
		}
		pw, _ := u.User.Password()
		return u.User.Username(), pw, true
	}
	return "", "", false
}

// secrets lists the values that must never show in output.
func (a Auth) secrets() []string {
	var s []string
	if a.Password != "" {
		s = append(s, a.Password)
	}
	// A token alone in the user name (https://TOKEN@host) is a secret too.
	if a.Password == "" && a.Username != "" {
		s = append(s, a.Username)
	}
	return s
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// credentialHelper is a git credential helper (git runs it through sh)
// that answers "get" for one protocol and host from variables in its
// environment, and ignores store/erase. printf is a shell builtin, so
// the secret never reaches any argv.
const credentialHelper = `!f() { test "$1" = get || exit 0; p= h=; ` +
	`while IFS= read -r l; do case "$l" in protocol=*) p="${l#protocol=}";; host=*) h="${l#host=}";; esac; done; ` +
	`if [ "$p" = "$KIMIA_GIT_CRED_PROTOCOL" ] && [ "$h" = "$KIMIA_GIT_CRED_HOST" ]; then ` +
	`printf 'username=%s\npassword=%s\n' "$KIMIA_GIT_CRED_USERNAME" "$KIMIA_GIT_CRED_PASSWORD"; fi; }; f`

// helperEnv is the environment the credential helper reads.
func (a Auth) helperEnv(r *Remote) []string {
	return []string{
		"KIMIA_GIT_CRED_PROTOCOL=" + r.scheme(),
		"KIMIA_GIT_CRED_HOST=" + r.host(),
		"KIMIA_GIT_CRED_USERNAME=" + a.Username,
		"KIMIA_GIT_CRED_PASSWORD=" + a.Password,
	}
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sshCommand is GIT_SSH_COMMAND for ssh remotes: never prompt, and use
// the given key and known_hosts file. keyCopy is the key copied with
// mode 0600, which ssh insists on (Kubernetes mounts secrets 0644).
func (a Auth) sshCommand(keyCopy string) string {
	parts := []string{sshProgram, "-o", "BatchMode=yes"}
	if keyCopy != "" {
		parts = append(parts, "-i", shellQuote(keyCopy), "-o", "IdentitiesOnly=yes")
	}
	if a.SSHKnownHosts != "" {
		parts = append(parts, "-o", shellQuote("UserKnownHostsFile="+a.SSHKnownHosts), "-o", "StrictHostKeyChecking=yes")
	}
	return strings.Join(parts, " ")
}

// sshProgram is the ssh client; tests replace it.
var sshProgram = "ssh"

func (a Auth) String() string {
	if a.From == "" {
		return "no credentials"
	}
	return fmt.Sprintf("credentials from %s", a.From)
}
