package gitctx

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rapidfort/kimia/engine"
)

// Options says what to fetch and how.
type Options struct {
	// Branch is --git-branch (or Kaniko's --git branch=...): a branch or
	// tag name, or a full ref.
	Branch string
	// Revision is --git-revision: a commit id (full or abbreviated), a
	// tag or any ref.
	Revision string
	// RecurseSubmodules checks out submodules, recursively.
	RecurseSubmodules bool
	// InsecureSkipTLS disables certificate verification for https.
	InsecureSkipTLS bool
	// Auth holds credentials; see ResolveAuth.
	Auth Auth
	// MaxSize bounds the bytes the fetch and checkout may take on disk;
	// 0 means no bound.
	MaxSize int64
	// Getenv reads the environment (os.Getenv when nil); Environ is the
	// base environment of git (os.Environ() when nil).
	Getenv  func(string) string
	Environ []string
	Log     *slog.Logger
}

// Checkout is a repository checked out at one commit.
type Checkout struct {
	// Dir is the checked-out tree, without any .git metadata.
	Dir string
	// URL is the remote fetched from, without credentials.
	URL string
	// Ref is the full ref that was resolved (refs/heads/main), empty when
	// only a commit was asked for.
	Ref string
	// Commit is the commit checked out.
	Commit string
}

// want is what the user asked for, after combining URL and flags.
type want struct {
	ref    string // as given: "main", "v1", "refs/heads/x"; "" = default branch
	commit string // full id
	abbrev string // abbreviated id, resolved after fetching history
}

func resolveWant(r *Remote, o Options) (want, error) {
	w := want{ref: r.Ref, commit: r.Commit}
	if b := o.Branch; b != "" {
		if err := checkRef(b); err != nil {
			return w, engine.Errorf(engine.KindUsage, "--git-branch: %v", err)
		}
		if w.ref != "" && w.ref != b {
			return w, engine.Errorf(engine.KindUsage, "--git-branch %q conflicts with the ref %q in the context URL", b, w.ref)
		}
		w.ref = b
	}
	if rev := o.Revision; rev != "" {
		if err := checkRef(rev); err != nil {
			return w, engine.Errorf(engine.KindUsage, "--git-revision: %v", err)
		}
		switch {
		case IsCommit(rev):
			if w.commit != "" && w.commit != rev {
				return w, engine.Errorf(engine.KindUsage, "--git-revision %q conflicts with the commit %q in the context URL", rev, w.commit)
			}
			w.commit = rev
		case w.commit != "":
			return w, engine.Errorf(engine.KindUsage, "--git-revision %q conflicts with the commit %q in the context URL", rev, w.commit)
		case abbrevRE.MatchString(rev):
			// A short commit id, or (without a branch) perhaps a ref named
			// like one; decided once the remote's refs are known.
			w.abbrev = rev
		case w.ref != "" && w.ref != rev:
			return w, engine.Errorf(engine.KindUsage, "--git-revision %q conflicts with the ref %q (from --git-branch or the context URL)", rev, w.ref)
		default:
			w.ref = rev
		}
	}
	return w, nil
}

// Fetch fetches r into dir/src, checks out the wanted commit and returns
// it. dir must be an empty directory that the caller removes; Fetch also
// keeps other files there (a copy of the SSH key) outside the tree.
// Only what the build needs is transferred: one ref or commit at depth
// one where the server allows, full history only to find an abbreviated
// commit or where the server refuses shallow fetches.
func Fetch(ctx context.Context, r *Remote, dir string, o Options) (*Checkout, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Environ == nil {
		o.Environ = os.Environ()
	}
	w, err := resolveWant(r, o)
	if err != nil {
		return nil, err
	}
	r = withPullMethod(r, o.Getenv(EnvPullMethod))

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if o.MaxSize > 0 {
		stop := watchSize(ctx, dir, o.MaxSize, cancel)
		defer stop()
	}

	g, err := newGit(r, dir, o)
	if err != nil {
		return nil, err
	}
	f := &fetcher{r: r, w: w, o: o, g: g, src: filepath.Join(dir, "src")}
	co, err := f.fetch(ctx)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			if errors.Is(cause, errTooLarge) {
				return nil, engine.Errorf(engine.KindContext, "fetching %q: the clone exceeds --context-max-size (%s); raise the limit or fetch less", r.URL, formatSize(o.MaxSize))
			}
			return nil, engine.Wrap(engine.KindCanceled, fmt.Errorf("fetching %q: %w", r.URL, cause))
		}
		return nil, err
	}
	return co, nil
}

