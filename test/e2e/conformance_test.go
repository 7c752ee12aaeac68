//go:build e2e

package e2e

// Conformance: the same Dockerfiles built by kimia (BuildKit) and
// kimia-bud (Buildah) must give the same image. Each case is built by
// both binaries, pushed, read back from the registry and compared:
// every file (path, type, mode, owner, content hash, link target) and
// the image config. A difference is either fixed in an engine or listed
// in the case's known differences, with its reason in
// docs/engine-differences.md; a known difference that no longer shows
// fails too, so that the document stays true.
//
// TestConformanceKanikoCorpus does the same for Kaniko's integration
// Dockerfiles, read in place from the directory $KIMIA_CONFORMANCE_CORPUS
// names (a data set outside the project; see its README).

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// conformanceWorkers returns one sandbox per binary, or skips with the
// reason when the run does not include both.
func conformanceWorkers(t *testing.T) (kimia, bud *Sandbox) {
	t.Helper()
	if env == nil {
		t.Fatal("e2e environment not set up: run through go test -tags e2e ./test/e2e (TestMain)")
	}
	var k, b *Worker
	for _, w := range env.Workers {
		switch w.Name {
		case "kimia":
			k = w
		case "kimia-bud":
			b = w
		}
	}
	if k == nil || b == nil {
		t.Skipf("conformance compares kimia with kimia-bud; KIMIA_E2E_WORKERS=%q does not run both as root", os.Getenv("KIMIA_E2E_WORKERS"))
	}
	return newSandbox(t, k), newSandbox(t, b)
}

// built is one binary's image.
type built struct {
	files  map[string]File
	config *v1.ConfigFile
	layers int
}

func readBuilt(t *testing.T, sb *Sandbox, ref string) built {
	t.Helper()
	img := sb.Registry.Image(t, ref)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return built{files: Files(t, img), config: Config(t, img), layers: len(layers)}
}

// imageDiff lists how b (kimia-bud) differs from k (kimia), one line per
// difference, in a stable order:
//
//	fs PATH: only in kimia | only in kimia-bud
//	fs PATH: type T vs T | mode M vs M | owner U:G vs U:G | content ... | link L vs L
//	config FIELD: kimia-value vs kimia-bud-value
//	layers: N vs M
func imageDiff(k, b built) []string {
	var out []string
	paths := map[string]bool{}
	for p := range k.files {
		paths[p] = true
	}
	for p := range b.files {
		paths[p] = true
	}
	for p := range paths {
		kf, inK := k.files[p]
		bf, inB := b.files[p]
		switch {
		case !inB:
			out = append(out, fmt.Sprintf("fs %s: only in kimia", p))
			continue
		case !inK:
			out = append(out, fmt.Sprintf("fs %s: only in kimia-bud", p))
			continue
		}
		if kf.Type != bf.Type {
			out = append(out, fmt.Sprintf("fs %s: type %c vs %c", p, kf.Type, bf.Type))
			continue
		}
		if kf.Mode != bf.Mode {
			out = append(out, fmt.Sprintf("fs %s: mode %04o vs %04o", p, kf.Mode, bf.Mode))
		}
		if kf.UID != bf.UID || kf.GID != bf.GID {
			out = append(out, fmt.Sprintf("fs %s: owner %d:%d vs %d:%d", p, kf.UID, kf.GID, bf.UID, bf.GID))
		}
		if kf.SHA256 != bf.SHA256 {
			if len(kf.Content) <= 80 && len(bf.Content) <= 80 && kf.Size <= 80 && bf.Size <= 80 {
				out = append(out, fmt.Sprintf("fs %s: content %q vs %q", p, kf.Content, bf.Content))
			} else {
				out = append(out, fmt.Sprintf("fs %s: content (%d vs %d bytes)", p, kf.Size, bf.Size))
			}
		}
		if kf.Link != bf.Link {
			out = append(out, fmt.Sprintf("fs %s: link %s vs %s", p, kf.Link, bf.Link))
		}
	}
	kc, bc := k.config, b.config
	field := func(name string, kv, bv any) {
		if !sameValue(kv, bv) {
			out = append(out, fmt.Sprintf("config %s: %v vs %v", name, show(kv), show(bv)))
		}
	}
	field("OS", kc.OS, bc.OS)
	field("Architecture", kc.Architecture, bc.Architecture)
	field("Variant", kc.Variant, bc.Variant)
	field("Author", kc.Author, bc.Author)
	c, d := kc.Config, bc.Config
	field("User", c.User, d.User)
	field("Env", c.Env, d.Env)
	field("Entrypoint", c.Entrypoint, d.Entrypoint)
	field("Cmd", c.Cmd, d.Cmd)
	field("WorkingDir", c.WorkingDir, d.WorkingDir)
	field("Labels", c.Labels, d.Labels)
	field("ExposedPorts", c.ExposedPorts, d.ExposedPorts)
	field("Volumes", c.Volumes, d.Volumes)
	field("StopSignal", c.StopSignal, d.StopSignal)
	field("Healthcheck", c.Healthcheck, d.Healthcheck)
	field("Shell", c.Shell, d.Shell)
	field("OnBuild", c.OnBuild, d.OnBuild)
	field("ArgsEscaped", c.ArgsEscaped, d.ArgsEscaped)
	field("History", historyOf(kc), historyOf(bc))
	if k.layers != b.layers {
		out = append(out, fmt.Sprintf("layers: %d vs %d", k.layers, b.layers))
	}
	sort.Strings(out)
	return out
}

