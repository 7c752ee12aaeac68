// Command buildkit benchmarks kimia against raw buildctl driving the same
// buildkitd binary, in one run, on the same registry and contexts:
//
//	go run ./bench/buildkit -bin bin -runs 3
//
// Each scenario is timed end to end (process start to image pushed). For
// buildctl the daemon's start (until it answers ListWorkers) is timed
// separately, since kimia starts its own daemon for every build: the fair
// comparison is kimia against buildctl plus daemon start. Cached
// scenarios give buildctl the same registry cache import and export that
// kimia --cache does for Kaniko's default cache repository. The table goes
// to stdout in Markdown; bench/README.md keeps the last one.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/moby/buildkit/client"

	"github.com/rapidfort/kimia/test/e2e"
)

var (
	binDir = flag.String("bin", "bin", "directory with kimia, buildkitd and buildctl")
	runs   = flag.Int("runs", 3, "runs per scenario; the median is reported")
	only   = flag.String("only", "", "run only scenarios whose name contains this")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	bin, err := filepath.Abs(*binDir)
	check(err)
	work, err := os.MkdirTemp("", "kimia-bench-")
	check(err)
	defer os.RemoveAll(work)

	reg := startRegistry(work)
	defer reg.Process.Kill()
	host := regHost
	cache := e2e.DevCache()
	if _, err := e2e.PushBusybox(&e2e.Registry{Host: host}, cache); err != nil {
		log.Fatalf("pushing the base image: %v", err)
	}
	base := host + "/library/busybox:latest"

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

	b := &bench{bin: bin, work: work, host: host}
	type scenario struct {
		name string
		// prepare runs before each timed run, untimed.
		prepare func(state string)
		ctx     string
		cached  bool // reuse state from a warm-up build
	}
	touch := func(state string) {
		os.WriteFile(filepath.Join(small, "conf.txt"), []byte("conf "+state+" "+time.Now().String()+"\n"), 0o644)
	}
	scenarios := []scenario{
		{name: "cold build (tiny 2-stage Dockerfile)", ctx: small},
		{name: "no-change rebuild with cache", ctx: small, cached: true},
		{name: "one COPY'd file changed", ctx: small, cached: true, prepare: touch},
		{name: "2,000 small files + one 200 MB file, cold", ctx: big},
	}
	type row struct {
		name                         string
		kimia, buildctl, daemonStart time.Duration
	}
	var rows []row
	for _, s := range scenarios {
		if *only != "" && !strings.Contains(s.name, *only) {
			continue
		}
		var k, c, d []time.Duration
		for i := 0; i < *runs; i++ {
			id := fmt.Sprintf("%d-%d", len(rows), i)
			// kimia
			kstate := filepath.Join(work, "kimia-state-"+id)
			if s.cached {
				b.kimia(s.ctx, kstate, "warm-"+id, true) // warm-up, untimed
			}
			if s.prepare != nil {
				s.prepare("kimia-" + id)
			}
			k = append(k, b.kimia(s.ctx, kstate, id, s.cached))
			// buildctl
			bstate := filepath.Join(work, "buildctl-state-"+id)
			if s.cached {
				b.buildctl(s.ctx, bstate, "warm-"+id, true)
			}
			if s.prepare != nil {
				s.prepare("buildctl-" + id)
			}
			bt, dt := b.buildctlTimed(s.ctx, bstate, id, s.cached)
			c, d = append(c, bt), append(d, dt)
			os.RemoveAll(kstate)
			os.RemoveAll(bstate)
		}
		rows = append(rows, row{s.name, median(k), median(c), median(d)})
		log.Printf("%s: kimia %v, buildctl %v + daemon %v", s.name, median(k), median(c), median(d))
	}

	fmt.Printf("| scenario | kimia (end to end) | buildctl | buildkitd start | buildctl + start | kimia / (buildctl + start) |\n")
	fmt.Printf("|---|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		sum := r.buildctl + r.daemonStart
		fmt.Printf("| %s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f |\n", r.name, r.kimia.Seconds(), r.buildctl.Seconds(),
			r.daemonStart.Seconds(), sum.Seconds(), r.kimia.Seconds()/sum.Seconds())
	}
	fmt.Printf("\n%d runs per cell, median; %d CPUs; load average at the end: %s\n", *runs, numCPU(), loadavg())
}