// withPullMethod applies Kaniko's GIT_PULL_METHOD: Kaniko always fetched
// git:// URLs over https (or http); kimia speaks the git protocol unless
// the variable asks for Kaniko's behaviour.
func withPullMethod(r *Remote, m string) *Remote {
	if (m != "https" && m != "http") || !strings.HasPrefix(r.URL, "git://") {
		return r
	}
	c := *r
	c.URL = m + "://" + strings.TrimPrefix(r.URL, "git://")
	return &c
}

func newGit(r *Remote, dir string, o Options) (*gitCmd, error) {
	a := o.Auth
	config := []string{
		"core.askPass=",
		"core.hooksPath=/dev/null",
		"core.symlinks=true",
		"advice.detachedHead=false",
		"init.defaultBranch=kimia",
		"gc.auto=0",
		"maintenance.auto=false",
		"fetch.recurseSubmodules=false",
		"protocol.version=2",
	}
	var extra []string
	if a.Username != "" || a.Password != "" {
		// The empty value drops the user's helpers, so that no "store"
		// helper writes kimia's token anywhere.
		config = append(config, "credential.helper=", "credential.helper="+credentialHelper)
		extra = append(extra, a.helperEnv(r)...)
	}
	if o.InsecureSkipTLS {
		config = append(config, "http.sslVerify=false")
	}
	if o.Getenv("GIT_SSH_COMMAND") == "" && o.Getenv("GIT_SSH") == "" {
		key := ""
		if a.SSHKeyFile != "" {
			var err error
			if key, err = copyKey(a.SSHKeyFile, filepath.Join(dir, "ssh")); err != nil {
				return nil, err
			}
		}
		extra = append(extra, "GIT_SSH_COMMAND="+a.sshCommand(key))
	}
	return &gitCmd{
		env:     childEnv(o.Environ, extra...),
		config:  config,
		secrets: a.secrets(),
		log:     o.Log,
	}, nil
}

func copyKey(src, dir string) (string, error) {
	b, err := os.ReadFile(src)
	if err != nil {
		return "", engine.Errorf(engine.KindAuth, "reading $%s %q: %v", EnvSSHKey, src, unwrapPath(err))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", engine.Wrap(engine.KindEnvironment, err)
	}
	dst := filepath.Join(dir, "key")
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		return "", engine.Wrap(engine.KindEnvironment, fmt.Errorf("copying the ssh key: %w", err))
	}
	return dst, nil
}

type fetcher struct {
	r   *Remote
	w   want
	o   Options
	g   *gitCmd
	src string
}

