// Command builders times kimia, kimia-bud, raw BuildKit and Kaniko side by
// side, in one run, on the same registry and contexts:
//
//	make build && go run ./bench/builders -runs 3
//
// Every build is a whole process, start to image pushed to a local
// registry, as a user or a pod sees it. The builders alternate build by
// build and round by round, so that a noisy machine slows them alike; the
// table (medians, min-max, peak RSS of the largest process, ratios to
// Kaniko and to kimia) goes to stdout in Markdown. bench/README.md keeps
// the last one and says how to read it. It is a benchmark, not a test:
// nothing here fails on a slow machine.
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
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/buildkit/client"

	"github.com/rapidfort/kimia/internal/testenv"
)

var (
	binDir   = flag.String("bin", "bin", "directory with kimia, kimia-bud, buildkitd and buildctl (make build)")
	kaniko   = flag.String("kaniko", "", "Kaniko's executor (default: built by hack/install-kaniko.sh)")
	runs     = flag.Int("runs", 3, "rounds; each cell reports the median")
	only     = flag.String("only", "", "run only cases whose name contains this (W1, W5 kept, ...)")
	builders = flag.String("builders", "kaniko,buildkit,kimia,kimia-bud", "builders to run, in this order")
	extra    = flag.String("kimia-args", "", "extra flags for kimia and kimia-bud, space-separated (e.g. --attestation=max)")
)

// mode is how much a build may reuse.
type mode string

const (
	cold     mode = "cold"           // an empty state, no cache
	kept     mode = "state kept"     // the engine's state of an earlier build of the same context
	registry mode = "registry cache" // an empty state, the registry cache of an earlier build (a new pod)
)

// workload is a context and what changes between its builds.
type workload struct {
	id, what string
	dir      string
	// change, when set, edits the context before each timed build, so
	// that the build is "one line changed" against the state.
	change func(run string)
}

type cell struct {
	w    *workload
	mode mode
}

func (c cell) name() string { return c.w.id + " " + string(c.mode) }

// sample is one timed build.
type sample struct {
	wall   time.Duration
	rssKiB int64
}

func main() {
	flag.Parse()
	log.SetFlags(log.Ltime)
	if os.Geteuid() != 0 {
		log.Fatal("run as root: Kaniko runs as root in a private mount and pid namespace, as in its container")
	}
	bin, err := filepath.Abs(*binDir)
	check(err)
	root, err := testenv.RepoRoot()
	check(err)
	if *kaniko == "" {
		out, err := exec.Command("bash", filepath.Join(root, "hack", "install-kaniko.sh")).Output()
		if err != nil {
			log.Fatalf("building Kaniko (hack/install-kaniko.sh): %v", err)
		}
		*kaniko = filepath.Join(strings.TrimSpace(string(out)), "executor")
	}
	work, err := os.MkdirTemp("", "kimia-bench-")
	check(err)
	defer os.RemoveAll(work)

	reg := startRegistry(work)
	defer func() { reg.Process.Kill(); reg.Wait() }()
	if _, err := testenv.PushBusybox(&testenv.Registry{Host: regHost}, testenv.DevCache()); err != nil {
		log.Fatalf("pushing busybox: %v", err)
	}
	debian, err := testenv.PushDebian(&testenv.Registry{Host: regHost}, root)
	if err != nil {
		log.Fatalf("pushing debian: %v", err)
	}
	busybox := regHost + "/library/busybox:latest"

	ws := workloads(work, busybox, debian)
	cells := []cell{
		{ws[0], cold}, {ws[1], cold}, {ws[2], cold},
		{ws[3], kept}, {ws[3], registry},
		{ws[4], kept}, {ws[4], registry},
	}
	var bs []builder
	for _, n := range strings.Split(*builders, ",") {
		b := newBuilder(strings.TrimSpace(n), bin, work)
		bs = append(bs, b)
	}

	results := map[string]map[string][]sample{} // cell, builder
	var order []cell
	for _, c := range cells {
		if *only != "" && !strings.Contains(c.name(), *only) {
			continue
		}
		order = append(order, c)
		results[c.name()] = map[string][]sample{}
	}
	// Kept state and registry caches come from an untimed build first.
	for _, c := range order {
		for _, b := range bs {
			if c.mode != cold && b.supports(c.mode) {
				if c.w.change != nil {
					c.w.change("warm-" + b.name())
				}
				b.build(c, "warm", true)
			}
		}
	}
	for r := 0; r < *runs; r++ {
		for _, c := range order {
			// Rotate the order each round, so no builder always runs
			// right after another's heavy build.
			for i := range bs {
				b := bs[(i+r)%len(bs)]
				if !b.supports(c.mode) {
					continue
				}
				if c.w.change != nil {
					c.w.change(fmt.Sprintf("%s-%d", b.name(), r))
				}
				s := b.build(c, fmt.Sprintf("r%d", r), false)
				verify(dest(b, c, fmt.Sprintf("r%d", r)))
				results[c.name()][b.name()] = append(results[c.name()][b.name()], s)
				log.Printf("%-20s %-10s %6.2f s %5d MiB", c.name(), b.name(), s.wall.Seconds(), s.rssKiB/1024)
			}
		}
	}
	report(os.Stdout, order, bs, results)
}

