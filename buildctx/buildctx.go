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
)

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
func Prepare(ctx context.Context, src engine.Source, log *slog.Logger) (*Prepared, error) {
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
	switch kind {
	case KindDir:
		abs, err := filepath.Abs(loc)
		if err != nil {
			return nil, engine.Errorf(engine.KindContext, "context %q: %v", src.Context, err)
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return nil, engine.Errorf(engine.KindContext, "context %q: %v", src.Context, unwrap(err))
		}
		if !fi.IsDir() {
			return nil, engine.Errorf(engine.KindContext, "context %q is not a directory (for a tarball write tar://%s)", src.Context, loc)
		}
		p.Root = abs
	default:
		if err := prepareRemote(ctx, p, kind, loc, &subPath, src, log); err != nil {
			return nil, err
		}
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

// prepareRemote is replaced when tarball and git contexts are supported.
var prepareRemote = func(ctx context.Context, p *Prepared, kind Kind, loc string, subPath *string, src engine.Source, log *slog.Logger) error {
	return engine.Errorf(engine.KindContext, "context %q: %s contexts are not supported by this build of kimia", src.Context, kind)
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
	case strings.HasPrefix(s, "git://"), strings.HasPrefix(s, "ssh://"),
		strings.HasPrefix(s, "git@"), strings.HasPrefix(s, "git+"):
		return KindGit, s
	case strings.HasPrefix(s, "https://"), strings.HasPrefix(s, "http://"):
		return KindGit, s
	}
	return KindDir, s
}

// within joins rel to root and checks that the result, with symlinks
// resolved, stays inside root.
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
			return joined, nil // the caller reports the missing path
		}
		return "", err
	}
	if !inside(realRoot, real) {
		return "", fmt.Errorf("leaves the context through a symbolic link")
	}
	return joined, nil
}

func inside(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// findDockerfile resolves --dockerfile: an absolute path as given; a
// relative one inside the context (it may not leave it), or, for local
// contexts, relative to the working directory as Kaniko allows.
func findDockerfile(p *Prepared, local bool, df string) (string, error) {
	if df == "" {
		df = "Dockerfile"
	}
	if filepath.IsAbs(df) {
		if !local && !inside(p.Root, df) {
			return "", engine.Errorf(engine.KindContext, "--dockerfile %q: an absolute path outside a remote context; give a path relative to the context", df)
		}
		if err := regularFile(df); err != nil {
			return "", engine.Errorf(engine.KindContext, "--dockerfile %q: %v", df, err)
		}
		return df, nil
	}
	inCtx, err := within(p.Dir, df)
	if err != nil {
		if !local {
			return "", engine.Errorf(engine.KindContext, "--dockerfile %q: %v", df, err)
		}
		inCtx = ""
	}
	if inCtx != "" && regularFile(inCtx) == nil {
		return inCtx, nil
	}
	if local {
		if abs, err := filepath.Abs(df); err == nil && regularFile(abs) == nil {
			return abs, nil
		}
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