func (f *fetcher) fetch(ctx context.Context) (*Checkout, error) {
	if _, err := f.g.with(filepath.Dir(f.src)).run(ctx, "init", "--quiet", "--template=", "--", f.src); err != nil {
		return nil, f.fail(err, "creating a repository")
	}
	f.g = f.g.with(f.src)
	if _, err := f.g.run(ctx, "remote", "add", "origin", f.r.URL); err != nil {
		return nil, f.fail(err, "configuring the remote")
	}

	co := &Checkout{URL: f.r.URL, Dir: f.src}
	var err error
	switch {
	case f.w.commit != "":
		co.Commit = f.w.commit
		if f.w.ref != "" {
			if co.Ref, _, err = f.lsRemote(ctx, f.w.ref); err != nil {
				return nil, err
			}
		}
		err = f.fetchCommit(ctx, co.Commit, co.Ref)
	case f.w.abbrev != "":
		co.Ref, co.Commit, err = f.fetchAbbrev(ctx, f.w.abbrev)
	default:
		co.Ref, _, err = f.lsRemote(ctx, f.w.ref)
		if err == nil {
			co.Commit, err = f.fetchRef(ctx, co.Ref)
		}
	}
	if err != nil {
		return nil, err
	}
	f.o.Log.Info("fetched git context", "url", co.URL, "ref", co.Ref, "commit", co.Commit)

	if _, err := f.g.run(ctx, "checkout", "--quiet", "--force", "--detach", co.Commit, "--"); err != nil {
		return nil, f.fail(err, "checking out "+co.Commit)
	}
	if f.o.RecurseSubmodules && exists(filepath.Join(f.src, ".gitmodules")) {
		if err := f.submodules(ctx); err != nil {
			return nil, err
		}
	}
	// The watcher samples; this measures the clone with its objects once
	// git is done.
	if max := f.o.MaxSize; max > 0 {
		if n, _ := dirSize(filepath.Dir(f.src)); n > max {
			return nil, engine.Errorf(engine.KindContext, "fetching %q: the clone takes %s, more than --context-max-size (%s); raise the limit or fetch less", f.r.URL, formatSize(n), formatSize(max))
		}
	}
	if err := removeGitDirs(f.src); err != nil {
		return nil, engine.Wrap(engine.KindEnvironment, fmt.Errorf("removing git metadata from the checkout: %w", err))
	}
	return co, nil
}

// lsRemote resolves ref on the remote to a full ref name and the commit
// it points to (for a tag, the tagged commit). An empty ref is the
// remote's default branch.
func (f *fetcher) lsRemote(ctx context.Context, ref string) (string, string, error) {
	pattern := ref
	if ref == "" {
		pattern = "HEAD"
	}
	out, err := f.g.run(ctx, "ls-remote", "--symref", "origin", "--", pattern)
	if err != nil {
		return "", "", f.fail(err, "listing refs")
	}
	refs := map[string]string{}
	symHead := ""
	for _, line := range strings.Split(out, "\n") {
		a, b, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		if target, isSym := strings.CutPrefix(a, "ref: "); isSym {
			if b == "HEAD" {
				symHead = target
			}
			continue
		}
		refs[b] = a
	}
	peeled := func(name string) string {
		if c, ok := refs[name+"^{}"]; ok {
			return c
		}
		return refs[name]
	}
	if ref == "" {
		if symHead != "" {
			return symHead, peeled(symHead), nil
		}
		if c, ok := refs["HEAD"]; ok {
			return "HEAD", c, nil
		}
		return "", "", engine.Errorf(engine.KindContext, "git context %q: the remote has no default branch (HEAD); name a branch with #REF or --git-branch", f.r.URL)
	}
	var candidates []string
	if strings.HasPrefix(ref, "refs/") || ref == "HEAD" {
		candidates = []string{ref}
	} else {
		// Kaniko's order for --git-branch: a branch, then a tag.
		candidates = []string{"refs/heads/" + ref, "refs/tags/" + ref}
	}
	for _, c := range candidates {
		if id, ok := refs[c]; ok && id != "" {
			return c, peeled(c), nil
		}
	}
	return "", "", engine.Errorf(engine.KindContext, "git context %q: ref %q not found on the remote (looked for %s)", f.r.URL, ref, strings.Join(candidates, ", "))
}

