package buildkit

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"regexp"
	"strings"
)

// What a rootless build needs, in the order a start fails on it: see
// docs/security.md. Each case names the missing piece and the fix.
var (
	// rootlesskit runs newuidmap/newgidmap; when exec itself is refused,
	// the helper's file capability is outside the bounding set.
	execDenied    = regexp.MustCompile(`fork/exec (\S*new([ug])idmap): operation not permitted`)
	helperMissing = regexp.MustCompile(`exec: "?new[ug]idmap"?: executable file not found`)
)

// rootlessDiagnosis explains a failed rootless start from rootlesskit's
// log. nnp says whether kimia runs with no_new_privs.
func rootlessDiagnosis(log string, nnp bool) string {
	name := userName()
	switch {
	case strings.Contains(log, "unknown userid") || strings.Contains(log, "unknown user "):
		return fmt.Sprintf("uid %d has no entry in /etc/passwd, so its subordinate ids cannot be looked up: give the uid a name in /etc/passwd (kimia's image has one for uid 1000) and ranges in /etc/subuid and /etc/subgid", os.Getuid())
	case strings.Contains(log, "No subuid ranges") || strings.Contains(log, "No subgid ranges"):
		return fmt.Sprintf("user %s has no subordinate id range in /etc/subuid and /etc/subgid: add one as root (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s); in an image, write the files", name, name)
	case strings.Contains(log, "max_user_namespaces") || strings.Contains(log, "unprivileged_userns_clone"):
		return "unprivileged user namespaces are disabled on this node: set user.max_user_namespaces > 0 (and kernel.unprivileged_userns_clone=1 where it exists)"
	case helperMissing.MatchString(log):
		return "newuidmap and newgidmap are missing: install them (Debian: apt-get install uidmap)"
	case nnp && (strings.Contains(log, "uid_map") || strings.Contains(log, "gid_map")):
		return "kimia runs with no_new_privs (allowPrivilegeEscalation: false), so newuidmap and newgidmap cannot gain the capabilities that map the subordinate ids: set allowPrivilegeEscalation: true"
	case execDenied.MatchString(log):
		m := execDenied.FindStringSubmatch(log)
		capName := map[string]string{"u": "SETUID", "g": "SETGID"}[m[2]]
		return fmt.Sprintf("%s carries a file capability that the capability bounding set does not allow, so it cannot run: add %s (with %s, as the pod securityContext of the README does: capabilities drop ALL, add SETUID, SETGID)",
			m[1], capName, map[string]string{"SETUID": "SETGID", "SETGID": "SETUID"}[capName])
	case strings.Contains(log, "open of uid_map failed: Permission denied") || strings.Contains(log, "open of gid_map failed: Permission denied"):
		return fmt.Sprintf("%s is setuid root, and without CAP_DAC_OVERRIDE in the bounding set it cannot open this process's uid_map: put copies with file capabilities first on PATH "+
			"(cp newuidmap newgidmap DIR; setcap cap_setuid+ep DIR/newuidmap; setcap cap_setgid+ep DIR/newgidmap), as kimia's image does", lookPath("newuidmap"))
	case strings.Contains(log, "write to uid_map failed") || strings.Contains(log, "write to gid_map failed"):
		return fmt.Sprintf("newuidmap/newgidmap (%s) could not write the id maps: they need CAP_SETUID and CAP_SETGID, as setuid-root binaries or with file capabilities, and the subordinate ranges of %s in /etc/subuid and /etc/subgid must cover what they map", lookPath("newuidmap"), name)
	case strings.Contains(log, "operation not permitted") || strings.Contains(log, "permission denied"):
		return "creating the user namespace was refused: unprivileged user namespaces must be enabled, and the seccomp and AppArmor profiles must allow them: use the seccomp profile deploy/seccomp/<arch>/kimia.json (RuntimeDefault plus what user namespaces need) as a Localhost profile, and appArmorProfile Unconfined; see docs/security.md"
	}
	return "see docs/security.md for what rootless builds need"
}

func userName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}

func lookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return name
}
