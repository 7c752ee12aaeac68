package buildkit

import (
	"bufio"
	"os"
	"strings"
)

// processSandboxArgs turns off BuildKit's process sandbox (a PID
// namespace and a fresh /proc for each RUN step) when a fresh /proc cannot
// be mounted: rootless, in a container whose runtime masked parts of
// /proc (every Kubernetes pod without procMount: Unmasked). rootlesskit's
// user namespace locks those masks, and the kernel refuses a new proc
// mount while locked mounts hide part of the old one, so every RUN would
// fail with "mount proc: operation not permitted". Without the sandbox,
// RUN steps share buildkitd's PID namespace, which in a pod holds only
// the build's own processes.
func processSandboxArgs(rootless bool) []string {
	if rootless && procMasked("/proc/self/mountinfo") {
		return []string{"--oci-worker-no-process-sandbox"}
	}
	return nil
}

// procMasked reports whether something is mounted over part of /proc,
// apart from binfmt_misc, which sits on an always-empty directory and
// hides nothing.
func procMasked(mountinfo string) bool {
	f, err := os.Open(mountinfo)
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		// id parent major:minor root mountpoint options ... - fstype ...
		fields := strings.Fields(s.Text())
		if len(fields) < 5 || !strings.HasPrefix(fields[4], "/proc/") {
			continue
		}
		fstype := ""
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) {
				fstype = fields[i+1]
			}
		}
		if fstype != "binfmt_misc" {
			return true
		}
	}
	return false
}
