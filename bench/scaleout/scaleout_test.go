// Package scaleoutbench measures kimia scaled out the way a cluster runs
// it: builds in separate pods, each starting from empty engine state,
// sharing one --cache-repo. See docs/performance.md.
//
//	go test ./bench/scaleout/ -run '^$' -bench . -benchtime 1x
package scaleoutbench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rapidfort/kimia/internal/testenv"
	"github.com/rapidfort/kimia/publish"
)

// dockerfile is one service of a monorepo: a shared dependency stage (a
// stand-in for a package install: 10 s of waiting, as on a package
// mirror, and a 32 MB layer) and the service's own small step.
func dockerfile(base, svc string) string {
	return "FROM " + base + " AS deps\n" +
		"RUN sleep 10 && dd if=/dev/urandom of=/deps.bin bs=1M count=32 2>/dev/null\n" +
		"FROM deps\nCOPY " + svc + ".txt /srv/" + svc + ".txt\nRUN cat /srv/" + svc + ".txt > /srv/name\n"
}

// pod is one build with state of its own: HOME, TMPDIR and (unless a
// --cache-dir is given) engine state that nothing else sees.
type pod struct {
	b        *testing.B
	bin      string
	reg      *testenv.Registry
	ctx      string
	cacheDir string
}

type podResult struct {
	wall          time.Duration
	steps, cached int
}

func (p pod) build(svc, dest string, extra ...string) podResult {
	p.b.Helper()
	dir, err := os.MkdirTemp("", "kimia-scaleout-pod-")
	if err != nil {
		p.b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for _, d := range []string{"home", "tmp"} {
		os.MkdirAll(filepath.Join(dir, d), 0o700)
	}
	md := filepath.Join(dir, "metadata.json")
	args := append([]string{"--context=" + p.ctx, "--dockerfile=" + svc + ".Dockerfile",
		"--destination=" + dest, "--metadata-file=" + md, "--progress=quiet", "--verbosity=error"}, p.reg.Flags()...)
	args = append(args, extra...)
	if p.cacheDir != "" {
		args = append(args, "--cache-dir="+p.cacheDir)
	}
	cmd := exec.Command(p.bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(dir, "home"), "TMPDIR="+filepath.Join(dir, "tmp"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		p.b.Fatalf("%s %s: %v\n%s", p.bin, strings.Join(args, " "), err, stderr.String())
	}
	r := podResult{wall: time.Since(start)}
	raw, err := os.ReadFile(md)
	if err != nil {
		p.b.Fatalf("reading --metadata-file: %v", err)
	}
	var m publish.Metadata
	if err := json.Unmarshal(raw, &m); err != nil {
		p.b.Fatalf("decoding --metadata-file: %v", err)
	}
	if m.Cache != nil {
		r.steps, r.cached = m.Cache.Steps, m.Cache.Cached
	}
	return r
}

func repoRoot(b *testing.B) string {
	b.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	return root
}

// BenchmarkScaleOut builds service-b in a fresh pod three ways, after
// service-a was built in another fresh pod that exported the shared
// registry cache:
//
//   - alone: no cache at all (what every pod costs without sharing);
//   - cache-repo: --cache-repo only, state empty (the scale-out case);
//   - cache-dir: --cache-dir kept from pod a's build, as a persistent
//     volume reattached to the next pod would be.
//
// It fails when the registry cache serves nothing to the second pod.
func BenchmarkScaleOut(b *testing.B) {
	binDir := os.Getenv("KIMIA_BIN_DIR")
	if binDir == "" {
		binDir = filepath.Join(repoRoot(b), "bin")
	}
	reg := testenv.StartRegistry(b, testenv.RegistryOptions{})
	if _, err := testenv.PushBusybox(reg, testenv.DevCache()); err != nil {
		b.Fatalf("base image: %v", err)
	}
	base := reg.Ref("library/busybox:latest")
	bins := []string{"kimia", "kimia-bud"}
	if s := os.Getenv("KIMIA_BENCH_BINARIES"); s != "" {
		bins = strings.Split(s, ",")
	}
	for _, bin := range bins {
		b.Run(bin, func(b *testing.B) {
			path := filepath.Join(binDir, bin)
			if _, err := os.Stat(path); err != nil {
				b.Fatalf("%s: run make build (or set KIMIA_BIN_DIR): %v", path, err)
			}
			var alone, first, shared, pv time.Duration
			var cachedShared, stepsShared, cachedPV int
			for i := 0; i < b.N; i++ {
				ctx := b.TempDir()
				for _, svc := range []string{"a", "b"} {
					os.WriteFile(filepath.Join(ctx, svc+".Dockerfile"), []byte(dockerfile(base, svc)), 0o644)
					os.WriteFile(filepath.Join(ctx, svc+".txt"), []byte(fmt.Sprintf("service %s, run %d %d\n", svc, i, time.Now().UnixNano())), 0o644)
				}
				repo := reg.Ref(fmt.Sprintf("scaleout/%s-%d", bin, i))
				cacheRepo := "--cache-repo=" + repo + "/build-cache"
				p := pod{b: b, bin: path, reg: reg, ctx: ctx}
				alone += p.build("b", repo+"/b:alone").wall
				pvDir := b.TempDir()
				pa := p
				pa.cacheDir = pvDir
				first += pa.build("a", repo+"/a:latest", "--cache", cacheRepo).wall
				r := p.build("b", repo+"/b:shared", "--cache", cacheRepo)
				shared += r.wall
				cachedShared, stepsShared = r.cached, r.steps
				if r.cached == 0 {
					b.Fatalf("the second pod reused nothing from %s", cacheRepo)
				}
				r = pa.build("b", repo+"/b:pv", "--cache")
				pv += r.wall
				cachedPV = r.cached
			}
			n := float64(b.N)
			b.ReportMetric(alone.Seconds()/n, "alone-s")
			b.ReportMetric(first.Seconds()/n, "first-pod-s")
			b.ReportMetric(shared.Seconds()/n, "cache-repo-s")
			b.ReportMetric(pv.Seconds()/n, "cache-dir-s")
			b.ReportMetric(shared.Seconds()/alone.Seconds(), "cache-repo/alone")
			b.ReportMetric(pv.Seconds()/alone.Seconds(), "cache-dir/alone")
			b.ReportMetric(float64(cachedShared), "cache-repo-cached-steps")
			b.ReportMetric(float64(stepsShared), "steps")
			b.ReportMetric(float64(cachedPV), "cache-dir-cached-steps")
		})
	}
}