// fetchRef fetches one ref at depth one and returns the commit it names.
func (f *fetcher) fetchRef(ctx context.Context, ref string) (string, error) {
	refspec := "+" + ref + ":refs/kimia/want"
	err := f.fetchShallowFirst(ctx, refspec)
	if err != nil {
		if classify(err) == failMissing {
			return "", engine.Errorf(engine.KindContext, "git context %q: ref %q not found on the remote", f.r.URL, ref)
		}
		return "", f.fail(err, "fetching "+ref)
	}
	out, err := f.g.run(ctx, "rev-parse", "--verify", "--end-of-options", "refs/kimia/want^{commit}")
	if err != nil {
		return "", f.fail(err, "resolving "+ref)
	}
	return strings.TrimSpace(out), nil
}

// fetchShallowFirst fetches refspec at depth one, and again with full
// history if the server cannot fetch shallow (git's dumb HTTP protocol).
func (f *fetcher) fetchShallowFirst(ctx context.Context, refspec string) error {
	_, err := f.g.run(ctx, "fetch", "--quiet", "--no-tags", "--no-recurse-submodules", "--depth=1", "origin", "--", refspec)
	if err == nil || ctx.Err() != nil {
		return err
	}
	switch classify(err) {
	case failAuth, failTransport, failMissing:
		return err
	}
	f.o.Log.Debug("shallow fetch refused, fetching full history", "url", f.r.URL, "error", err.Error())
	_, err = f.g.run(ctx, "fetch", "--quiet", "--no-tags", "--no-recurse-submodules", "origin", "--", refspec)
	return err
}

// fetchCommit fetches a commit by id. Servers speaking protocol v2 (or
// configured with uploadpack.allowReachableSHA1InWant) serve it alone;
// otherwise the history of ref (or of every branch and tag) is fetched
// and must contain it.
func (f *fetcher) fetchCommit(ctx context.Context, commit, ref string) error {
	_, err := f.g.run(ctx, "fetch", "--quiet", "--no-tags", "--no-recurse-submodules", "--depth=1", "origin", "--", commit)
	if err == nil {
		return f.verifyCommit(ctx, commit, ref)
	}
	if ctx.Err() != nil {
		return err
	}
	switch classify(err) {
	case failAuth, failTransport:
		return f.fail(err, "fetching commit "+commit)
	}
	f.o.Log.Debug("fetching a commit by id refused, fetching history", "url", f.r.URL, "error", err.Error())
	if err := f.fetchHistory(ctx, ref); err != nil {
		return err
	}
	return f.verifyCommit(ctx, commit, ref)
}