// historyOf is an image's history as one comparable line per entry.
func historyOf(c *v1.ConfigFile) []string {
	var out []string
	for _, h := range c.History {
		out = append(out, fmt.Sprintf("%s (%s, empty %v)", h.CreatedBy, h.Comment, h.EmptyLayer))
	}
	return out
}

// sameValue compares config values, null and empty alike.
func sameValue(a, b any) bool {
	empty := func(v any) bool {
		rv := reflect.ValueOf(v)
		switch rv.Kind() {
		case reflect.Slice, reflect.Map:
			return rv.Len() == 0
		case reflect.Ptr:
			return rv.IsNil()
		case reflect.String:
			return rv.Len() == 0
		}
		return false
	}
	if empty(a) && empty(b) {
		return true
	}
	return reflect.DeepEqual(a, b)
}

func show(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Map {
		keys := rv.MapKeys()
		var parts []string
		for _, k := range keys {
			val := rv.MapIndex(k).Interface()
			if _, ok := val.(struct{}); ok {
				parts = append(parts, fmt.Sprint(k.Interface()))
			} else {
				parts = append(parts, fmt.Sprintf("%v=%v", k.Interface(), val))
			}
		}
		sort.Strings(parts)
		return "{" + strings.Join(parts, " ") + "}"
	}
	if rv.Kind() == reflect.Ptr && !rv.IsNil() {
		return fmt.Sprintf("%+v", rv.Elem().Interface())
	}
	return fmt.Sprintf("%q", v)
}

// checkKnown fails on a difference no pattern of known explains, and on a
// pattern that explained nothing.
func checkKnown(t *testing.T, diffs []string, known []string) {
	t.Helper()
	used := make([]bool, len(known))
	for _, d := range diffs {
		ok := false
		for i, k := range known {
			if regexp.MustCompile("^" + k + "$").MatchString(d) {
				used[i], ok = true, true
			}
		}
		if !ok {
			t.Errorf("kimia and kimia-bud differ: %s", d)
		}
	}
	for i, k := range known {
		if !used[i] {
			t.Errorf("known difference %q no longer shows: update the case and docs/engine-differences.md", k)
		}
	}
}

type conformanceCase struct {
	name string
	// parent, when set, is built once by kimia and pushed; files then
	// gets its reference as base (for ONBUILD triggers).
	parent func(base string) map[string]string
	files  func(base string) map[string]string
	// links are hard links made in the context after files: new name,
	// existing name.
	links map[string]string
	args  []string
	// budArgs are given to kimia-bud only (--buildah-opt).
	budArgs []string
	// known are regular expressions of expected differences (see
	// imageDiff), each explained in docs/engine-differences.md.
	known []string
	// digestDiffers says why the two images cannot have one digest
	// although nothing of imageDiff differs; empty when they must.
	digestDiffers string
}

