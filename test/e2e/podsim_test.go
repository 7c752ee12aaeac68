//go:build e2e

package e2e

// A Kubernetes pod, simulated faithfully enough to trust: the container
// runs under runc with the OCI spec that containerd's CRI plugin would
// generate for the manifest's pod and container (capabilities,
// no_new_privs from allowPrivilegeEscalation, seccomp RuntimeDefault from
// containerd's own Go code or a Localhost profile file, the masked and
// read-only /proc paths, a user namespace for hostUsers: false), on an
// overlayfs root filesystem as containerd's snapshotter mounts it.
//
// What differs from a real node (docs/security.md repeats it): the
// container shares the host's network namespace (the registry listens on
// loopback), there is no pause container, kubelet or CNI, volumes are bind
// mounts of test directories, and AppArmor is applied only where the host
// has it (this one does not).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cseccomp "github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
)

// simPod is one container of a pod to run.
type simPod struct {
	// Name labels the run in logs.
	Name  string
	Image *builtImage
	Spec  corev1.PodSpec
	// Container is the container to run (one of Spec.Containers, or a
	// Tekton step turned into one), with its args already set.
	Container corev1.Container
	// Volumes maps the pod's volume names to host directories bound in
	// their place.
	Volumes map[string]string
	// Binds are extra bind mounts (a test's build context, Tekton's
	// /tekton directories).
	Binds []specs.Mount
	// SeccompRoot is the kubelet's seccomp directory, where Localhost
	// profiles are found (default: deploy/seccomp/GOARCH).
	SeccompRoot string
	// Timeout ends the container (default 10 minutes).
	Timeout time.Duration
	// FieldRefs are the downward API's values, by field path.
	FieldRefs map[string]string
}

var podSeq atomic.Int64

// userNSBase is the first host id of a hostUsers: false pod's range;
// the kubelet hands out multiples of 65536 above the node's own ids.
const userNSBase = 1 << 21

// runPod runs the pod's container to completion and returns what it did.
func runPod(t *testing.T, sb *Sandbox, p simPod) *Result {
	t.Helper()
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatalf("the pod simulation needs runc (Debian package runc; hack/install-deps.sh): %v", err)
	}
	userns := p.Spec.HostUsers != nil && !*p.Spec.HostUsers
	shift := 0
	if userns {
		shift = userNSBase
	}
	lower := unpackedRootfs(t, p.Image, shift)

	id := fmt.Sprintf("kimia-e2e-%d-%d", os.Getpid(), podSeq.Add(1))
	bundle, err := os.MkdirTemp("", "kimia-e2e-pod-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bundle) })
	// A user-namespace container's root must reach its root filesystem.
	os.Chmod(bundle, 0o755)
	rootfs := filepath.Join(bundle, "rootfs")
	upper, work := filepath.Join(bundle, "upper"), filepath.Join(bundle, "work")
	for _, d := range []string{rootfs, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if userns {
		os.Chown(upper, shift, shift)
	}
	// containerd's overlayfs snapshotter: the image read-only below, the
	// container's writes above. Nested overlays (kimia's own overlay
	// storage on top of this) behave as on a node.
	if err := syscall.Mount("overlay", rootfs, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work); err != nil {
		t.Fatalf("mounting the container's overlay root filesystem: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(rootfs, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", rootfs, err)
		}
	})

	spec := criSpec(t, p, id, rootfs, shift)
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(bundle, "runc-state")
	timeout := p.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.Command(runc, "--root", state, "run", "--bundle", bundle, id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting runc: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		exec.Command(runc, "--root", state, "kill", id, "KILL").Run()
		err = <-done
		t.Errorf("pod %s did not finish in %s", p.Name, timeout)
	}
	exec.Command(runc, "--root", state, "delete", "--force", id).Run()
	r := &Result{Args: spec.Process.Args, Stdout: stdout.String(), Stderr: stderr.String(), Duration: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running runc: %v", err)
	}
	t.Logf("pod %s (%s, %s): exit %d in %.1fs", p.Name, p.Image.Name, podPosture(spec), r.Code, r.Duration.Seconds())
	return r
}