func (f *fetcher) fetchHistory(ctx context.Context, ref string) error {
	specs := []string{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"}
	if ref != "" {
		specs = []string{"+" + ref + ":refs/kimia/want"}
	}
	args := append([]string{"fetch", "--quiet", "--no-tags", "--no-recurse-submodules", "origin", "--"}, specs...)
	if _, err := f.g.run(ctx, args...); err != nil {
		return f.fail(err, "fetching history")
	}
	return nil
}

func (f *fetcher) verifyCommit(ctx context.Context, commit, ref string) error {
	if _, err := f.g.run(ctx, "cat-file", "-e", "--end-of-options", commit+"^{commit}"); err != nil {
		if ctx.Err() != nil {
			return err
		}
		where := "the remote's branches and tags"
		if ref != "" {
			where = ref
		}
		return engine.Errorf(engine.KindContext, "git context %q: commit %s not found in %s", f.r.URL, commit, where)
	}
	return nil
}

// fetchAbbrev resolves rev, which looks like an abbreviated commit id:
// a ref of that name wins; otherwise history is fetched to find the
// commit.
func (f *fetcher) fetchAbbrev(ctx context.Context, rev string) (string, string, error) {
	ref, where := "", "the remote's branches and tags"
	if f.w.ref != "" {
		var err error
		if ref, _, err = f.lsRemote(ctx, f.w.ref); err != nil {
			return "", "", err
		}
		where = ref
	} else if r, _, err := f.lsRemote(ctx, rev); err == nil {
		c, err := f.fetchRef(ctx, r)
		return r, c, err
	} else if engine.KindOf(err) != engine.KindContext {
		return "", "", err
	}
	if err := f.fetchHistory(ctx, ref); err != nil {
		return "", "", err
	}
	out, err := f.g.run(ctx, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		if ctx.Err() != nil {
			return "", "", err
		}
		return "", "", engine.Errorf(engine.KindContext, "git context %q: --git-revision %q is neither a ref nor a commit in %s (or it is ambiguous)", f.r.URL, rev, where)
	}
	return ref, strings.TrimSpace(out), nil
}

func (f *fetcher) submodules(ctx context.Context) error {
	base := []string{"submodule", "update", "--init", "--recursive", "--checkout", "--force"}
	_, err := f.g.run(ctx, append(base, "--depth=1", "--")...)
	if err == nil || ctx.Err() != nil {
		return f.failIf(err, "checking out submodules")
	}
	switch classify(err) {
	case failAuth, failTransport:
		return f.fail(err, "checking out submodules")
	}
	f.o.Log.Debug("shallow submodule fetch refused, fetching history", "error", err.Error())
	_, err = f.g.run(ctx, append(base, "--")...)
	return f.failIf(err, "checking out submodules")
}

func (f *fetcher) failIf(err error, doing string) error {
	if err == nil {
		return nil
	}
	return f.fail(err, doing)
}

// fail gives a git failure its kind and a message that says what to do.
func (f *fetcher) fail(err error, doing string) error {
	if engine.KindOf(err) != engine.KindInternal {
		return err
	}
	var ge *gitError
	if !errors.As(err, &ge) {
		return err // a context cause; Fetch reports it
	}
	url := f.r.URL
	switch classify(err) {
	case failAuth:
		hint := "give a token with --git-token-file (or $GIT_TOKEN, or $GIT_USERNAME and $GIT_PASSWORD)"
		if s := f.r.scheme(); s == "ssh" {
			hint = "give an SSH key with $GIT_SSH_KEY_FILE or an agent with $SSH_AUTH_SOCK, and the server's key with $GIT_SSH_KNOWN_HOSTS"
		} else if f.o.Auth.From != "" {
			hint = "the " + f.o.Auth.String() + " were rejected; check the token and its access to the repository"
		}
		return engine.Errorf(engine.KindAuth, "%s for git context %q: authentication failed (%s): %v", doing, url, hint, ge)
	case failTransport:
		hint := ""
		if strings.HasPrefix(url, "git://") {
			hint = " (Kaniko fetched git:// URLs over https; set GIT_PULL_METHOD=https to do the same)"
		}
		return engine.Errorf(engine.KindContext, "%s for git context %q: cannot reach the server%s: %v", doing, url, hint, ge)
	}
	if s := strings.ToLower(ge.stderr); strings.Contains(s, "repository") && (strings.Contains(s, "not found") || strings.Contains(s, "no such repository")) {
		return engine.Errorf(engine.KindContext, "%s for git context %q: no such repository (check the URL; some servers answer so for private repositories without credentials): %v", doing, url, ge)
	}
	return engine.Errorf(engine.KindContext, "%s for git context %q: %v", doing, url, ge)
}

// removeGitDirs deletes .git directories and files (submodules have
// .git files) so that no repository metadata, remote configuration or
// history becomes part of the build context. git never checks out a
// path named .git, so every one of them is metadata.
func removeGitDirs(root string) error {
	var found []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".git" {
			found = append(found, p)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range found {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}

var errTooLarge = errors.New("context too large")

// watchSize cancels ctx with errTooLarge once dir grows beyond max.
// git has no limit of its own for fetches, so the directory is measured
// while git runs.
func watchSize(ctx context.Context, dir string, max int64, cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if n, _ := dirSize(dir); n > max {
					cancel(errTooLarge)
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

// dirSize sums the sizes of the regular files under dir. Files that
// vanish while it walks (git renames temporary packs) are skipped.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n, err
}

// formatSize prints n bytes in binary units.
func formatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
