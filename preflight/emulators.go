package preflight

import (
	"fmt"
	"os"
	"strings"

	"github.com/rapidfort/kimia/engine"
)

// qemuNames maps GOARCH to the name of its binfmt_misc entry (qemu-NAME).
var qemuNames = map[string]string{
	"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "386": "i386", "ppc64le": "ppc64le",
	"s390x": "s390x", "riscv64": "riscv64", "mips64le": "mips64el", "loong64": "loongarch64",
}

// Emulator reports whether binaries of platform p can run here: natively,
// or through a registered QEMU binfmt_misc handler with the F flag (so it
// works inside containers). The error says how to install one.
func Emulator(p engine.Platform) error {
	host := engine.HostPlatform()
	if p.Architecture == host.Architecture || (host.Architecture == "amd64" && p.Architecture == "386") {
		return nil
	}
	name := qemuNames[p.Architecture]
	entry := "/proc/sys/fs/binfmt_misc/qemu-" + name
	b, err := os.ReadFile(entry)
	switch {
	case err != nil:
		if _, serr := os.Stat("/proc/sys/fs/binfmt_misc/status"); serr != nil {
			return fmt.Errorf("binfmt_misc is not mounted, so %s binaries cannot run on this %s node: mount it and register QEMU (as root on the node: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; apt-get install qemu-user-static binfmt-support; or run the tonistiigi/binfmt image with --install %s)", p, host.Architecture, p.Architecture)
		}
		return fmt.Errorf("no QEMU handler for %s (%s is missing), so RUN steps for %s cannot execute on this %s node: install one on the node (apt-get install qemu-user-static binfmt-support, or the tonistiigi/binfmt image with --install %s)", name, entry, p, host.Architecture, p.Architecture)
	case !strings.HasPrefix(string(b), "enabled"):
		return fmt.Errorf("the QEMU handler %s is disabled: enable it on the node (echo 1 > %s)", entry, entry)
	case !strings.Contains(flagsLine(string(b)), "F"):
		return fmt.Errorf("the QEMU handler %s lacks the F (fix binary) flag, so it cannot run inside build containers: re-register it with F (qemu-user-static's Debian package and tonistiigi/binfmt do)", entry)
	}
	return nil
}

func flagsLine(entry string) string {
	for _, l := range strings.Split(entry, "\n") {
		if strings.HasPrefix(l, "flags:") {
			return strings.TrimPrefix(l, "flags:")
		}
	}
	return ""
}

// emulators checks each requested foreign platform. Before a build a
// missing handler is only a warning: a build without RUN steps needs none,
// and the engine reports a RUN that does.
func emulators(platforms []engine.Platform, strict bool) []Result {
	var out []Result
	for _, p := range platforms {
		r := Result{Name: "emulation for " + p.String(), Status: OK}
		if err := Emulator(p); err != nil {
			r.Detail = err.Error()
			r.Status = Warn
			if strict {
				r.Status = Fail
			}
		} else if p.Architecture != engine.HostPlatform().Architecture {
			r.Detail = "QEMU handler qemu-" + qemuNames[p.Architecture] + " registered"
		} else {
			r.Detail = "native"
		}
		out = append(out, r)
	}
	return out
}