type bench struct {
	bin, work, host string
}

// kimia builds and pushes ctx, with --cache and a state dir when cache
// is set, and returns the wall time of the whole process.
func (b *bench) kimia(ctx, state, id string, cache bool) time.Duration {
	args := []string{"--context=" + ctx, "--destination=" + b.host + "/bench/kimia:" + id,
		"--insecure-registry=" + b.host, "--progress=quiet", "--verbosity=error"}
	if cache {
		// As a Kaniko user gets it: the state dir, and the registry cache
		// in <destination>/cache imported and exported.
		args = append(args, "--cache", "--cache-dir="+state)
	}
	start := time.Now()
	run(filepath.Join(b.bin, "kimia"), args, nil)
	return time.Since(start)
}

func (b *bench) buildctl(ctx, state, id string, cache bool) {
	b.buildctlTimed(ctx, state, id, cache)
}

// buildctlTimed starts buildkitd as kimia does (root, private socket,
// state dir, OCI worker only), waits until it answers, builds and pushes
// ctx with buildctl, and stops the daemon. With cache it also imports and
// exports a registry cache (mode=max), the work kimia --cache does for
// Kaniko's default cache repository. It returns the build's wall time and
// the daemon's start time.
func (b *bench) buildctlTimed(ctx, state, id string, cache bool) (build, daemonStart time.Duration) {
	run := filepath.Join(b.work, "run-"+id)
	os.MkdirAll(run, 0o700)
	defer os.RemoveAll(run)
	sock := filepath.Join(run, "buildkitd.sock")
	start := time.Now()
	cmd := exec.Command(filepath.Join(b.bin, "buildkitd"), "--root", state, "--addr", "unix://"+sock,
		"--oci-worker-snapshotter=overlayfs", "--containerd-worker=false", "--oci-worker-net=host")
	logf, _ := os.Create(filepath.Join(run, "log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM, Unshareflags: syscall.CLONE_NEWNS}
	check(cmd.Start())
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logf.Close()
	}()
	for {
		if _, err := os.Stat(sock); err == nil {
			c, err := client.New(context.Background(), "unix://"+sock)
			if err == nil {
				if _, err = c.ListWorkers(context.Background()); err == nil {
					c.Close()
					break
				}
				c.Close()
			}
		}
		if time.Since(start) > time.Minute {
			log.Fatalf("buildkitd did not start: see %s", logf.Name())
		}
		time.Sleep(10 * time.Millisecond)
	}
	daemonStart = time.Since(start)
	args := []string{"--addr", "unix://" + sock, "build", "--frontend", "dockerfile.v0",
		"--local", "context=" + ctx, "--local", "dockerfile=" + ctx, "--progress=quiet",
		"--output", "type=image,name=" + b.host + "/bench/buildctl:" + id + ",push=true,registry.insecure=true"}
	if cache {
		ref := b.host + "/bench/buildctl/cache:buildkit"
		args = append(args, "--import-cache", "type=registry,ref="+ref,
			"--export-cache", "type=registry,ref="+ref+",mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true")
	}
	t := time.Now()
	runCmd(filepath.Join(b.bin, "buildctl"), args)
	return time.Since(t), daemonStart
}

func run(path string, args, env []string) {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		log.Fatalf("%s %s: %v\n%s", path, strings.Join(args, " "), err, out)
	}
}

func runCmd(path string, args []string) { run(path, args, nil) }

var regHost string

// startRegistry starts Debian's docker-registry on a free loopback port.
func startRegistry(dir string) *exec.Cmd {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	regHost = l.Addr().String()
	l.Close()
	cfg := filepath.Join(dir, "registry.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "registry"), regHost)), 0o600)
	cmd := exec.Command("docker-registry", "serve", cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	check(cmd.Start())
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", regHost); err == nil {
			c.Close()
			return cmd
		}
		time.Sleep(50 * time.Millisecond)
	}
	log.Fatal("the registry did not start")
	return nil
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
