// Package hostfacts reads what this process may do on this machine: its
// capabilities and no_new_privs (/proc/self/status), its user namespace's
// id maps, the subordinate id ranges of a user, and whether binaries of
// another architecture can run (QEMU binfmt_misc handlers). It imports
// nothing of kimia: the preflight report and both engines build on it, so
// each fact is read one way.
package hostfacts

import (
	"bufio"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// Capability bits (capabilities(7)).
const (
	CapDACOverride = 1
	CapSetGID      = 6
	CapSetUID      = 7
)

// Status holds the fields of /proc/self/status; empty when it cannot be
// read.
type Status map[string]string

// ReadStatus reads /proc/self/status.
func ReadStatus() Status {
	out := Status{}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return out
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// HasCap reports whether capability c is in the named set (CapBnd,
// CapEff, CapPrm, ...); a set the kernel did not report counts as holding
// it, so that a missing field never blocks a build.
func (s Status) HasCap(set string, c int) bool {
	v, ok := s[set]
	if !ok {
		return true
	}
	mask, err := strconv.ParseUint(v, 16, 64)
	if err != nil {
		return true
	}
	return mask&(1<<uint(c)) != 0
}

// NoNewPrivs reports whether no_new_privs is set: setuid bits and file
// capabilities then give nothing.
func (s Status) NoNewPrivs() bool { return s["NoNewPrivs"] == "1" }

// IDMap is one line of /proc/PID/uid_map or gid_map.
type IDMap struct{ Inside, Outside, Size uint64 }

// ReadIDMap reads a uid_map or gid_map; nil when it cannot be read.
func ReadIDMap(path string) []IDMap {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []IDMap
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		var m IDMap
		m.Inside, _ = strconv.ParseUint(f[0], 10, 64)
		m.Outside, _ = strconv.ParseUint(f[1], 10, 64)
		m.Size, _ = strconv.ParseUint(f[2], 10, 64)
		out = append(out, m)
	}
	return out
}

// MapSize is the number of ids a map maps.
func MapSize(m []IDMap) uint64 {
	var n uint64
	for _, e := range m {
		n += e.Size
	}
	return n
}

// InitialNamespace reports whether the process is in the host's user
// namespace (the identity map of all ids).
func InitialNamespace() bool {
	m := ReadIDMap("/proc/self/uid_map")
	return len(m) == 1 && m[0].Inside == 0 && m[0].Outside == 0 && m[0].Size == 4294967295
}

// SubIDRange is a range of /etc/subuid or /etc/subgid.
type SubIDRange struct{ Start, Count uint64 }

// SubIDs returns u's ranges in file (/etc/subuid or /etc/subgid), by
// name or by uid.
func SubIDs(file string, u *user.User) []SubIDRange {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []SubIDRange
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.Split(strings.TrimSpace(s.Text()), ":")
		if len(parts) != 3 || (parts[0] != u.Username && parts[0] != u.Uid) {
			continue
		}
		start, err1 := strconv.ParseUint(parts[1], 10, 64)
		count, err2 := strconv.ParseUint(parts[2], 10, 64)
		if err1 == nil && err2 == nil && count > 0 {
			out = append(out, SubIDRange{start, count})
		}
	}
	return out
}

// IDMapDiagnosisEnv carries into kimia-bud's re-executed process (a user
// namespace already made) why newuidmap and newgidmap may have failed,
// judged before the re-exec, where the bounding set and no_new_privs are
// still the caller's.
const IDMapDiagnosisEnv = "_KIMIA_BUD_IDMAP_DIAGNOSIS"
