package buildah

import (
	"os"

	"github.com/rapidfort/kimia/engine"
)

// qemuNames are the binfmt_misc handler names of Debian's
// qemu-user-static, by Go architecture.
var qemuNames = map[string]string{
	"arm64": "aarch64", "arm": "arm", "386": "i386", "ppc64le": "ppc64le",
	"s390x": "s390x", "riscv64": "riscv64", "mips64le": "mips64el", "loong64": "loongarch64", "amd64": "x86_64",
}

// isForeign reports whether binaries of p cannot run natively here.
func isForeign(p engine.Platform) bool {
	h := engine.HostPlatform()
	if p.Architecture == h.Architecture {
		return false
	}
	// amd64 hosts run 386, arm64 hosts usually run arm/v7.
	return !(h.Architecture == "amd64" && p.Architecture == "386")
}

// hasEmulator reports whether a binfmt_misc handler for p's
// architecture is registered and enabled.
func hasEmulator(p engine.Platform) bool {
	name, ok := qemuNames[p.Architecture]
	if !ok {
		return false
	}
	b, err := os.ReadFile("/proc/sys/fs/binfmt_misc/qemu-" + name)
	return err == nil && len(b) >= 7 && string(b[:7]) == "enabled"
}