func workloads(work, busybox, debian string) []*workload {
	small := filepath.Join(work, "w1")
	writeFiles(small, map[string]string{
		"Dockerfile": "FROM " + busybox + " AS build\nCOPY app.txt /src/app.txt\nRUN wc -c /src/app.txt > /src/size\n" +
			"FROM " + busybox + "\nCOPY --from=build /src /app\nCOPY conf.txt /app/conf.txt\n",
		"app.txt":  "app\n",
		"conf.txt": "conf\n",
	})
	big := filepath.Join(work, "w2")
	files := map[string]string{"Dockerfile": "FROM " + busybox + "\nCOPY . /app\n"}
	for i := 0; i < 2000; i++ {
		files[fmt.Sprintf("src/d%02d/f%04d.txt", i%40, i)] = fmt.Sprintf("small file %d\n", i)
	}
	writeFiles(big, files)
	writeRandom(filepath.Join(big, "blob.bin"), 200<<20)
	run := "RUN mkdir /data && head -c 20480000 /dev/urandom | split -b 1024 -a 5 -d - /data/f\n"
	deb := filepath.Join(work, "w3")
	writeFiles(deb, map[string]string{"Dockerfile": "FROM " + debian + "\n" + run})
	debChange := filepath.Join(work, "w5")
	writeFiles(debChange, map[string]string{
		"Dockerfile":  "FROM " + debian + "\n" + run + "COPY version.txt /etc/app-version\n",
		"version.txt": "0\n",
	})
	return []*workload{
		{id: "W1", what: "tiny two-stage busybox build", dir: small},
		{id: "W2", what: "2,000 small files + one 200 MB random file, `COPY . /app`", dir: big},
		{id: "W3", what: "Debian minbase + a RUN creating 20,000 files", dir: deb},
		{id: "W4", what: "no-change rebuild of W1", dir: small},
		{id: "W5", what: "one-line change after W3's RUN", dir: debChange, change: func(run string) {
			check(os.WriteFile(filepath.Join(debChange, "version.txt"), []byte(run+" "+time.Now().String()+"\n"), 0o644))
		}},
	}
}

// builder is one of the peers.
type builder interface {
	name() string
	supports(mode) bool
	// build builds c once; warm builds prepare the state or registry
	// cache that timed builds of c reuse.
	build(c cell, run string, warm bool) sample
}

func newBuilder(n, bin, work string) builder {
	switch n {
	case "kimia", "kimia-bud":
		return &kimiaBuilder{bin: filepath.Join(bin, n), work: work, n: n}
	case "buildkit":
		return &buildkitBuilder{bin: bin, work: work}
	case "kaniko":
		return &kanikoBuilder{executor: *kaniko, work: work}
	}
	log.Fatalf("unknown builder %q (want kimia, kimia-bud, buildkit or kaniko)", n)
	return nil
}

func dest(b builder, c cell, run string) string {
	return regHost + "/bench/" + b.name() + "-" + strings.ToLower(c.w.id) + ":" + strings.ReplaceAll(run, " ", "-")
}

// kimiaBuilder runs kimia or kimia-bud as a user would.
type kimiaBuilder struct {
	bin, work, n string
}

func (k *kimiaBuilder) name() string       { return k.n }
func (k *kimiaBuilder) supports(mode) bool { return true }

func (k *kimiaBuilder) build(c cell, run string, warm bool) sample {
	args := []string{"--context=" + c.w.dir, "--destination=" + dest(k, c, run),
		"--insecure-registry=" + regHost, "--progress=quiet", "--verbosity=error"}
	if *extra != "" {
		args = append(args, strings.Fields(*extra)...)
	}
	switch c.mode {
	case kept:
		// As a Kaniko user gets it: the state dir, and the registry cache
		// in <destination>/cache imported and exported.
		args = append(args, "--cache", "--cache-dir="+filepath.Join(k.work, k.n+"-state-"+c.w.id))
	case registry:
		dir, err := os.MkdirTemp(k.work, k.n+"-fresh-")
		check(err)
		defer os.RemoveAll(dir)
		args = append(args, "--cache", "--cache-dir="+dir)
	}
	// One cache repository per builder and workload, whatever the tag.
	args = append(args, "--cache-repo="+regHost+"/bench/"+k.n+"-"+strings.ToLower(c.w.id)+"/cache")
	return timed(exec.Command(k.bin, args...))
}