// podPosture summarizes the security settings a run had, for logs.
func podPosture(s *specs.Spec) string {
	seccomp := "unconfined"
	if s.Linux.Seccomp != nil {
		seccomp = fmt.Sprintf("%d rules", len(s.Linux.Seccomp.Syscalls))
	}
	userns := "host users"
	if len(s.Linux.UIDMappings) > 0 {
		userns = fmt.Sprintf("user namespace 0->%d", s.Linux.UIDMappings[0].HostID)
	}
	return fmt.Sprintf("uid %d, bounding %v, no_new_privs %v, seccomp %s, %s",
		s.Process.User.UID, s.Process.Capabilities.Bounding, s.Process.NoNewPrivileges, seccomp, userns)
}

// unpackedRoots caches image root filesystems by digest and id shift, on
// disk under the kimia cache (they are read-only overlay lower layers).
var unpackedRoots = struct {
	sync.Mutex
	pruned bool
}{}

func unpackedRootfs(t *testing.T, img *builtImage, shift int) string {
	t.Helper()
	unpackedRoots.Lock()
	defer unpackedRoots.Unlock()
	dg, err := img.Image.Digest()
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(env.CacheDir, "e2e", "rootfs")
	dir := filepath.Join(base, fmt.Sprintf("%s-%d", dg.Hex[:20], shift))
	if !unpackedRoots.pruned {
		// Every run builds new images (new binaries): keep the disk to
		// root filesystems used in the last hour (runPod touches them).
		unpackedRoots.pruned = true
		entries, _ := os.ReadDir(base)
		for _, e := range entries {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
				os.RemoveAll(filepath.Join(base, e.Name()))
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		now := time.Now()
		os.Chtimes(dir, now, now)
		return filepath.Join(dir, "rootfs")
	}
	// Unpack aside and rename, so that another test process using the
	// same cache never sees half a root filesystem.
	tmp := fmt.Sprintf("%s.tmp-%d", dir, os.Getpid())
	os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Join(tmp, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	unpackImage(t, img.Image, filepath.Join(tmp, "rootfs"), shift)
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, ".complete")); serr == nil {
			os.RemoveAll(tmp) // another process finished first
			return filepath.Join(dir, "rootfs")
		}
		os.RemoveAll(dir) // an interrupted unpack
		if err := os.Rename(tmp, dir); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "rootfs")
}

// defaultCaps are containerd's default container capabilities, which
// "drop"/"add" in a securityContext change.
var defaultCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

