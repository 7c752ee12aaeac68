// Package buildctx turns the context the user named (a directory, a
// tarball, a git repository) into a local directory and a Dockerfile
// path, the same way for both engines, without letting either escape the
// context.
package buildctx

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/gitctx"
)

// Source is the build context as the user gave it.
type Source struct {
	// Context is a directory, dir://, tar://, or a git URL.
	Context string
	// SubPath selects a directory inside the context.
	SubPath string
	// Dockerfile is the --dockerfile value; relative paths are looked up
	// in the context first.
	Dockerfile string
	Git        GitOptions
	// MaxSize bounds the bytes a tarball or clone may take.
	MaxSize int64
}

// GitOptions configures git contexts.
type GitOptions struct {
	Branch            string
	Revision          string
	SingleBranch      bool
	RecurseSubmodules bool
	InsecureSkipTLS   bool
	// TokenFile holds a token for HTTPS; TokenUser is the user name sent
	// with it.
	TokenFile string
	TokenUser string
}

// Prepared is a build context ready for an engine.
type Prepared struct {
	// Root is the top of the context: the user's directory, or a clone
	// or extraction kimia made.
	Root string
	// Dir is Root with the sub path applied: what the engine sends.
	Dir string
	// Dockerfile is the Dockerfile's absolute path.
	Dockerfile string
	// Git describes a git context; nil otherwise.
	Git *GitSource

	cleanup []func() error
}

// GitSource is a git context resolved to a commit.
type GitSource struct {
	// URL is the repository URL without credentials.
	URL    string `json:"url"`
	Ref    string `json:"ref,omitempty"`
	Commit string `json:"commit"`
	SubDir string `json:"subdir,omitempty"`
}

// Close removes what Prepare created (clones, extractions).
func (p *Prepared) Close() error {
	var first error
	for i := len(p.cleanup) - 1; i >= 0; i-- {
		if err := p.cleanup[i](); err != nil && first == nil {
			first = err
		}
	}
	p.cleanup = nil
	return first
}

// Prepare resolves src. The caller must Close the result.
func Prepare(ctx context.Context, src Source, log *slog.Logger) (*Prepared, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Prepared{}
	ok := false
	defer func() {
		if !ok {
			p.Close()
		}
	}()
	kind, loc := Classify(src.Context)
	subPath := src.SubPath
	var err error
	switch kind {
	case KindDir:
		err = p.prepareDir(src.Context, loc)
	case KindTar:
		err = p.prepareTar(ctx, loc, src.MaxSize, log)
	case KindGit:
		err = p.prepareGit(ctx, loc, &subPath, src, log)
	}
	if err != nil {
		return nil, err
	}
	if g := src.Git; kind != KindGit && (g.Branch != "" || g.Revision != "" || g.TokenFile != "") {
		log.Warn("git options have no effect: the context is not a git repository", "context", src.Context)
	}
	// Resolve the root once, so that every path handed on is real and
	// comparable with what within returns.
	if p.Root, err = filepath.EvalSymlinks(p.Root); err != nil {
		return nil, engine.Errorf(engine.KindContext, "context %q: %v", src.Context, unwrap(err))
	}

	dir, err := within(p.Root, subPath)
	if err != nil {
		return nil, engine.Errorf(engine.KindContext, "--context-sub-path %q: %v", subPath, err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, engine.Errorf(engine.KindContext, "--context-sub-path %q: no such directory in the context", subPath)
	}
	p.Dir = dir

	p.Dockerfile, err = findDockerfile(p, kind == KindDir, src.Dockerfile)
	if err != nil {
		return nil, err
	}
	ok = true
	return p, nil
}

func (p *Prepared) prepareDir(arg, loc string) error {
	abs, err := filepath.Abs(loc)
	if err != nil {
		return engine.Errorf(engine.KindContext, "context %q: %v", arg, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return engine.Errorf(engine.KindContext, "context %q: %v", arg, unwrap(err))
	}
	if !fi.IsDir() {
		return engine.Errorf(engine.KindContext, "context %q is not a directory (for a tarball write tar://%s)", arg, loc)
	}
	p.Root = abs
	return nil
}

// Kind is the form of a context.
type Kind string

// Context forms.
const (
	KindDir Kind = "directory"
	KindTar Kind = "tarball"
	KindGit Kind = "git"
)

// Classify tells a context's form from how it is written. A path that only
// looks like a URL (/src/my.git.repo) is a directory.
func Classify(s string) (Kind, string) {
	switch {
	case strings.HasPrefix(s, "dir://"):
		return KindDir, strings.TrimPrefix(s, "dir://")
	case strings.HasPrefix(s, "tar://"):
		return KindTar, strings.TrimPrefix(s, "tar://")
	case gitctx.IsRemote(s):
		return KindGit, s
	}
	return KindDir, s
}

// within joins rel to root and checks that the result, with symlinks
// resolved, stays inside root. It returns the resolved path, or the
// joined path when it does not exist (for the caller to report).
func within(root, rel string) (string, error) {
	if rel == "" || rel == "." {
		return root, nil
	}
	if filepath.IsAbs(rel) {
		return "", fmt.Errorf("must be relative to the context")
	}
	joined := filepath.Join(root, rel)
	if !inside(root, joined) {
		return "", fmt.Errorf("leaves the context")
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(joined)
	if err != nil {
		if os.IsNotExist(err) {
			return joined, nil
		}
		return "", unwrap(err)
	}
	if !inside(realRoot, real) {
		return "", fmt.Errorf("leaves the context through a symbolic link")
	}
	return real, nil
}

func inside(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// findDockerfile resolves --dockerfile. For a local context: an
// absolute path as given; a relative one in the context (a symbolic
// link may lead out: the files are the user's own) or else, as Kaniko
// allows, relative to the working directory. For a tarball or git context, a
// relative path from the sub directory that, links resolved, stays in
// the context: there is nothing of the user's outside it.
func findDockerfile(p *Prepared, local bool, df string) (string, error) {
	if df == "" {
		df = "Dockerfile"
	}
	if !local {
		if filepath.IsAbs(df) {
			return "", engine.Errorf(engine.KindContext, "--dockerfile %q: an absolute path cannot name a file of a tarball or git context; give a path relative to the context", df)
		}
		sub, err := filepath.Rel(p.Root, p.Dir)
		if err != nil {
			return "", engine.Wrap(engine.KindInternal, err)
		}
		path, err := within(p.Root, filepath.Join(sub, df))
		if err != nil {
			return "", engine.Errorf(engine.KindContext, "--dockerfile %q: %v", df, err)
		}
		if err := regularFile(path); err != nil {
			return "", engine.Errorf(engine.KindContext, "--dockerfile %q: not found in the context (%v)", df, err)
		}
		return path, nil
	}
	if filepath.IsAbs(df) {
		if err := regularFile(df); err != nil {
			return "", engine.Errorf(engine.KindContext, "--dockerfile %q: %v", df, err)
		}
		return df, nil
	}
	if inCtx := filepath.Join(p.Dir, df); inside(p.Dir, inCtx) && regularFile(inCtx) == nil {
		return inCtx, nil
	}
	if abs, err := filepath.Abs(df); err == nil && regularFile(abs) == nil {
		return abs, nil
	}
	return "", engine.Errorf(engine.KindContext, "--dockerfile %q: not found in the context %q", df, p.Dir)
}

func regularFile(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return unwrap(err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file")
	}
	return nil
}

func unwrap(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
