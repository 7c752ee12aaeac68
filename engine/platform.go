package engine

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/rapidfort/kimia/hostfacts"
)

// Platform is an OS, architecture and optional variant, as in
// "linux/arm64" or "linux/arm/v7".
type Platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// HostPlatform is the platform kimia runs on.
func HostPlatform() Platform {
	p := Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if p.Architecture == "arm" {
		p.Variant = "v7"
	}
	return p
}

var knownArch = map[string]bool{
	"amd64": true, "arm64": true, "arm": true, "386": true, "ppc64le": true,
	"s390x": true, "riscv64": true, "mips64le": true, "loong64": true,
}

var archAliases = map[string]string{
	"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm",
	"armel": "arm", "i386": "386",
}

// ParsePlatform parses and normalizes "os/arch[/variant]". Common
// architecture aliases (x86_64, aarch64) are accepted.
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(strings.TrimSpace(s), "/")
	if len(parts) < 2 || len(parts) > 3 {
		return Platform{}, fmt.Errorf("platform %q: want os/arch or os/arch/variant, as in linux/amd64", s)
	}
	for _, part := range parts {
		if part == "" {
			return Platform{}, fmt.Errorf("platform %q: empty component", s)
		}
	}
	p := Platform{OS: strings.ToLower(parts[0]), Architecture: strings.ToLower(parts[1])}
	if a, ok := archAliases[p.Architecture]; ok {
		p.Architecture = a
	}
	if len(parts) == 3 {
		p.Variant = strings.ToLower(parts[2])
	}
	if p.OS != "linux" {
		return Platform{}, fmt.Errorf("platform %q: only linux images can be built", s)
	}
	if !knownArch[p.Architecture] {
		return Platform{}, fmt.Errorf("platform %q: unknown architecture %q", s, parts[1])
	}
	if p.Architecture == "arm64" && p.Variant == "v8" {
		p.Variant = "" // the canonical form omits arm64's only variant
	}
	if p.Architecture == "arm" && p.Variant == "" {
		p.Variant = "v7"
	}
	return p, nil
}

// MissingEmulatorError is the error both engines give when a RUN step for
// p cannot execute because no QEMU binfmt_misc handler is registered for
// its architecture. One wording for both, so users and tests see the same.
func MissingEmulatorError(p Platform) error {
	return Errorf(KindEnvironment,
		"running a %s step on this %s machine needs a QEMU binfmt_misc handler for %s, and none is registered: "+
			"install qemu-user-static and binfmt-support, then register the handlers as root "+
			"(hack/setup-binfmt.sh, or: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && update-binfmts --enable); "+
			"on a Kubernetes node, run the tonistiigi/binfmt image once with --install %s",
		p, HostPlatform(), p.Architecture, p.Architecture)
}

// Emulator reports whether binaries of p can run here, natively or
// through a QEMU handler (hostfacts.Emulation): nil, MissingEmulatorError
// when no handler is registered, or an error that says what else is in
// the way. Both engines and the preflight report ask it, so they agree.
func Emulator(p Platform) error {
	err := hostfacts.Emulation(p.Architecture)
	if errors.Is(err, hostfacts.ErrNoHandler) {
		return MissingEmulatorError(p)
	}
	return err
}

// Foreign reports whether p's binaries need emulation here.
func Foreign(p Platform) bool { return !hostfacts.Native(p.Architecture) }