func conformanceCases() []conformanceCase {
	return []conformanceCase{
		{
			name: "multi-stage with ARG scoping",
			files: func(base string) map[string]string {
				return map[string]string{"Dockerfile": "ARG BASE=" + base + "\nARG GLOBAL=g1\n" +
					"FROM ${BASE} AS build\nARG GLOBAL\nARG LOCAL=l1\n" +
					"RUN echo \"global=$GLOBAL local=$LOCAL\" > /args && mkdir -p /out/sub && echo built > /out/sub/a\n" +
					"FROM build AS second\nRUN echo \"inherited=[$LOCAL] global=[$GLOBAL]\" > /second\n" +
					"FROM ${BASE}\nARG LOCAL=final\n" +
					"RUN echo \"local=[$LOCAL] global=[$GLOBAL]\" > /scoped\n" +
					"COPY --from=build /args /out/ /result/\nCOPY --from=second /second /result/second\nCOPY --from=0 /out/sub/a /result/by-index\n"}
			},
			args: []string{"--build-arg=GLOBAL=from-cli"},
		},
		{
			name: "COPY --chown and --chmod",
			files: func(base string) map[string]string {
				return map[string]string{
					"Dockerfile": "FROM " + base + "\n" +
						"COPY --chown=1000:1000 a.txt /owned/a.txt\n" +
						"COPY --chmod=0640 a.txt /modes/a.txt\n" +
						"COPY --chown=2000:3000 --chmod=0700 dir/ /both/\n" +
						"COPY --chown=nobody:nogroup a.txt /named.txt\n" +
						"COPY --chmod=0755 dir /dirmode/\n",
					"a.txt":       "a\n",
					"dir/b.txt":   "b\n",
					"dir/sub/c.t": "c\n",
				}
			},
			known: []string{
				// BuildKit also applies --chmod to the directories the
				// copy creates (moby/buildkit#5943); Buildah leaves them
				// 0755, as Docker's classic builder did.
				`fs modes: mode 0640 vs 0755`,
				`fs both: mode 0700 vs 0755`,
			},
		},
		{
			name: "symlinks from the context and from RUN",
			files: func(base string) map[string]string {
				return map[string]string{
					"Dockerfile": "FROM " + base + "\nCOPY . /ctx/\nCOPY rel-link /copied-link\n" +
						"RUN ln -s /etc/passwd /abs-link && ln -s nowhere /dangling && mkdir /d && ln -s ../etc /d/up\n",
					"target.txt":      "target\n",
					"rel-link":        "->target.txt",
					"sub/dir-link":    "->../sub2",
					"sub2/inside.txt": "inside\n",
				}
			},
		},
		{
			name: "whiteouts after deletes",
			files: func(base string) map[string]string {
				return map[string]string{"Dockerfile": "FROM " + base + "\n" +
					"RUN mkdir -p /x/keep /x/gone && echo 1 > /x/keep/f && echo 2 > /x/gone/f && echo 3 > /x/file\n" +
					"RUN rm -rf /x/gone /x/file /etc/group /var/lib/dpkg\n" +
					"RUN rm -rf /x && mkdir /x && echo new > /x/only\n" +
					"RUN rm -rf /x/only\n"}
			},
		},
		{
			name: "heredocs",
			files: func(base string) map[string]string {
				return map[string]string{"Dockerfile": "FROM " + base + "\n" +
					"RUN <<EOF\necho one > /heredoc1\necho two >> /heredoc1\nEOF\n" +
					"COPY <<EOF /heredoc2\ncontent\nEOF\n" +
					"RUN <<EOF sh\nset -e\necho \"$((1 + 2))\" > /heredoc3\nEOF\n"}
			},
		},
		{
			name: "metadata: VOLUME, HEALTHCHECK, SHELL, STOPSIGNAL, EXPOSE, USER, ENTRYPOINT",
			files: func(base string) map[string]string {
				return map[string]string{"Dockerfile": "FROM " + base + "\n" +
					"RUN mkdir -p /data && echo before > /data/before\nVOLUME /data /vol\n" +
					"RUN echo after > /data/after\n" +
					"HEALTHCHECK --interval=5s --timeout=3s --retries=2 CMD [\"/bin/true\"]\n" +
					"SHELL [\"/bin/sh\", \"-ec\"]\nRUN echo shell > /shell\n" +
					"STOPSIGNAL SIGQUIT\nEXPOSE 80 443/tcp 53/udp\n" +
					"ENV A=1 B=\"two words\"\nLABEL l1=v1 \"l 2\"=v2\n" +
					"USER 1000:1000\nENTRYPOINT [\"/bin/sh\", \"-c\"]\nCMD [\"echo hi\"]\n"}
			},
			args: []string{"--label=from.cli=yes"},
			known: []string{
				// Buildah creates a VOLUME's directory at the next RUN;
				// BuildKit never does.
				`fs vol: only in kimia-bud`,
			},
		},
		{
			name: "WORKDIR",
			files: func(base string) map[string]string {
				return map[string]string{"Dockerfile": "FROM " + base + "\nWORKDIR /w1\nUSER 1000\nWORKDIR /w2\nWORKDIR sub\nRUN pwd > /tmp/pwd\n"}
			},
			known: []string{
				// BuildKit creates each WORKDIR at once, as a layer;
				// Buildah only when a later step needs it, in no layer
				// of its own.
				`fs w1: only in kimia`,
				`layers: 5 vs 2`,
				`config History: .*"WORKDIR /w1 \(buildkit.dockerfile.v0, empty false\)".* vs .*"WORKDIR /w1 \(buildkit.dockerfile.v0, empty true\)".*`,
			},
		},
		{
			name: "ONBUILD triggers",
			files: func(base string) map[string]string {
				return map[string]string{"Dockerfile": "FROM " + base + "\nONBUILD RUN echo triggered > /triggered\nONBUILD COPY a.txt /a.txt\nRUN echo base > /base\n",
					"a.txt": "a\n"}
			},
		},
		{
			name: "ONBUILD triggers fire in the child",
			parent: func(base string) map[string]string {
				return map[string]string{"Dockerfile": "FROM " + base + "\nONBUILD ARG WHO=child\nONBUILD RUN echo \"triggered by $WHO\" > /triggered\nONBUILD COPY a.txt /from-child-context.txt\n"}
			},
			files: func(parent string) map[string]string {
				return map[string]string{"Dockerfile": "FROM " + parent + "\nONBUILD RUN echo grandchild\nRUN echo own > /own\n", "a.txt": "child's a\n"}
			},
		},
		{
			name: "COPY --chmod with symbolic modes, on files and directories, with --chown and heredocs",
			files: func(base string) map[string]string {
				return map[string]string{"Dockerfile": "FROM " + base + " AS base\n" +
					"RUN mkdir -p /in/dirs/d1/dir /in/tree/sub && echo f > /in/file && chmod 666 /in/file && " +
					"echo x > /in/exe && chmod 750 /in/exe && chmod 124 /in/dirs/d1/dir && " +
					"echo a > /in/tree/a && chmod 640 /in/tree/a && echo b > /in/tree/b && chmod 750 /in/tree/b && " +
					"chmod 750 /in/tree/sub && echo c > /in/tree/sub/c && chmod 604 /in/tree/sub/c\n" +
					"FROM " + base + "\n" +
					"COPY --from=base --chmod=go-w /in/file /f1\n" +
					"COPY --from=base --chmod=u=rw,g=r,o=r /in/file /f2\n" +
					"COPY --from=base --chmod=a+X /in/file /f3\n" +
					"COPY --from=base --chmod=a+X /in/exe /f4\n" +
					"COPY --from=base --chmod=u+x,go-rwx /in/file /f5\n" +
					"COPY --from=base --chmod=g=u /in/exe /f6\n" +
					"COPY --from=base --chmod=u=rwX,go=rX /in/exe /f7\n" +
					"COPY --from=base --chmod=go-w /in/dirs/d1 /go-w/\n" +
					"COPY --from=base --chmod=a+X /in/dirs/d1 /ax/\n" +
					"COPY --from=base --chmod=u=rwX,go=rX /in/tree /t/\n" +
					"RUN mkdir -m 0700 /exist\n" +
					"COPY --from=base --chmod=a+rX /in/tree /exist/\n" +
					"COPY --from=base --chown=1000:1000 --chmod=go-w /in/tree /own/\n" +
					"COPY --chmod=a+x <<EOF /h1\necho hi\nEOF\n" +
					"COPY --chmod=u=rwx,go= a.txt /h2\n",
					"a.txt": "a\n"}
			},
		},
		{
			name:  "heredoc RUN scripts with a shebang, and their neighbours",
			files: heredocCase,
		},
		{
			name:    "heredoc RUN scripts with a shebang under chroot isolation",
			files:   heredocCase,
			budArgs: []string{"--buildah-opt=isolation=chroot"},
		},
		{
			name: "SHELL with shell-form and exec-form CMD and ENTRYPOINT",
			files: func(base string) map[string]string {
				return map[string]string{"Dockerfile": "FROM " + base + " AS ash\nSHELL [\"/bin/ash\", \"-c\"]\n" +
					"FROM ash AS shell-form\nENTRYPOINT exec /bin/echo entry\nCMD hello world\n" +
					"FROM ash AS exec-form\nENTRYPOINT [\"/bin/echo\"]\nCMD [\"hi\"]\n" +
					"FROM " + base + "\nCMD echo before\nSHELL [\"/bin/ash\", \"-eo\", \"pipefail\", \"-c\"]\n" +
					"RUN echo $0 > /shell\nENTRYPOINT echo a | cat\n" +
					"COPY --from=shell-form /etc/passwd /p1\nCOPY --from=exec-form /etc/passwd /p2\n"}
			},
		},
		{
			name: "SHELL with shell-form CMD and ENTRYPOINT, as a target",
			files: func(base string) map[string]string {
				return map[string]string{"Dockerfile": "FROM " + base + "\nSHELL [\"/bin/ash\", \"-c\"]\nENTRYPOINT exec /bin/echo entry\nCMD hello world\n"}
			},
		},
		{
			name: "hard links across steps, after mv, through COPY --from and COPY --link, and from the context",
			files: func(base string) map[string]string {
				same := func(a, b, out string) string {
					return "[ \"$(stat -c %i " + a + ")\" = \"$(stat -c %i " + b + ")\" ] && echo linked > " + out
				}
				return map[string]string{"Dockerfile": "FROM " + base + " AS src\n" +
					"RUN echo one > /a && mkdir /d && echo f > /d/f && echo k > /keep\n" +
					"RUN ln /a /b && ln /d/f /d/g && ln /keep /keep2 && ln /keep /keep3\n" +
					"RUN " + same("/a", "/b", "/linked-across-steps") + "\n" +
					"RUN echo two > /new && mv /new /keep2 && " + same("/keep", "/keep3", "/linked-after-mv") + "\n" +
					"FROM " + base + "\n" +
					"COPY --from=src /linked-across-steps /linked-after-mv /keep2 /keep3 /\n" +
					"COPY --from=src /d /d2\n" +
					"RUN " + same("/d2/f", "/d2/g", "/linked-copy-from") + "\n" +
					"COPY --link --from=src /d /d3\n" +
					"RUN " + same("/d3/f", "/d3/g", "/linked-copy-link") + "\n" +
					"COPY ctx/ /ctx/\n" +
					"RUN " + same("/ctx/x", "/ctx/y", "/linked-context") + "\n",
					"ctx/x": "x\n"}
			},
			links: map[string]string{"ctx/y": "ctx/x"},
		},
		{
			name: ".dockerignore with negation",
			files: func(base string) map[string]string {
				return map[string]string{
					"Dockerfile":    "FROM " + base + "\nCOPY . /ctx/\n",
					".dockerignore": "*.log\n!keep.log\nsecret/\ndocs/**/*.md\n!docs/README.md\n",
					"a.log":         "a\n", "keep.log": "keep\n", "secret/key": "k\n",
					"docs/README.md": "r\n", "docs/x/y.md": "y\n", "docs/x/z.txt": "z\n",
				}
			},
		},
		{
			// Layers BuildKit writes in walk order (lodash/ before
			// lodash-es and lodash.merge), a file copied again unchanged
			// (no entry in the second layer), a directory whose only
			// change is its time. (Not a rewrite that keeps size and
			// time: BuildKit misses it, see docs/engine-differences.md.)
			name: "layer contents: walk order, unchanged copies, directory times",
			files: func(base string) map[string]string {
				return map[string]string{
					"Dockerfile": "FROM " + base + "\nCOPY package.json /app/\nCOPY . /app/\n" +
						"RUN touch -d @0 /app/node_modules && mkdir /app/node_modules/lodash/more\n",
					"package.json":                       "{\"x\":1}\n",
					"node_modules/lodash/index.js":       "l\n",
					"node_modules/lodash-es/index.js":    "e\n",
					"node_modules/lodash.merge/index.js": "m\n",
					"node_modules/lodash/fp/a.js":        "a\n",
				}
			},
		},
	}
}

