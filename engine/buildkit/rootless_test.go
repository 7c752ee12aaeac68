package buildkit

import (
	"strings"
	"testing"
)

// The rootlesskit lines are the ones Debian's rootlesskit 1.1 prints.
func TestRootlessDiagnosis(t *testing.T) {
	for _, tt := range []struct {
		name string
		log  string
		nnp  bool
		want string
	}{
		{"setuid-root helpers under a small bounding set",
			"[rootlesskit:parent] error: failed to setup UID/GID map: newuidmap 11004 [0 1500 1 1 100000 65536] failed: newuidmap: open of uid_map failed: Permission denied",
			false, "setcap cap_setuid+ep"},
		{"file capabilities outside the bounding set",
			"[rootlesskit:parent] error: failed to setup UID/GID map: newgidmap 13046 [0 1500 1 1 100000 65536] failed: : fork/exec /opt/fcap/newgidmap: operation not permitted",
			false, "/opt/fcap/newgidmap carries a file capability that the capability bounding set does not allow, so it cannot run: add SETGID"},
		{"no_new_privs",
			"[rootlesskit:parent] error: failed to setup UID/GID map: newuidmap 13119 [0 1500 1 1 100000 65536] failed: newuidmap: write to uid_map failed: Operation not permitted",
			true, "allowPrivilegeEscalation: true"},
		{"no subordinate ids",
			`[rootlesskit:parent] error: failed to setup UID/GID map: No subuid ranges found for user 1500 ("kimia-e2e")`,
			false, "/etc/subuid and /etc/subgid"},
		{"a uid without a passwd entry",
			"[rootlesskit:parent] error: failed to setup UID/GID map: failed to compute uid/gid map: user: unknown userid 1501",
			false, "no entry in /etc/passwd"},
		{"user namespaces disabled",
			"[rootlesskit:parent] error: /proc/sys/user/max_user_namespaces needs to be set to non-zero.",
			false, "user.max_user_namespaces > 0"},
		{"helpers not installed",
			`[rootlesskit:parent] error: failed to setup UID/GID map: newuidmap 1 [0 1500 1] failed: : exec: "newuidmap": executable file not found in $PATH`,
			false, "apt-get install uidmap"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := rootlessDiagnosis(tt.log, tt.nnp); !strings.Contains(got, tt.want) {
				t.Errorf("diagnosis %q lacks %q", got, tt.want)
			}
		})
	}
}
