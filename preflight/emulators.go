package preflight

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/rapidfort/kimia/engine"
)

// qemuNames maps GOARCH to the name of its binfmt_misc entry (qemu-NAME).
var qemuNames = map[string]string{
	"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "386": "i386", "ppc64le": "ppc64le",
	"s390x": "s390x", "riscv64": "riscv64", "mips64le": "mips64el", "loong64": "loongarch64",
}

// errNotVisible means emulation could be neither tried nor seen: a probe
// binary could not be run here and binfmt_misc is not mounted (as in most
// containers, which still use the node's handlers).
var errNotVisible = errors.New("binfmt_misc is not visible here")

// Emulator reports whether binaries of platform p can run here: natively
// or through a QEMU handler. It runs a tiny executable of p's architecture,
// which works wherever the node registered a handler with the F flag, also
// inside containers; without one for the architecture it reads
// binfmt_misc. The error says how to install a handler.
func Emulator(p engine.Platform) error {
	host := engine.HostPlatform()
	if p.Architecture == host.Architecture {
		return nil
	}
	name := qemuNames[p.Architecture]
	if bin := tinyELF(p.Architecture); bin != nil {
		err := runTiny(bin)
		if err == nil {
			return nil
		}
		if errors.Is(err, syscall.ENOEXEC) {
			return engine.MissingEmulatorError(p)
		}
		// Could not run it at all (a noexec TMPDIR): look at binfmt_misc.
	}
	entry := "/proc/sys/fs/binfmt_misc/qemu-" + name
	b, err := os.ReadFile(entry)
	switch {
	case err != nil:
		if _, serr := os.Stat("/proc/sys/fs/binfmt_misc/status"); serr != nil {
			return fmt.Errorf("%w; whether %s binaries run will show at the first RUN step", errNotVisible, p)
		}
		return engine.MissingEmulatorError(p)
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
			if strict && !errors.Is(err, errNotVisible) {
				r.Status = Fail
			}
		} else if p.Architecture != engine.HostPlatform().Architecture {
			r.Detail = p.Architecture + " binaries run here (QEMU handler qemu-" + qemuNames[p.Architecture] + ")"
		} else {
			r.Detail = "native"
		}
		out = append(out, r)
	}
	return out
}
