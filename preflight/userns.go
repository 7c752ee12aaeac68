package preflight

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rapidfort/kimia/hostfacts"
	"golang.org/x/sys/unix"
)

// helperMode says how newuidmap or newgidmap gets its privilege.
func helperMode(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "missing"
	}
	if sz, err := unix.Getxattr(path, "security.capability", nil); err == nil && sz > 0 {
		return "file capabilities"
	}
	if fi.Mode()&os.ModeSetuid != 0 {
		return "setuid root"
	}
	return "no privilege"
}

// userNamespace checks what a rootless build needs, and with probe
// creates a user namespace with the full subordinate-id map and mounts
// overlay in it.
func userNamespace(probe bool) []Result {
	r := Result{Name: "user namespace"}
	if os.Geteuid() == 0 {
		if hostfacts.InitialNamespace() {
			r.Status, r.Detail = OK, "running as root: builds need no user namespace of their own"
			return []Result{r}
		}
		n := hostfacts.MapSize(hostfacts.ReadIDMap("/proc/self/uid_map"))
		r.Detail = fmt.Sprintf("running as root inside a user namespace of %d ids", n)
		r.Status = OK
		if n <= 1 && probe {
			// kimia-bud runs check in the user namespace its re-exec made:
			// one id means newuidmap/newgidmap could not map the
			// subordinate ids, and a build would stop at once.
			if d := os.Getenv(hostfacts.IDMapDiagnosisEnv); d != "" {
				r.Detail += ": " + d
			}
			r.Status, r.Fix = Fail, "give the user 65536 ids in /etc/subuid and /etc/subgid and make newuidmap and newgidmap work (file capabilities or setuid, allowPrivilegeEscalation: true, SETUID and SETGID in the bounding set); "+
				"kimia-bud builds with one id only with --buildah-opt allow-single-id-mapping=true"
		} else if n < 65536 {
			// Before a build (no probe) a single id is only a warning
			// too: kimia-bud's engine refuses it with its own diagnosis
			// unless --buildah-opt allow-single-id-mapping=true.
			r.Status, r.Fix = Warn, "images that use ids above the mapped range will fail to unpack; give the pod's user namespace 65536 ids (hostUsers: false does)"
		}
		return []Result{r}
	}
	st := hostfacts.ReadStatus()
	var fails []Result
	fail := func(detail, fix string) {
		fails = append(fails, Result{Name: "user namespace", Status: Fail, Detail: detail, Fix: fix})
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		fail("user.max_user_namespaces is 0 on this node", "set the node sysctl user.max_user_namespaces (for example 15000)")
	}
	if st.NoNewPrivs() {
		fail("no_new_privs is set, so newuidmap and newgidmap cannot gain their capabilities",
			"set securityContext.allowPrivilegeEscalation: true (it is what lets the id-map helpers work; the process itself gains nothing)")
	}
	if !st.HasCap("CapBnd", hostfacts.CapSetUID) || !st.HasCap("CapBnd", hostfacts.CapSetGID) {
		fail("SETUID or SETGID is missing from the capability bounding set",
			"add SETUID and SETGID to securityContext.capabilities.add (drop ALL others)")
	}
	u, err := user.Current()
	if err != nil {
		fail(fmt.Sprintf("uid %d has no passwd entry: %v", os.Getuid(), err), "run as a user listed in /etc/passwd (kimia's images have user kimia, uid 1000)")
		return fails
	}
	subuid, subgid := hostfacts.SubIDs("/etc/subuid", u), hostfacts.SubIDs("/etc/subgid", u)
	if len(subuid) == 0 || len(subgid) == 0 {
		fail(fmt.Sprintf("user %s (uid %s) has no range in /etc/subuid or /etc/subgid", u.Username, u.Uid),
			fmt.Sprintf("add '%s:100000:65536' to /etc/subuid and /etc/subgid (kimia's images have one for user kimia, uid 1000; run as that uid)", u.Username))
	}
	helpers := map[string]string{}
	for _, h := range []string{"newuidmap", "newgidmap"} {
		p, err := exec.LookPath(h)
		if err != nil {
			fail(h+" is not on PATH", "install uidmap (Debian package uidmap); kimia's images include it")
			continue
		}
		helpers[h] = p
		mode := helperMode(p)
		if mode == "setuid root" && !st.HasCap("CapBnd", hostfacts.CapDACOverride) {
			fail(fmt.Sprintf("%s is setuid root, and without CAP_DAC_OVERRIDE in the bounding set it cannot write this process's %s", p, map[string]string{"newuidmap": "uid_map", "newgidmap": "gid_map"}[h]),
				"put copies with file capabilities first on PATH (setcap cap_setuid+ep newuidmap; setcap cap_setgid+ep newgidmap), as kimia's images do")
		}
		if mode == "no privilege" {
			fail(p+" has neither file capabilities nor the setuid bit", "reinstall uidmap, or setcap cap_setuid+ep newuidmap and cap_setgid+ep newgidmap")
		}
	}
	if len(fails) > 0 {
		return fails
	}
	r.Status = OK
	r.Detail = fmt.Sprintf("user %s: subordinate uids %v, gids %v; newuidmap: %s", u.Username, subuid, subgid, helperMode(helpers["newuidmap"]))
	if !probe {
		return []Result{r}
	}
	res, err := probeNamespace(helpers["newuidmap"], helpers["newgidmap"], subuid, subgid)
	if err != nil {
		return []Result{{Name: "user namespace", Status: Fail, Detail: err.Error(),
			Fix: "check the securityContext (allowPrivilegeEscalation: true, capabilities SETUID and SETGID) and the node's seccomp/AppArmor profile, which may forbid unshare(CLONE_NEWUSER)"}}
	}
	r.Detail = fmt.Sprintf("created a user namespace mapping %d uids and %d gids (newuidmap: %s)", res.UIDs, res.GIDs, helperMode(helpers["newuidmap"]))
	out := []Result{r}
	ov := Result{Name: "overlay in a user namespace", Status: OK, Detail: "mounted overlay"}
	if res.Overlay != "" {
		ov.Status, ov.Detail, ov.Fix = Warn, res.Overlay, "builds use the native (copying) storage driver, which is slower; kernel 5.11+ allows overlay in user namespaces"
	}
	return append(out, ov)
}

