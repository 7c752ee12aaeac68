package buildctx

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path"

	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/gitctx"
)

// prepareGit fetches a git context into a temporary directory. The URL's
// sub directory (url#ref:dir) becomes the sub path; giving a different
// one with --context-sub-path as well is an error.
func (p *Prepared) prepareGit(ctx context.Context, loc string, subPath *string, src Source, log *slog.Logger) error {
	r, err := gitctx.Parse(loc)
	if err != nil {
		return err
	}
	if r.SubDir != "" {
		if *subPath != "" && *subPath != r.SubDir {
			return engine.Errorf(engine.KindUsage, "--context-sub-path %q conflicts with the sub directory %q in the context URL; give it once", *subPath, r.SubDir)
		}
		*subPath = r.SubDir
	}
	auth, err := gitctx.ResolveAuth(r, src.Git.TokenFile, src.Git.TokenUser, os.Getenv)
	if err != nil {
		return err
	}
	if src.Git.SingleBranch {
		log.Debug("--git single-branch=true: kimia always fetches only the ref it builds")
	}
	dir, err := os.MkdirTemp("", "kimia-git-")
	if err != nil {
		return engine.Wrap(engine.KindEnvironment, fmt.Errorf("creating a temporary directory: %w", err))
	}
	p.cleanup = append(p.cleanup, func() error { return removeAll(dir) })
	log.Info("fetching git context", "url", r.URL, "ref", firstNonEmpty(src.Git.Revision, src.Git.Branch, r.Commit, r.Ref), "auth", auth.String())
	co, err := gitctx.Fetch(ctx, r, dir, gitctx.Options{
		Branch:            src.Git.Branch,
		Revision:          src.Git.Revision,
		RecurseSubmodules: src.Git.RecurseSubmodules,
		InsecureSkipTLS:   src.Git.InsecureSkipTLS,
		Auth:              auth,
		MaxSize:           src.MaxSize,
		Log:               log,
	})
	if err != nil {
		return err
	}
	p.Root = co.Dir
	sub := *subPath
	if sub != "" {
		sub = path.Clean(sub)
	}
	p.Git = &GitSource{URL: co.URL, Ref: co.Ref, Commit: co.Commit, SubDir: sub}
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