// buildkitBuilder is raw BuildKit: the pinned buildkitd started as kimia
// starts it (root, private socket, OCI worker, overlayfs), buildctl, the
// daemon stopped; timed as one, as kimia is.
type buildkitBuilder struct {
	bin, work string
}

func (b *buildkitBuilder) name() string       { return "buildkit" }
func (b *buildkitBuilder) supports(mode) bool { return true }

func (b *buildkitBuilder) build(c cell, run string, warm bool) sample {
	state := filepath.Join(b.work, "buildkit-state-"+c.w.id)
	if c.mode != kept {
		s, err := os.MkdirTemp(b.work, "buildkit-fresh-")
		check(err)
		state = s
		defer os.RemoveAll(s)
	}
	runDir, err := os.MkdirTemp(b.work, "buildkit-run-")
	check(err)
	defer os.RemoveAll(runDir)
	sock := filepath.Join(runDir, "buildkitd.sock")

	start := time.Now()
	d := exec.Command(filepath.Join(b.bin, "buildkitd"), "--root", state, "--addr", "unix://"+sock,
		"--oci-worker-snapshotter=overlayfs", "--containerd-worker=false", "--oci-worker-net=host")
	logf, err := os.Create(filepath.Join(runDir, "log"))
	check(err)
	defer logf.Close()
	d.Stdout, d.Stderr = logf, logf
	d.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM, Unshareflags: syscall.CLONE_NEWNS}
	check(d.Start())
	for {
		if _, err := os.Stat(sock); err == nil {
			if c, err := client.New(context.Background(), "unix://"+sock); err == nil {
				_, err = c.ListWorkers(context.Background())
				c.Close()
				if err == nil {
					break
				}
			}
		}
		if time.Since(start) > time.Minute {
			log.Fatalf("buildkitd did not start: see %s", logf.Name())
		}
		time.Sleep(10 * time.Millisecond)
	}
	args := []string{"--addr", "unix://" + sock, "build", "--frontend", "dockerfile.v0",
		"--local", "context=" + c.w.dir, "--local", "dockerfile=" + c.w.dir, "--progress=quiet",
		"--output", "type=image,name=" + dest(b, c, run) + ",push=true,registry.insecure=true"}
	if c.mode != cold {
		// kimia --cache's registry cache for a destination: Kaniko's
		// <destination>/cache, mode=max.
		ref := regHost + "/bench/buildkit-" + strings.ToLower(c.w.id) + "/cache:buildkit"
		args = append(args, "--import-cache", "type=registry,ref="+ref,
			"--export-cache", "type=registry,ref="+ref+",mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true")
	}
	ctl := exec.Command(filepath.Join(b.bin, "buildctl"), args...)
	out, err := ctl.CombinedOutput()
	if err != nil {
		log.Fatalf("buildctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	check(d.Process.Signal(syscall.SIGTERM))
	d.Wait()
	wall := time.Since(start)
	return sample{wall: wall, rssKiB: max(maxRSS(d), maxRSS(ctl))}
}

// kanikoBuilder runs Kaniko's executor as its container runs it: as
// root, in a private mount and pid namespace, chrooted into a directory
// that holds only the executor, CA certificates and a docker config,
// with the context bind-mounted. Kaniko unpacks the base image over its
// own root, which is that directory, never the host's.
type kanikoBuilder struct {
	executor, work string
}

func (k *kanikoBuilder) name() string { return "kaniko" }

// supports: Kaniko keeps no state between builds, only a registry cache.
func (k *kanikoBuilder) supports(m mode) bool { return m != kept }

func (k *kanikoBuilder) build(c cell, run string, warm bool) sample {
	root, err := os.MkdirTemp(k.work, "kaniko-root-")
	check(err)
	defer os.RemoveAll(root)
	for _, d := range []string{"kaniko/ssl/certs", "kaniko/.docker", "workspace", "output", "proc", "dev", "etc", "tmp"} {
		check(os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	check(os.Link(k.executor, filepath.Join(root, "kaniko", "executor")))
	copyFile("/etc/ssl/certs/ca-certificates.crt", filepath.Join(root, "kaniko/ssl/certs/ca-certificates.crt"))
	check(os.WriteFile(filepath.Join(root, "kaniko/.docker/config.json"), []byte("{}\n"), 0o644))
	copyFile("/etc/nsswitch.conf", filepath.Join(root, "etc/nsswitch.conf"))

	args := []string{"/kaniko/executor", "--context=dir:///workspace", "--dockerfile=/workspace/Dockerfile",
		"--destination=" + dest(k, c, run), "--insecure", "--insecure-pull", "--digest-file=/output/digest",
		"--verbosity=error"}
	if c.mode == registry {
		args = append(args, "--cache=true", "--cache-repo="+regHost+"/bench/kaniko-"+strings.ToLower(c.w.id)+"/cache")
	}
	script := `set -e
mount --bind "$1" "$2/workspace"
mount --bind "$3" "$2/output"
mount -t proc proc "$2/proc"
mount --rbind /dev "$2/dev"
root=$2; shift 3
chroot=$(command -v chroot)
export PATH=/usr/local/bin:/kaniko
exec "$chroot" "$root" "$@"`
	out := filepath.Join(k.work, "kaniko-output")
	check(os.MkdirAll(out, 0o755))
	cmd := exec.Command("unshare", append([]string{"--mount", "--pid", "--fork", "--kill-child", "--propagation", "private",
		"sh", "-c", script, "sh", c.w.dir, root, out}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "USER=root",
		"SSL_CERT_DIR=/kaniko/ssl/certs", "DOCKER_CONFIG=/kaniko/.docker/"}
	return timed(cmd)
}

// verify checks that a build really pushed its image.
func verify(ref string) {
	r, err := name.ParseReference(ref, name.Insecure)
	check(err)
	if _, err := remote.Head(r); err != nil {
		log.Fatalf("%s was not pushed: %v", ref, err)
	}
}

// timed runs cmd and returns its wall time and the peak RSS of the
// largest process of its tree that it waited for.
func timed(cmd *exec.Cmd) sample {
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		log.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return sample{wall: wall, rssKiB: maxRSS(cmd)}
}

func maxRSS(cmd *exec.Cmd) int64 {
	if cmd.ProcessState == nil {
		return 0
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return 0
}

func report(w io.Writer, cells []cell, bs []builder, res map[string]map[string][]sample) {
	fmt.Fprintf(w, "| workload | mode |")
	for _, b := range bs {
		fmt.Fprintf(w, " %s |", b.name())
	}
	fmt.Fprintf(w, " kimia / kaniko | kimia / buildkit | kimia-bud / kimia | kimia-bud / kaniko |\n|---|---|")
	for range bs {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintf(w, "---:|---:|---:|---:|\n")
	for _, c := range cells {
		fmt.Fprintf(w, "| %s %s | %s |", c.w.id, c.w.what, c.mode)
		med := map[string]time.Duration{}
		for _, b := range bs {
			s := res[c.name()][b.name()]
			if len(s) == 0 {
				fmt.Fprintf(w, " - |")
				continue
			}
			m, lo, hi, rss := stats(s)
			med[b.name()] = m
			fmt.Fprintf(w, " %.2f s (%.2f-%.2f), %d MiB |", m.Seconds(), lo.Seconds(), hi.Seconds(), rss/1024)
		}
		ratio := func(a, b string) string {
			if med[a] == 0 || med[b] == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", med[a].Seconds()/med[b].Seconds())
		}
		fmt.Fprintf(w, " %s | %s | %s | %s |\n", ratio("kimia", "kaniko"), ratio("kimia", "buildkit"),
			ratio("kimia-bud", "kimia"), ratio("kimia-bud", "kaniko"))
	}
	fmt.Fprintf(w, "\nMedians of %d rounds (min-max), peak RSS of the largest process (median); %d CPUs; load average at the end: %s.\n",
		*runs, numCPU(), loadavg())
}

func stats(s []sample) (med, lo, hi time.Duration, rss int64) {
	ds := make([]time.Duration, len(s))
	rs := make([]int64, len(s))
	for i, x := range s {
		ds[i], rs[i] = x.wall, x.rssKiB
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	slices.Sort(rs)
	return ds[len(ds)/2], ds[0], ds[len(ds)-1], rs[len(rs)/2]
}

var regHost string

// startRegistry starts Debian's docker-registry (CNCF Distribution) on a
// free loopback port.
func startRegistry(dir string) *exec.Cmd {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	regHost = l.Addr().String()
	l.Close()
	cfg := filepath.Join(dir, "registry.yml")
	check(os.WriteFile(cfg, []byte(fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "registry"), regHost)), 0o600))
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

func copyFile(src, dst string) {
	b, err := os.ReadFile(src)
	check(err)
	check(os.WriteFile(dst, b, 0o644))
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
