// Command buildah benchmarks kimia-bud (Buildah) with each storage driver
// against kimia (BuildKit), in one run, on the same registry and contexts
// as bench/buildkit:
//
//	go run ./bench/buildah -bin bin
//
// Each scenario is timed end to end (process start to image pushed), as a
// user sees it. Then kimia-bud runs each scenario once more with its debug
// log, which times the parts of a build (start and user namespace, store,
// Buildah's build, export to the OCI layout, push), to show where its
// time goes. Both tables go to stdout in Markdown; bench/README.md keeps
// the last ones.
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rapidfort/kimia/test/e2e"
)

var (
	binDir = flag.String("bin", "bin", "directory with kimia, kimia-bud and buildkitd")
	runs   = flag.Int("runs", 1, "runs per cell; the median is reported")
	only   = flag.String("only", "", "run only scenarios whose name contains this")
)

// worker is one way of building.
type worker struct {
	name string
	bin  string
	args []string
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	bin, err := filepath.Abs(*binDir)
	check(err)
	work, err := os.MkdirTemp("", "kimia-bench-buildah-")
	check(err)
	defer os.RemoveAll(work)

	reg, host := startRegistry(work)
	defer reg.Process.Kill()
	cache := e2e.DevCache()
	if _, err := e2e.PushBusybox(&e2e.Registry{Host: host}, cache); err != nil {
		log.Fatalf("pushing the base image: %v", err)
	}
	base := host + "/library/busybox:latest"

	// The contexts of bench/buildkit.
	small := filepath.Join(work, "small")
	writeFiles(small, map[string]string{
		"Dockerfile": "FROM " + base + " AS build\nCOPY app.txt /src/app.txt\nRUN wc -c /src/app.txt > /src/size\n" +
			"FROM " + base + "\nCOPY --from=build /src /app\nCOPY conf.txt /app/conf.txt\n",
		"app.txt":  "app\n",
		"conf.txt": "conf\n",
	})
	big := filepath.Join(work, "big")
	files := map[string]string{"Dockerfile": "FROM " + base + "\nCOPY . /app\n"}
	for i := 0; i < 2000; i++ {
		files[fmt.Sprintf("src/d%02d/f%04d.txt", i%40, i)] = fmt.Sprintf("small file %d\n", i)
	}
	writeFiles(big, files)
	writeRandom(filepath.Join(big, "blob.bin"), 200<<20)

	workers := []worker{
		{"kimia-bud vfs", filepath.Join(bin, "kimia-bud"), []string{"--storage-driver=native"}},
		{"kimia-bud overlay", filepath.Join(bin, "kimia-bud"), []string{"--storage-driver=overlay"}},
		{"kimia", filepath.Join(bin, "kimia"), nil},
	}
	touch := func(id string) {
		os.WriteFile(filepath.Join(small, "conf.txt"), []byte("conf "+id+" "+time.Now().String()+"\n"), 0o644)
	}
	type scenario struct {
		name    string
		ctx     string
		cached  bool // --cache, after an untimed warm-up build on the same state
		prepare func(id string)
	}
	scenarios := []scenario{
		{name: "cold build (tiny 2-stage Dockerfile)", ctx: small},
		{name: "no-change rebuild with cache", ctx: small, cached: true},
		{name: "one COPY'd file changed", ctx: small, cached: true, prepare: touch},
		{name: "2,000 small files + one 200 MB file, cold", ctx: big},
	}
	b := &bench{work: work, host: host}
	times := map[string]map[string]time.Duration{}
	parts := map[string]map[string]breakdown{}
	var names []string
	for _, s := range scenarios {
		if *only != "" && !strings.Contains(s.name, *only) {
			continue
		}
		names = append(names, s.name)
		times[s.name] = map[string]time.Duration{}
		parts[s.name] = map[string]breakdown{}
		for wi, w := range workers {
			var ds []time.Duration
			for i := 0; i < *runs; i++ {
				id := fmt.Sprintf("%d-%d-%d", len(names), wi, i)
				state := filepath.Join(work, "state-"+id)
				if s.cached {
					b.build(w, s.ctx, state, "warm-"+id, true, false)
				}
				if s.prepare != nil {
					s.prepare(id)
				}
				d, _ := b.build(w, s.ctx, state, id, s.cached, false)
				ds = append(ds, d)
				os.RemoveAll(state)
			}
			times[s.name][w.name] = median(ds)
			log.Printf("%s, %s: %.2f s", s.name, w.name, median(ds).Seconds())
			if strings.HasPrefix(w.name, "kimia-bud") {
				id := fmt.Sprintf("%d-%d-debug", len(names), wi)
				state := filepath.Join(work, "state-"+id)
				if s.cached {
					b.build(w, s.ctx, state, "warm-"+id, true, false)
				}
				if s.prepare != nil {
					s.prepare(id)
				}
				_, bd := b.build(w, s.ctx, state, id, s.cached, true)
				parts[s.name][w.name] = bd
				os.RemoveAll(state)
			}
		}
	}

	fmt.Printf("| scenario | kimia-bud vfs | kimia-bud overlay | kimia | vfs / kimia | overlay / kimia | vfs / overlay |\n")
	fmt.Printf("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range names {
		v, o, k := times[n]["kimia-bud vfs"], times[n]["kimia-bud overlay"], times[n]["kimia"]
		fmt.Printf("| %s | %.2f s | %.2f s | %.2f s | %.2f | %.2f | %.2f |\n", n, v.Seconds(), o.Seconds(), k.Seconds(),
			v.Seconds()/k.Seconds(), o.Seconds()/k.Seconds(), v.Seconds()/o.Seconds())
	}
	fmt.Printf("\nWhere kimia-bud's time goes (one more run with its debug log, so a little slower):\n\n")
	fmt.Printf("| scenario | driver | start-up, user namespace, preflight | open store | Buildah build | export to layout | push + outputs | total |\n")
	fmt.Printf("|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range names {
		for _, w := range []string{"kimia-bud vfs", "kimia-bud overlay"} {
			p := parts[n][w]
			fmt.Printf("| %s | %s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f s |\n", n, strings.TrimPrefix(w, "kimia-bud "),
				p.start.Seconds(), p.store.Seconds(), p.build.Seconds(), p.export.Seconds(), p.push.Seconds(), p.total.Seconds())
		}
	}
	fmt.Printf("\n%d run(s) per cell, median; %d CPUs; load average at the end: %s\n", *runs, numCPU(), loadavg())
}

