package buildah

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/buildah"
	"go.podman.io/storage/pkg/unshare"
	"golang.org/x/sys/unix"

	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/hostfacts"
)

// isolationFromUserEnv records, across the rootless re-exec, whether
// BUILDAH_ISOLATION came from the user: Buildah sets it to "rootless" in
// the re-executed child, where it would otherwise hide the automatic
// choice.
const isolationFromUserEnv = "_KIMIA_BUD_ISOLATION_FROM_USER"

// helperDiagnosisEnv carries, across the re-exec, why newuidmap and
// newgidmap may fail: the capability bounding set and no_new_privs can
// only be judged outside the new user namespace. kimia-bud check reads
// it too.
const helperDiagnosisEnv = hostfacts.IDMapDiagnosisEnv

// InitReexec runs Buildah's re-exec hooks; main returns at once when it
// reports true, and exits with the error's code when there is one (an
// environment error: this machine cannot make the user namespace). As a non-root user it then re-executes the binary inside
// a user namespace with the user's subordinate ids mapped (through
// newuidmap and newgidmap), so that the rest of the process, store work
// included, runs as root of that namespace. It must run before any
// goroutine or flag parsing: it may exec.
func InitReexec() (bool, error) {
	capHelperLogLevel()
	if buildah.InitReexec() {
		return true, nil
	}
	if len(os.Args) > 0 && os.Args[0] == userNSProbe {
		os.Exit(0)
	}
	if noEngineWork(os.Args[1:]) {
		return false, nil
	}
	if _, ok := os.LookupEnv(unshare.UsernsEnvName); !ok {
		if _, ok := os.LookupEnv("BUILDAH_ISOLATION"); ok {
			os.Setenv(isolationFromUserEnv, "1")
		}
		if os.Geteuid() != 0 {
			if err := rootlessPrerequisites(); err != nil {
				return false, engine.Wrap(engine.KindEnvironment, err)
			}
			if d := helperDiagnosis(); d != "" {
				os.Setenv(helperDiagnosisEnv, d)
			}
		}
	}
	unshare.MaybeReexecUsingUserNamespace(false)
	return false, nil
}

// noEngineWork reports invocations that never build (help, version), so
// they do not pay for a user namespace.
func noEngineWork(args []string) bool {
	if len(args) == 0 {
		return true
	}
	switch args[0] {
	case "version", "help", "--help", "-h", "--version", "h":
		return true
	}
	return false
}

// rootlessPrerequisites checks, before re-executing, what the user
// namespace needs, so that a missing piece is named instead of failing
// deep inside containers/storage.
func rootlessPrerequisites() error {
	if _, err := user.Current(); err != nil {
		return fmt.Errorf("uid %d has no entry in /etc/passwd (%v): a rootless build needs a named user with ranges in /etc/subuid and /etc/subgid", os.Geteuid(), err)
	}
	for _, helper := range []string{"newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(helper); err != nil {
			return fmt.Errorf("%s is not on PATH: install the uidmap package (a rootless build maps the user's subordinate ids with it)", helper)
		}
	}
	return canCreateUserNamespace()
}

// canCreateUserNamespace re-executes kimia-bud into a new user namespace
// with containers/storage's own machinery (unshare(2) before the Go
// runtime starts, the same syscalls as the real re-exec), so that a
// refusal is explained instead of ending in a bare exit status 1.
func canCreateUserNamespace() error {
	cmd := unshare.Command(userNSProbe)
	cmd.UnshareFlags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS
	// The caller's own ids, which need no helper: only whether the
	// namespace can be made is in question here.
	cmd.UidMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Geteuid()), Size: 1}}
	cmd.GidMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getegid()), Size: 1}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if b, rerr := os.ReadFile("/proc/sys/user/max_user_namespaces"); rerr == nil && strings.TrimSpace(string(b)) == "0" {
		return fmt.Errorf("unprivileged user namespaces are disabled on this node (user.max_user_namespaces = 0): set it above 0 (sysctl -w user.max_user_namespaces=15000)")
	}
	why := strings.TrimSpace(stderr.String())
	if why == "" {
		why = err.Error()
	}
	return fmt.Errorf("creating a user namespace was refused (%s): the seccomp or AppArmor profile must allow unshare, mount and umount2 for a rootless build (in a pod: seccompProfile Localhost deploy/seccomp/<arch>/kimia.json, or Unconfined; see docs/security.md)", why)
}

