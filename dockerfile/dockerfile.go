// Package dockerfile reads what kimia needs to know of a Dockerfile
// before an engine builds it, with BuildKit's own parser and ARG
// expansion, the same for both engines: the images the build pulls (for
// registry settings, and to record them in provenance) and its stages.
package dockerfile

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/rapidfort/kimia/engine"
)

// Info is what kimia needs to know about a Dockerfile before an
// engine sees it: the images it pulls (for registry settings that apply
// to every pull registry, and to report base images) and its stages (to
// name a missing --target).
type Info struct {
	// Images are the image references the build may pull (FROM, COPY
	// --from, RUN --mount from=), ARGs expanded, in order, without
	// duplicates. Stage names and scratch are not images.
	Images []string
	// Stages are the stage names, in order ("" for unnamed stages).
	Stages []string
	// HasRun reports whether any stage has a RUN instruction.
	HasRun bool
	// Parsed is false when BuildKit's parser rejected the Dockerfile; the
	// frontend then reports the error with its line.
	Parsed bool
}

// Read parses the Dockerfile at path with BuildKit's own parser.
// A Dockerfile BuildKit cannot parse is not an error here: the frontend
// reports it with its line, so this returns what it could learn.
func Read(path string, buildArgs []engine.KeyValue, platform engine.Platform) (Info, error) {
	dt, err := os.ReadFile(path)
	if err != nil {
		return Info{}, engine.Errorf(engine.KindContext, "reading the Dockerfile %q: %w", path, err)
	}
	return Inspect(dt, buildArgs, platform), nil
}

// Inspect is Read on bytes.
func Inspect(dt []byte, buildArgs []engine.KeyValue, platform engine.Platform) Info {
	var info Info
	res, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		return info
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return info
	}
	info.Parsed = true
	lex := shell.NewLex(res.EscapeToken)

	// Global ARGs: defaults from the Dockerfile, overridden by --build-arg,
	// plus BuildKit's automatic platform args.
	given := map[string]string{}
	for _, kv := range buildArgs {
		given[kv.Key] = kv.Value
	}
	env := platformArgs(platform)
	for _, cmd := range metaArgs {
		for _, a := range cmd.Args {
			v, ok := given[a.Key]
			if !ok && a.Value != nil {
				v, _, _ = lex.ProcessWord(*a.Value, shell.EnvsFromSlice(envSlice(env)))
				ok = true
			}
			if ok {
				env[a.Key] = v
			}
		}
	}
	getter := shell.EnvsFromSlice(envSlice(env))
	expand := func(s string) string {
		out, _, err := lex.ProcessWord(s, getter)
		if err != nil {
			return s
		}
		return out
	}

	names := map[string]bool{}
	seen := map[string]bool{}
	add := func(ref string) {
		ref = expand(ref)
		if ref == "" || strings.EqualFold(ref, "scratch") || names[strings.ToLower(ref)] || seen[ref] {
			return
		}
		if _, err := strconv.Atoi(ref); err == nil {
			return // COPY --from=0 names a stage by index
		}
		if _, err := reference.ParseNormalizedNamed(ref); err != nil {
			return
		}
		seen[ref] = true
		info.Images = append(info.Images, ref)
	}
	for _, st := range stages {
		add(st.BaseName)
		if st.Name != "" {
			names[strings.ToLower(st.Name)] = true
		}
		info.Stages = append(info.Stages, st.Name)
		for _, c := range st.Commands {
			switch c := c.(type) {
			case *instructions.CopyCommand:
				if c.From != "" {
					add(c.From)
				}
			case *instructions.RunCommand:
				info.HasRun = true
				for _, m := range instructions.GetMounts(c) {
					if m.From != "" {
						add(m.From)
					}
				}
			}
		}
	}
	return info
}

// platformArgs are the ARGs BuildKit defines for a build on the host for
// target platform p.
func platformArgs(p engine.Platform) map[string]string {
	host := engine.HostPlatform()
	return map[string]string{
		"BUILDPLATFORM": host.String(), "BUILDOS": host.OS, "BUILDARCH": host.Architecture, "BUILDVARIANT": host.Variant,
		"TARGETPLATFORM": p.String(), "TARGETOS": p.OS, "TARGETARCH": p.Architecture, "TARGETVARIANT": p.Variant,
	}
}

func envSlice(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// HasStage reports whether target names a stage (case-insensitively, as
// BuildKit matches).
func (d Info) HasStage(target string) bool {
	for _, s := range d.Stages {
		if strings.EqualFold(s, target) {
			return true
		}
	}
	return false
}

// StageList names the stages for an error message.
func (d Info) StageList() string {
	var named []string
	for _, s := range d.Stages {
		if s != "" {
			named = append(named, s)
		}
	}
	if len(named) == 0 {
		return "it has no named stages"
	}
	return "its stages: " + strings.Join(named, ", ")
}