type bench struct {
	work, host string
}

// breakdown is one kimia-bud build taken apart.
type breakdown struct {
	start, store, build, export, push, total time.Duration
}

// build builds and pushes ctx with w; with cache, --cache in state (and
// Kaniko's default registry cache, <destination>/cache). With debug it
// also returns the parts of the build, from kimia-bud's debug log.
func (b *bench) build(w worker, ctx, state, id string, cache, debug bool) (time.Duration, breakdown) {
	repo := strings.ReplaceAll(w.name, " ", "-")
	args := append([]string{"--context=" + ctx, "--destination=" + b.host + "/bench/" + repo + ":" + id,
		"--insecure-registry=" + b.host, "--progress=quiet"}, w.args...)
	if cache {
		args = append(args, "--cache", "--cache-dir="+state)
	}
	if debug {
		args = append(args, "--verbosity=debug", "--log-format=json", "--log-timestamp")
	} else {
		args = append(args, "--verbosity=error")
	}
	cmd := exec.Command(w.bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	total := time.Since(start)
	if err != nil {
		log.Fatalf("%s %s: %v\n%s", w.bin, strings.Join(args, " "), err, lastLines(stderr.String(), 20))
	}
	if !debug {
		return total, breakdown{}
	}
	return total, parseBreakdown(stderr.Bytes(), start, total)
}

// parseBreakdown reads kimia's JSON log: the first record marks the end
// of start-up (the user namespace re-exec included), the engine's
// "phase" records time its parts, and what follows the export is the
// shared push and outputs.
func parseBreakdown(logs []byte, start time.Time, total time.Duration) breakdown {
	var bd breakdown
	bd.total = total
	var first time.Time
	var phases time.Duration
	sc := bufio.NewScanner(bytes.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var rec struct {
			Time    time.Time `json:"time"`
			Msg     string    `json:"msg"`
			Phase   string    `json:"phase"`
			Seconds string    `json:"seconds"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Msg == "" {
			continue
		}
		if first.IsZero() && !rec.Time.IsZero() {
			first = rec.Time
		}
		if rec.Msg != "phase" {
			continue
		}
		f, _ := strconv.ParseFloat(rec.Seconds, 64)
		d := time.Duration(f * float64(time.Second))
		switch {
		case rec.Phase == "open store" || rec.Phase == "close store":
			bd.store += d
		case strings.HasPrefix(rec.Phase, "build "):
			bd.build += d
		case strings.HasPrefix(rec.Phase, "export "):
			bd.export += d
		}
		phases += d
	}
	if !first.IsZero() {
		bd.start = first.Sub(start)
	}
	bd.push = total - bd.start - phases
	return bd
}

// startRegistry starts Debian's docker-registry on a free loopback port.
func startRegistry(dir string) (*exec.Cmd, string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	host := l.Addr().String()
	l.Close()
	cfg := filepath.Join(dir, "registry.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "registry"), host)), 0o600)
	cmd := exec.Command("docker-registry", "serve", cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	check(cmd.Start())
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", host); err == nil {
			c.Close()
			return cmd, host
		}
		time.Sleep(50 * time.Millisecond)
	}
	log.Fatal("the registry did not start")
	return nil, ""
}

func writeFiles(dir string, files map[string]string) {
	for p, content := range files {
		full := filepath.Join(dir, p)
		check(os.MkdirAll(filepath.Dir(full), 0o755))
		check(os.WriteFile(full, []byte(content), 0o644))
	}
}

// writeRandom writes n incompressible bytes, like a real binary asset.
func writeRandom(path string, n int64) {
	f, err := os.Create(path)
	check(err)
	defer f.Close()
	_, err = io.CopyN(f, rand.Reader, n)
	check(err)
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