// criSpec is the OCI spec containerd's CRI plugin generates for the
// container (containerd/v2 internal/cri/server/container_create.go,
// buildLinuxSpec, in the same order), with kubelet's side of it (the
// effective security context, no_new_privs, fsGroup as a supplementary
// group, the seccomp profile path).
func criSpec(t *testing.T, p simPod, id, rootfs string, shift int) *specs.Spec {
	t.Helper()
	c := p.Container
	psc := p.Spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	cf := Config(t, p.Image.Image).Config

	// The kubelet's effective security context: container over pod.
	uid, gid := int64(0), int64(-1)
	if u, g, ok := strings.Cut(cf.User, ":"); cf.User != "" {
		uid, _ = strconv.ParseInt(u, 10, 64)
		if ok {
			gid, _ = strconv.ParseInt(g, 10, 64)
		}
	}
	if psc.RunAsUser != nil {
		uid = *psc.RunAsUser
	}
	if sc.RunAsUser != nil {
		uid = *sc.RunAsUser
	}
	if psc.RunAsGroup != nil {
		gid = *psc.RunAsGroup
	}
	if sc.RunAsGroup != nil {
		gid = *sc.RunAsGroup
	}
	runAsNonRoot := (psc.RunAsNonRoot != nil && *psc.RunAsNonRoot) || (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot)
	if runAsNonRoot && uid == 0 {
		t.Fatalf("pod %s: runAsNonRoot with uid 0: the kubelet would refuse to start the container", p.Name)
	}
	lowerEtc := filepath.Join(rootfs, "etc")
	if gid < 0 {
		gid = primaryGroup(lowerEtc, uid)
	}
	groups := memberGroups(lowerEtc, uid)
	groups = append(groups, psc.SupplementalGroups...)
	if psc.FSGroup != nil {
		groups = append(groups, *psc.FSGroup)
	}
	var addGids []uint32
	for _, g := range groups {
		addGids = append(addGids, uint32(g))
	}

	envs := []string{"HOSTNAME=" + p.Name}
	envs = append(envs, cf.Env...)
	vars := map[string]string{}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef == nil {
				t.Fatalf("pod %s: env %s: only fieldRef is simulated", p.Name, e.Name)
			}
			fv, ok := p.FieldRefs[e.ValueFrom.FieldRef.FieldPath]
			if !ok {
				t.Fatalf("pod %s: env %s: no value for field %s", p.Name, e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			v = fv
		}
		v = expandVars(v, vars)
		vars[e.Name] = v
		envs = append(envs, e.Name+"="+v)
	}
	args := c.Command
	if len(args) == 0 {
		args = append(append([]string{}, cf.Entrypoint...), c.Args...)
		if len(c.Args) == 0 {
			args = append(args, cf.Cmd...)
		}
	} else {
		args = append(append([]string{}, args...), c.Args...)
	}
	cwd := cf.WorkingDir
	if c.WorkingDir != "" {
		cwd = c.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	// The kubelet expands $(VAR) in command and args from the
	// container's env.
	for i := range args {
		args[i] = expandVars(args[i], vars)
	}
	// The kubelet gives every container the API server's service
	// variables (also with enableServiceLinks: false); programs use them
	// to tell they run in a pod.
	envs = append(envs, "KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443", "KUBERNETES_SERVICE_PORT_HTTPS=443",
		"KUBERNETES_PORT=tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP=tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP_PROTO=tcp",
		"KUBERNETES_PORT_443_TCP_PORT=443", "KUBERNETES_PORT_443_TCP_ADDR=10.96.0.1")

	opts := []oci.SpecOpts{
		oci.WithoutRunMount,
		withoutDefaultSecuritySettings,
		oci.WithRootFSPath(rootfs),
		oci.WithProcessArgs(args...),
		oci.WithDefaultPathEnv,
		oci.WithNewPrivileges,
		oci.WithProcessCwd(cwd),
		oci.WithEnv(envs),
		// Simulation: the host's network (the registry is on loopback).
		oci.WithHostNamespace(specs.NetworkNamespace),
		oci.WithHostname(p.Name),
		oci.WithMounts(podMounts(t, p, shift)),
		withCRICapabilities(t, sc.Capabilities),
		withoutAmbientCaps,
		oci.WithUIDGID(uint32(uid), uint32(gid)),
		withAdditionalGids(addGids),
		oci.WithCgroup("/kimia-e2e/" + id),
	}
	// allowPrivilegeEscalation: false is no_new_privs (kubelet's
	// addNoNewPrivileges: unset means allowed).
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		opts = append(opts, oci.WithNoNewPrivileges)
	}
	if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if shift != 0 {
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(shift), Size: 65536}}
		opts = append(opts, oci.WithUserNamespace(m, m))
	}
	// Seccomp comes last, as in CRI, since RuntimeDefault depends on the
	// capabilities.
	prof := sc.SeccompProfile
	if prof == nil {
		prof = psc.SeccompProfile
	}
	if prof != nil {
		switch prof.Type {
		case corev1.SeccompProfileTypeRuntimeDefault:
			opts = append(opts, cseccomp.WithDefaultProfile())
		case corev1.SeccompProfileTypeLocalhost:
			root := p.SeccompRoot
			if root == "" {
				root = filepath.Join(env.RepoRoot, "deploy", "seccomp", goarch())
			}
			if prof.LocalhostProfile == nil {
				t.Fatalf("pod %s: seccompProfile Localhost without localhostProfile", p.Name)
			}
			opts = append(opts, cseccomp.WithProfile(filepath.Join(root, *prof.LocalhostProfile)))
		case corev1.SeccompProfileTypeUnconfined:
		default:
			t.Fatalf("pod %s: unknown seccomp profile type %q", p.Name, prof.Type)
		}
	}
	// AppArmor: containerd applies a profile only where the host kernel
	// has AppArmor; this simulation does the same.
	if aa := sc.AppArmorProfile; aa != nil && aa.Type != corev1.AppArmorProfileTypeUnconfined && hostHasAppArmor() {
		t.Fatalf("pod %s: AppArmor profile %s is not simulated on this AppArmor host", p.Name, aa.Type)
	}

	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	spec, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: id}, opts...)
	if err != nil {
		t.Fatalf("generating the container's OCI spec: %v", err)
	}
	// runc 1.1 implements runtime-spec 1.0.2; the fields set here are the
	// same in both.
	spec.Version = "1.0.2"
	if shift != 0 {
		// A pod's user namespace owns the pod's network namespace, where
		// sysfs can be mounted. Sharing the host's network (a deviation of
		// this simulation), it cannot: bind the host's /sys read-only
		// instead, as rootless runtimes do.
		for i, m := range spec.Mounts {
			switch m.Destination {
			case "/sys":
				spec.Mounts[i] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
			case "/sys/fs/cgroup":
				spec.Mounts[i] = specs.Mount{Destination: "/sys/fs/cgroup", Type: "bind", Source: "/sys/fs/cgroup", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
			}
		}
	}
	return spec
}