// heredocCase holds BuildKit's heredoc forms: scripts with a shebang
// (run by the interpreter they name, from a file holding exactly the
// heredoc's text), <<- (leading tabs removed), quoted delimiters (no
// expansion), several heredocs on one line, and heredoc COPY sources.
func heredocCase(base string) map[string]string {
	return map[string]string{"Dockerfile": "FROM " + base + "\nWORKDIR /\nRUN mkdir /dest\n" +
		"RUN <<EOF\n#!/usr/bin/awk -f\nBEGIN {\n\tprint \"hello\" >> \"/dest/out1\"\n\tprint \"world\" >> \"/dest/out1\"\n}\nEOF\n" +
		"RUN <<-EOF\n\t#!/usr/bin/awk -f\n\tBEGIN {\n\t\tprint \"tabs\" > \"/dest/out2\"\n\t}\nEOF\n" +
		"RUN <<EOF\n#!/bin/sh\nhead -n 1 \"$0\" > /dest/firstline\nwc -c < \"$0\" > /dest/size\nEOF\n" +
		"ENV FOO=bar\n" +
		"RUN <<'EOF'\necho \"$FOO\" > /dest/quoted-run\nEOF\n" +
		"RUN cat <<'EOF' > /dest/quoted-cat\n$FOO\nEOF\n" +
		"RUN cat <<EOF > /dest/unquoted-cat\n$FOO\nEOF\n" +
		"RUN cat <<EOF1 | tr a-z A-Z > /dest/c1 && cat <<EOF2 > /dest/c2\nfirst\nEOF1\nsecond\nEOF2\n" +
		"COPY <<X <<Y /dest/multi/\nx\nX\ny\nY\n" +
		"COPY <<-EOF /dest/indented\n\tindented\nEOF\n"}
}