// userNSProbe is the name the probe runs kimia-bud under.
const userNSProbe = "kimia-bud-userns-probe"

// idMapping summarizes the user namespace the process runs in.
type idMapping struct {
	Rootless bool
	// UIDs and GIDs count the mapped ids.
	UIDs, GIDs uint64
}

func currentMapping() (idMapping, error) {
	m := idMapping{Rootless: unshare.IsRootless()}
	var err error
	if m.UIDs, err = mappedIDs("/proc/self/uid_map"); err != nil {
		return m, err
	}
	m.GIDs, err = mappedIDs("/proc/self/gid_map")
	return m, err
}

func mappedIDs(path string) (uint64, error) {
	m := hostfacts.ReadIDMap(path)
	if m == nil {
		return 0, fmt.Errorf("reading %s: no id map", path)
	}
	return hostfacts.MapSize(m), nil
}

// checkMapping refuses a rootless build whose user namespace maps a
// single id: newuidmap or newgidmap failed and containers/storage fell
// back silently. Such a build breaks on the first chown, so kimia-bud
// says why and what to change, unless the user asked for it.
func checkMapping(m idMapping, allowSingle bool) error {
	if !m.Rootless || (m.UIDs > 1 && m.GIDs > 1) || allowSingle {
		return nil
	}
	return engine.Errorf(engine.KindEnvironment, "rootless build without subordinate ids: the user namespace maps %d uid(s) and %d gid(s), because %s. "+
		"Fix: %s; or pass "+engine.FieldEngineOptions.String()+" allow-single-id-mapping=true to build with one id (chown and USER with other ids then fail)",
		m.UIDs, m.GIDs, mappingDiagnosis(), mappingFix())
}

// mappingDiagnosis explains, as far as the process can tell, why the
// helpers could not map the subordinate ids.
func mappingDiagnosis() string {
	uid := unshare.GetRootlessUID()
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	uids, gids, err := unshare.GetSubIDMappings(name, name)
	if err != nil || len(uids) == 0 || len(gids) == 0 {
		return fmt.Sprintf("user %s has no ranges in /etc/subuid or /etc/subgid", name)
	}
	if d := os.Getenv(helperDiagnosisEnv); d != "" {
		return d
	}
	return fmt.Sprintf("newuidmap/newgidmap failed for user %s (see the warnings above)", name)
}

// helperDiagnosis judges, before the re-exec, whether newuidmap and
// newgidmap can work for this process; "" when nothing is wrong.
func helperDiagnosis() string {
	st := hostfacts.ReadStatus()
	if st.NoNewPrivs() {
		return "no_new_privs is set (allowPrivilegeEscalation: false), which disables setuid and file capabilities on newuidmap and newgidmap"
	}
	for _, h := range []struct {
		name string
		cap  int
	}{{"newuidmap", unix.CAP_SETUID}, {"newgidmap", unix.CAP_SETGID}} {
		path, err := exec.LookPath(h.name)
		if err != nil {
			return h.name + " is not on PATH"
		}
		fi, err := os.Stat(path)
		if err != nil {
			continue
		}
		if fi.Mode()&os.ModeSetuid != 0 && !st.HasCap("CapBnd", unix.CAP_DAC_OVERRIDE) {
			return fmt.Sprintf("%s is setuid-root, and with a capability bounding set without CAP_DAC_OVERRIDE (as in a pod that keeps only SETUID and SETGID) it cannot open the caller's /proc/PID/%s_map", path, strings.TrimSuffix(strings.TrimPrefix(h.name, "new"), "map"))
		}
		if !st.HasCap("CapBnd", h.cap) {
			return fmt.Sprintf("the capability bounding set lacks %s, which %s needs", map[int]string{unix.CAP_SETUID: "CAP_SETUID", unix.CAP_SETGID: "CAP_SETGID"}[h.cap], path)
		}
	}
	return ""
}

func mappingFix() string {
	return "give the user ranges in /etc/subuid and /etc/subgid, and make newuidmap and newgidmap work: in a pod with only SETUID and SETGID, " +
		"put copies with file capabilities first on PATH (cp /usr/bin/newuidmap /usr/bin/newgidmap DIR; setcap cap_setuid+ep DIR/newuidmap; setcap cap_setgid+ep DIR/newgidmap; not setuid) " +
		"and keep allowPrivilegeEscalation: true (see docs/security.md)"
}