// expandVars is the kubelet's $(VAR) expansion: defined variables are
// replaced, $$ escapes, anything else stays as written.
func expandVars(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '$' && i+1 < len(s) {
			if s[i+1] == '$' {
				b.WriteByte('$')
				i++
				continue
			}
			if s[i+1] == '(' {
				if end := strings.IndexByte(s[i:], ')'); end > 0 {
					if v, ok := vars[s[i+2:i+end]]; ok {
						b.WriteString(v)
						i += end
						continue
					}
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func hostHasAppArmor() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.TrimSpace(string(b)) == "Y"
}

// goarch is the architecture whose seccomp profile applies here.
func goarch() string { return runtime.GOARCH }

// withoutDefaultSecuritySettings is CRI's customopts.WithoutDefaultSecuritySettings.
func withoutDefaultSecuritySettings(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
	s.Process.ApparmorProfile = ""
	if s.Linux != nil {
		s.Linux.Seccomp = nil
	}
	s.Process.Rlimits = nil
	return nil
}

// withoutAmbientCaps is CRI's customopts.WithoutAmbientCaps.
func withoutAmbientCaps(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
	s.Process.Capabilities.Ambient = nil
	return nil
}

func withAdditionalGids(gids []uint32) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
		s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, gids...)
		return nil
	}
}

// withCRICapabilities is CRI's customopts.WithCapabilities: "ALL" first,
// then the named ones, on top of containerd's defaults.
func withCRICapabilities(t *testing.T, c *corev1.Capabilities) oci.SpecOpts {
	if c == nil {
		return oci.WithCapabilities(defaultCaps)
	}
	var opts []oci.SpecOpts
	opts = append(opts, oci.WithCapabilities(defaultCaps))
	var add, drop []string
	for _, n := range c.Add {
		if n == "ALL" {
			t.Fatalf("capabilities add ALL is not simulated")
		}
		add = append(add, "CAP_"+strings.ToUpper(string(n)))
	}
	for _, n := range c.Drop {
		if n == "ALL" {
			opts = append(opts, oci.WithCapabilities(nil))
			continue
		}
		drop = append(drop, "CAP_"+strings.ToUpper(string(n)))
	}
	opts = append(opts, oci.WithAddedCapabilities(add), oci.WithDroppedCapabilities(drop))
	return func(ctx context.Context, cl oci.Client, cc *containers.Container, s *specs.Spec) error {
		for _, o := range opts {
			if err := o(ctx, cl, cc, s); err != nil {
				return err
			}
		}
		return nil
	}
}