func TestConformance(t *testing.T) {
	k, b := conformanceWorkers(t)
	var same, total int
	for _, tc := range conformanceCases() {
		t.Run(tc.name, func(t *testing.T) {
			k, b := k.For(t), b.For(t)
			base := k.Busybox()
			if tc.parent != nil {
				_, base, _ = buildAndPush(t, k, "conformance-parent", k.Context(tc.parent(base)), "--reproducible")
			}
			context := func(sb *Sandbox) string {
				dir := sb.Context(tc.files(base))
				for link, target := range tc.links {
					if err := os.Link(filepath.Join(dir, target), filepath.Join(dir, link)); err != nil {
						t.Fatal(err)
					}
				}
				return dir
			}
			// --reproducible: so that the images can have one digest.
			args := append([]string{"--reproducible"}, tc.args...)
			_, kref, kmd := buildAndPush(t, k, "conformance", context(k), args...)
			_, bref, bmd := buildAndPush(t, b, "conformance", context(b), append(args, tc.budArgs...)...)
			diffs := imageDiff(readBuilt(t, k, kref), readBuilt(t, b, bref))
			checkKnown(t, diffs, tc.known)
			t.Logf("%d known differences", len(diffs))
			if len(diffs) > 0 {
				return
			}
			total++
			switch {
			case kmd.Digest == bmd.Digest && tc.digestDiffers != "":
				t.Errorf("kimia and kimia-bud now give one digest (%s): drop the case's digestDiffers (%s) and update docs/engine-differences.md", kmd.Digest, tc.digestDiffers)
			case kmd.Digest != bmd.Digest && tc.digestDiffers == "":
				t.Errorf("equal files and configs, yet kimia gave %s and kimia-bud %s", kmd.Digest, bmd.Digest)
			case kmd.Digest == bmd.Digest:
				same++
			}
		})
	}
	t.Logf("one digest for both binaries in %d of the %d cases whose files and configs agree", same, total)
}

