package hostfacts

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
)

// qemuNames maps GOARCH to the name of its binfmt_misc entry (qemu-NAME),
// as Debian's qemu-user-static and tonistiigi/binfmt register them.
var qemuNames = map[string]string{
	"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "386": "i386", "ppc64le": "ppc64le",
	"s390x": "s390x", "riscv64": "riscv64", "mips64le": "mips64el", "loong64": "loongarch64",
}

// QEMUName is the binfmt_misc handler name for GOARCH arch (qemu-NAME), or
// "" when kimia knows none.
func QEMUName(arch string) string { return qemuNames[arch] }

var (
	// ErrNoHandler means binaries of the architecture cannot run here:
	// no QEMU handler is registered for it.
	ErrNoHandler = errors.New("no QEMU binfmt_misc handler is registered")
	// ErrNotVisible means emulation could be neither tried nor seen: a
	// probe binary could not be run here and binfmt_misc is not mounted
	// (as in most containers, which still use the node's handlers).
	ErrNotVisible = errors.New("binfmt_misc is not visible here")
)

// Native reports whether binaries of GOARCH arch run here without
// emulation: the host's own, and 386 on amd64.
func Native(arch string) bool {
	return arch == runtime.GOARCH || (runtime.GOARCH == "amd64" && arch == "386")
}

// Emulation reports whether binaries of GOARCH arch can run here: natively
// or through a QEMU handler. It runs a tiny executable of arch, which
// works wherever a handler with the F flag is registered, also inside
// containers that cannot see binfmt_misc; without one it reads
// binfmt_misc. The error wraps ErrNoHandler or ErrNotVisible, or says what
// is wrong with the handler.
func Emulation(arch string) error {
	if Native(arch) {
		return nil
	}
	if bin := tinyELF(arch); bin != nil {
		err := runTiny(bin)
		if err == nil {
			return nil
		}
		if errors.Is(err, syscall.ENOEXEC) {
			return ErrNoHandler
		}
		// Could not run it at all (a noexec TMPDIR): look at binfmt_misc.
	}
	entry := "/proc/sys/fs/binfmt_misc/qemu-" + QEMUName(arch)
	b, err := os.ReadFile(entry)
	switch {
	case err != nil:
		if _, serr := os.Stat("/proc/sys/fs/binfmt_misc/status"); serr != nil {
			return fmt.Errorf("%w; whether %s binaries run will show at the first RUN step", ErrNotVisible, arch)
		}
		return ErrNoHandler
	case !strings.HasPrefix(string(b), "enabled"):
		return fmt.Errorf("the QEMU handler %s is disabled: enable it on the node (echo 1 > %s)", entry, entry)
	case !strings.Contains(flagsLine(string(b)), "F"):
		return fmt.Errorf("the QEMU handler %s lacks the F (fix binary) flag, so it cannot run inside build containers: re-register it with F (qemu-user-static's Debian package and tonistiigi/binfmt do)", entry)
	}
	return nil
}

// runTiny writes bin to a temporary file and runs it.
func runTiny(bin []byte) error {
	f, err := os.CreateTemp("", "kimia-emulation-probe-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, werr := f.Write(bin)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		return errors.Join(werr, cerr)
	}
	if err := os.Chmod(f.Name(), 0o700); err != nil {
		return err
	}
	return exec.Command(f.Name()).Run()
}

func flagsLine(entry string) string {
	for _, l := range strings.Split(entry, "\n") {
		if strings.HasPrefix(l, "flags:") {
			return strings.TrimPrefix(l, "flags:")
		}
	}
	return ""
}