// podMounts are CRI's per-container mounts (/etc/hosts, /etc/resolv.conf,
// the termination log) and the container's volume mounts.
func podMounts(t *testing.T, p simPod, shift int) []specs.Mount {
	t.Helper()
	// CRI mounts the container's cgroups read-only (rw only for
	// privileged containers).
	ms := []specs.Mount{{Source: "cgroup", Destination: "/sys/fs/cgroup", Type: "cgroup",
		Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}}}
	for _, f := range []string{"/etc/hosts", "/etc/resolv.conf"} {
		if _, err := os.Stat(f); err == nil {
			ms = append(ms, specs.Mount{Destination: f, Type: "bind", Source: f, Options: []string{"rbind", "ro"}})
		}
	}
	for _, vm := range p.Container.VolumeMounts {
		src, ok := p.Volumes[vm.Name]
		if !ok {
			t.Fatalf("pod %s: volume %q is mounted at %s but the test gives no directory for it", p.Name, vm.Name, vm.MountPath)
		}
		if vm.SubPath != "" {
			src = filepath.Join(src, vm.SubPath)
		}
		opt := []string{"rbind", "rw"}
		if vm.ReadOnly {
			opt = []string{"rbind", "ro"}
		}
		ms = append(ms, specs.Mount{Destination: vm.MountPath, Type: "bind", Source: src, Options: opt})
	}
	return append(ms, p.Binds...)
}

// emptyDir makes a directory as the kubelet makes an emptyDir volume:
// mode 0777, owned by the fsGroup with the setgid bit when there is one.
func emptyDir(t *testing.T, spec corev1.PodSpec, shift int) string {
	t.Helper()
	d, err := os.MkdirTemp("", "kimia-e2e-emptydir-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	mode := uint32(0o777)
	if sc := spec.SecurityContext; sc != nil && sc.FSGroup != nil {
		os.Lchown(d, shift, int(*sc.FSGroup)+shift)
		mode |= syscall.S_ISGID
	} else {
		os.Lchown(d, shift, shift)
	}
	syscall.Chmod(d, mode)
	return d
}

// secretVolume makes a directory holding a secret's files, as the
// kubelet projects them (readable by the fsGroup).
func secretVolume(t *testing.T, spec corev1.PodSpec, files map[string]string, shift int) string {
	t.Helper()
	d := emptyDir(t, spec, shift)
	for name, content := range files {
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		gid := shift
		if sc := spec.SecurityContext; sc != nil && sc.FSGroup != nil {
			gid += int(*sc.FSGroup)
			os.Chmod(p, 0o640)
		}
		os.Lchown(p, shift, gid)
	}
	syscall.Chmod(d, 0o755|syscall.S_ISGID)
	return d
}

// primaryGroup reads uid's group from the image's /etc/passwd (0 when the
// user is not there, as containerd does).
func primaryGroup(etc string, uid int64) int64 {
	f, err := os.Open(filepath.Join(etc, "passwd"))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Split(s.Text(), ":")
		if len(fs) > 3 && fs[2] == strconv.FormatInt(uid, 10) {
			g, _ := strconv.ParseInt(fs[3], 10, 64)
			return g
		}
	}
	return 0
}

// memberGroups lists the groups of the image's /etc/group that name uid's
// user as a member (containerd's WithAdditionalGIDs).
func memberGroups(etc string, uid int64) []int64 {
	name := ""
	if b, err := os.ReadFile(filepath.Join(etc, "passwd")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			fs := strings.Split(l, ":")
			if len(fs) > 3 && fs[2] == strconv.FormatInt(uid, 10) {
				name = fs[0]
			}
		}
	}
	if name == "" {
		return nil
	}
	var out []int64
	if b, err := os.ReadFile(filepath.Join(etc, "group")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			fs := strings.Split(l, ":")
			if len(fs) > 3 && containsString(strings.Split(fs[3], ","), name) {
				g, _ := strconv.ParseInt(fs[2], 10, 64)
				out = append(out, g)
			}
		}
	}
	return out
}