// kanikoArgs are the build arguments and flags Kaniko's suite gives each
// Dockerfile (its argsMap), by file name.
var kanikoArgs = map[string][]string{
	"Dockerfile_test_run":        {"--build-arg=file=/file"},
	"Dockerfile_test_run_new":    {"--build-arg=file=/file"},
	"Dockerfile_test_run_redo":   {"--build-arg=file=/file"},
	"Dockerfile_test_workdir":    {"--build-arg=workdir=/arg/workdir"},
	"Dockerfile_test_arg_secret": {"--build-arg=SSH_PRIVATE_KEY", "--build-arg=SSH_PUBLIC_KEY=Pµbl1cK€Y"},
	"Dockerfile_test_onbuild":    {"--build-arg=file=/tmp/onbuild"},
	"Dockerfile_test_scratch":    {"--build-arg=image=scratch", "--build-arg=hello=hello-value", "--build-arg=file=context/foo", "--build-arg=file3=context/b*"},
	"Dockerfile_test_multistage": {"--build-arg=file=/foo2"},
	"Dockerfile_test_target":     {"--target=second"},
}

// kanikoKnown are the expected differences per corpus file (see
// imageDiff; "build: ..." when a binary cannot build the file at all),
// each explained in docs/engine-differences.md.
var kanikoKnown = map[string][]string{
	// RUN date > /date: a new time in every build.
	"Dockerfile_test_cache":      {`fs date: content .*`},
	"Dockerfile_test_cache_oci":  {`fs date: content .*`},
	"Dockerfile_test_multistage": {`fs date: content .*`},
	// COPY nomatch* context/foo hello: BuildKit copies the one match as
	// the file hello, Buildah treats several sources as a directory.
	"Dockerfile_test_copy":              {`fs hello/foo: only in kimia-bud`, `fs hello: type 0 vs 5`},
	"Dockerfile_test_copy_reproducible": {`fs hello/foo: only in kimia-bud`, `fs hello: type 0 vs 5`},
	// ADD/COPY --chmod on a directory: BuildKit also changes the copied
	// directory itself; Buildah only what is inside.
	"Dockerfile_test_copyadd_chmod": {`fs dir777: mode 0777 vs 0755`},
	// A stage named with capitals used in FROM (moby/buildkit#2003).
	"Dockerfile_test_from_multistage_capital": {`build: kimia fails`},
	"Dockerfile_test_issue_519":               {`build: kimia fails`},
	// VOLUME /foo1 then RUN echo > /foo1/hello: BuildKit does not create
	// a volume's directory, so the RUN fails.
	"Dockerfile_test_volume_2": {`build: kimia fails`},
	// ARG NAME (no value) in a stage FROM a stage whose ARG NAME="$NAME-dev"
	// referred to itself: BuildKit keeps the parent stage's value,
	// Buildah evaluates the parent's ARG again, without its own parent's.
	"Dockerfile_test_multistage_args_issue_1911": {
		`fs C.txt: content "custom:: base-dev\\ncustom:: \\n" vs "custom:: -dev\\ncustom:: \\n"`,
		`fs D.txt: content "custom:: base-dev\\ncustom:: fix\\n" vs "custom:: -dev\\ncustom:: fix\\n"`,
	},
	// ONBUILD WORKDIR: BuildKit's WORKDIR is a layer of its own (and its
	// history entry not empty).
	"Dockerfile_test_onbuild": {`layers: 6 vs 5`, workdirHistory},
	// ARG ${src}=...: Buildah expands the name (file3), BuildKit does not,
	// so $file3 is empty for kimia and COPY $file3 /baz copies the whole
	// context.
	"Dockerfile_test_scratch": {`fs baz/.*: only in kimia`, `fs baz/(bam|bam/bat|bat|baz): only in kimia-bud`},
	// Buildah creates VOLUME directories at the next RUN.
	"Dockerfile_test_volume": {`fs (baz|baz/bat|foo/bar|qux|qux/quux): only in kimia-bud`},
	// BuildKit creates every WORKDIR at once, as a layer, owned by the
	// USER then in effect; Buildah when a step needs it.
	"Dockerfile_test_workdir": {`fs (another|another/new|another/new/dir|another/new/dir/newdir|arg|arg/workdir|new|new/dir): only in kimia`, `layers: 10 vs 4`, workdirHistory},
	"Dockerfile_test_workdir_with_user": {
		`fs workdir/wo?(/[a-z_]+)?: only in kimia`,
		`fs workdir/w: owner 9999:9999 vs 0:0`,
		`layers: 12 vs 2`,
		workdirHistory,
	},
}