// ProbeArg0 is argv[0] of the probe child (see MaybeRunProbeChild).
const ProbeArg0 = "kimia-userns-probe"

type probeResult struct {
	UIDs, GIDs uint64
	Overlay    string // empty when the mount worked
}

// probeNamespace starts this binary as a child in new user and mount
// namespaces, maps the subordinate ids with newuidmap/newgidmap, and asks
// the child to report its map and try an overlay mount.
func probeNamespace(newuidmap, newgidmap string, subuid, subgid []hostfacts.SubIDRange) (*probeResult, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kimia-probe-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(self)
	cmd.Args = []string{ProbeArg0, dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("creating a user namespace: %w", err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	mapArgs := func(id int, ranges []hostfacts.SubIDRange) []string {
		args := []string{pid, "0", strconv.Itoa(id), "1"}
		next := uint64(1)
		for _, r := range ranges {
			args = append(args, strconv.FormatUint(next, 10), strconv.FormatUint(r.Start, 10), strconv.FormatUint(r.Count, 10))
			next += r.Count
		}
		return args
	}
	var mapErr error
	for _, m := range []struct {
		bin  string
		args []string
	}{{newuidmap, mapArgs(os.Getuid(), subuid)}, {newgidmap, mapArgs(os.Getgid(), subgid)}} {
		if out, err := exec.Command(m.bin, m.args...).CombinedOutput(); err != nil {
			mapErr = fmt.Errorf("%s: %v: %s", filepath.Base(m.bin), err, strings.TrimSpace(string(out)))
			break
		}
	}
	if mapErr != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, mapErr
	}
	stdin.Write([]byte("go\n"))
	stdin.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		return nil, fmt.Errorf("the namespace probe did not answer")
	}
	if err != nil {
		return nil, fmt.Errorf("the namespace probe failed: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var res probeResult
	if err := json.Unmarshal([]byte(stdout.String()), &res); err != nil {
		return nil, fmt.Errorf("the namespace probe answered %q", stdout.String())
	}
	if res.UIDs < 65536 || res.GIDs < 65536 {
		return &res, fmt.Errorf("the user namespace maps only %d uids and %d gids; images need 65536: give the user a range of 65536 in /etc/subuid and /etc/subgid", res.UIDs, res.GIDs)
	}
	return &res, nil
}

// MaybeRunProbeChild runs the probe child's side when this process was
// started as one, and reports whether it did; main then exits. It must run
// before anything that could re-execute the process (Buildah's hooks).
func MaybeRunProbeChild() bool {
	if filepath.Base(os.Args[0]) != ProbeArg0 || len(os.Args) < 2 || len(os.Args) > 3 {
		return false
	}
	if len(os.Args) == 2 {
		// This process started before its id maps existed, so the kernel
		// gave it no capabilities in the namespace. Once the parent has
		// written the maps, execute again as the namespace's root.
		var line string
		fmt.Fscanln(os.Stdin, &line)
		err := syscall.Exec("/proc/self/exe", []string{ProbeArg0, os.Args[1], "mapped"}, os.Environ())
		fmt.Fprintln(os.Stderr, "re-executing the probe:", err)
		os.Exit(1)
	}
	res := probeResult{UIDs: hostfacts.MapSize(hostfacts.ReadIDMap("/proc/self/uid_map")), GIDs: hostfacts.MapSize(hostfacts.ReadIDMap("/proc/self/gid_map"))}
	dir := os.Args[1]
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	opts := fmt.Sprintf("lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", dir, dir, dir)
	if err := unix.Mount("overlay", filepath.Join(dir, "merged"), "overlay", 0, opts); err != nil {
		res.Overlay = "overlay mount in a user namespace failed: " + err.Error()
	} else {
		unix.Unmount(filepath.Join(dir, "merged"), unix.MNT_DETACH)
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return true
}