// workdirHistory: BuildKit's WORKDIR history entries have a layer,
// kimia-bud's (the same text) none.
const workdirHistory = `config History: .*"WORKDIR [^"]* \(buildkit.dockerfile.v0, empty false\)".* vs .*"WORKDIR [^"]* \(buildkit.dockerfile.v0, empty true\)".*`

// TestConformanceKanikoCorpus builds Kaniko's integration Dockerfiles
// with both binaries and compares the images. The corpus is read where it
// lies ($KIMIA_CONFORMANCE_CORPUS, e.g. ../shared/conformance/kaniko):
// it is a data set, not part of the project. Its base images (busybox,
// debian, onbuild-base) come from the sandbox registry, reached as a
// mirror of Docker Hub.
func TestConformanceKanikoCorpus(t *testing.T) {
	corpus := os.Getenv("KIMIA_CONFORMANCE_CORPUS")
	if corpus == "" {
		t.Skip("set KIMIA_CONFORMANCE_CORPUS to the directory of Kaniko's integration Dockerfiles (../shared/conformance/kaniko) to run them")
	}
	if _, err := os.Stat(filepath.Join(corpus, "dockerfiles")); err != nil {
		t.Fatalf("KIMIA_CONFORMANCE_CORPUS=%s is not Kaniko's corpus: %v", corpus, err)
	}
	k, b := conformanceWorkers(t)
	host := k.Registry.Host
	mirror := []string{"--registry-mirror=" + host, "--insecure-registry=" + host}
	if os.Getenv("KIMIA_CONFORMANCE_NO_DEBIAN") == "" {
		k.Debian()
	}
	// onbuild-base is the first file's image, used by Dockerfile_test_onbuild.
	k.MustKimia(append([]string{"--context=" + corpus, "--dockerfile=dockerfiles/Dockerfile_onbuild_base",
		"--destination=" + host + "/library/onbuild-base:latest"}, mirror...)...)

	type job struct{ name, context, dockerfile string }
	var jobs []job
	names, _ := filepath.Glob(filepath.Join(corpus, "dockerfiles", "*"))
	sort.Strings(names)
	for _, p := range names {
		n := filepath.Base(p)
		if strings.HasSuffix(n, ".dockerignore") {
			continue
		}
		ctx, df := corpus, "dockerfiles/"+n
		if n == "Dockerfile_relative_copy" {
			// Kaniko's TestRelativePaths builds it from context/.
			ctx, df = filepath.Join(corpus, "context"), filepath.Join(corpus, "dockerfiles", n)
		}
		jobs = append(jobs, job{n, ctx, df})
	}
	dirs, _ := filepath.Glob(filepath.Join(corpus, "dockerfiles-with-context", "*"))
	sort.Strings(dirs)
	for _, d := range dirs {
		jobs = append(jobs, job{"with-context/" + filepath.Base(d), d, "Dockerfile"})
	}
	if only := os.Getenv("KIMIA_CONFORMANCE_ONLY"); only != "" {
		var keep []job
		for _, j := range jobs {
			if regexp.MustCompile(only).MatchString(j.name) {
				keep = append(keep, j)
			}
		}
		jobs = keep
	}
	var same, agree int
	var differ []string
	for _, j := range jobs {
		t.Run(j.name, func(t *testing.T) {
			var diffs []string
			refs := map[string]string{}
			for _, sb := range []*Sandbox{k, b} {
				sb.Env = []string{"SSH_PRIVATE_KEY=ThEPriv4t3Key"}
				ref := sb.Registry.Ref(freshRepo(sb, "kaniko") + ":latest")
				// --reproducible: so that the images can have one digest.
				args := append([]string{"--context=" + j.context, "--dockerfile=" + j.dockerfile, "--destination=" + ref, "--reproducible"}, mirror...)
				r := sb.Kimia(append(args, kanikoArgs[j.name]...)...)
				if r.Code != 0 {
					diffs = append(diffs, fmt.Sprintf("build: %s fails", sb.Name))
					t.Logf("%s failed:\n%s", sb.Name, tailOf(r.Stderr, 6))
					continue
				}
				refs[sb.Name] = ref
			}
			if len(refs) == 2 {
				diffs = append(diffs, imageDiff(readBuilt(t, k, refs["kimia"]), readBuilt(t, b, refs["kimia-bud"]))...)
			}
			for _, d := range diffs {
				t.Logf("difference: %s", d)
			}
			checkKnown(t, diffs, kanikoKnown[j.name])
			if len(diffs) > 0 {
				return
			}
			agree++
			kd, bd := served(t, k.Registry, refs["kimia"]), served(t, b.Registry, refs["kimia-bud"])
			why, known := kanikoDigestDiffers[j.name]
			switch {
			case kd == bd && known:
				t.Errorf("kimia and kimia-bud now give one digest (%s): drop %s from kanikoDigestDiffers (%s)", kd, j.name, why)
			case kd != bd && !known:
				t.Errorf("equal files and configs, yet kimia gave %s and kimia-bud %s", kd, bd)
			case kd == bd:
				same++
			default:
				differ = append(differ, j.name)
			}
		})
	}
	t.Logf("%d of %d files: one digest for both binaries; %d more have equal files and configs but not one digest (%v)", same, len(jobs), agree-same, differ)
}

// kanikoDigestDiffers are the corpus files whose images agree file by file
// and in the config, yet cannot have one digest, with the reason.
var kanikoDigestDiffers = map[string]string{
	// busybox has no /etc/hosts: Buildah creates it as a mount target for
	// the RUN, notes /etc as "pulled up" and leaves /etc's own entry out
	// of the layer at commit, though the RUN changed /etc/passwd in it;
	// BuildKit writes /etc as the parent of the change. See
	// docs/engine-differences.md.
	"Dockerfile_test_add_chown_intermediate_dirs":  "Buildah omits /etc, a mount target's parent, from a RUN layer",
	"Dockerfile_test_copy_chown_intermediate_dirs": "Buildah omits /etc, a mount target's parent, from a RUN layer",
}

func tailOf(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
