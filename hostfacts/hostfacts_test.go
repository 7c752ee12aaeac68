package hostfacts

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestSubIDsMatchByNameOrUID(t *testing.T) {
	f := filepath.Join(t.TempDir(), "subuid")
	os.WriteFile(f, []byte("other:1:2\nkimia:100000:65536\n1000:200000:1000\nbroken line\nkimia:x:1\n"), 0o644)
	got := SubIDs(f, &user.User{Username: "kimia", Uid: "1000"})
	want := []SubIDRange{{100000, 65536}, {200000, 1000}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("subIDs = %v, want %v", got, want)
	}
	if got := SubIDs(f, &user.User{Username: "nobody", Uid: "65534"}); len(got) != 0 {
		t.Errorf("ranges for a user without any: %v", got)
	}
}

func TestReadIDMap(t *testing.T) {
	f := filepath.Join(t.TempDir(), "uid_map")
	os.WriteFile(f, []byte("         0       1000          1\n         1     100000      65536\n"), 0o644)
	m := ReadIDMap(f)
	if len(m) != 2 || MapSize(m) != 65537 || m[1].Outside != 100000 {
		t.Errorf("readIDMap = %+v", m)
	}
}

func TestBinfmtFlags(t *testing.T) {
	entry := "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\n"
	if !strings.Contains(flagsLine(entry), "F") {
		t.Errorf("flags of %q", entry)
	}
	if strings.Contains(flagsLine("enabled\nflags: P\n"), "F") {
		t.Error("F found where there is none")
	}
}

func TestNativePlatformNeedsNoEmulator(t *testing.T) {
	if err := Emulation(runtime.GOARCH); err != nil {
		t.Errorf("the host's own architecture: %v", err)
	}
}

func TestStatus(t *testing.T) {
	st := Status{"CapBnd": "00000000000000c0", "NoNewPrivs": "1"}
	if !st.HasCap("CapBnd", CapSetUID) || !st.HasCap("CapBnd", CapSetGID) || st.HasCap("CapBnd", CapDACOverride) {
		t.Errorf("capabilities of %v", st)
	}
	if !st.NoNewPrivs() || (Status{}).NoNewPrivs() {
		t.Error("NoNewPrivs")
	}
	if !(Status{}).HasCap("CapEff", CapSetUID) {
		t.Error("a set the kernel did not report must not block")
	}
	if ReadStatus()["Name"] == "" {
		t.Error("ReadStatus read no Name from /proc/self/status")
	}
}

// Emulation runs a tiny executable of the architecture; its answer must
// agree with what binfmt_misc says, and a disabled handler must be seen.
func TestEmulatorRunsForeignBinaries(t *testing.T) {
	if _, err := os.Stat("/proc/sys/fs/binfmt_misc/status"); err != nil {
		t.Fatal("binfmt_misc is not mounted: run hack/setup-binfmt.sh (as root) first")
	}
	for _, arch := range []string{"arm64", "arm", "riscv64", "ppc64le", "s390x"} {
		entry, err := os.ReadFile("/proc/sys/fs/binfmt_misc/qemu-" + qemuNames[arch])
		registered := err == nil && strings.HasPrefix(string(entry), "enabled")
		if got := Emulation(arch); (got == nil) != registered {
			t.Errorf("%s: Emulation = %v, but binfmt_misc says registered=%v", arch, got, registered)
		}
	}
	const entry = "/proc/sys/fs/binfmt_misc/qemu-riscv64"
	if os.Geteuid() != 0 {
		return
	}
	if b, err := os.ReadFile(entry); err != nil || !strings.HasPrefix(string(b), "enabled") {
		t.Fatalf("qemu-riscv64 is not registered: run hack/setup-binfmt.sh")
	}
	if err := os.WriteFile(entry, []byte("0"), 0); err != nil {
		t.Fatal(err)
	}
	defer os.WriteFile(entry, []byte("1"), 0)
	if err := Emulation("riscv64"); !errors.Is(err, ErrNoHandler) {
		t.Errorf("with the handler disabled: %v, want ErrNoHandler", err)
	}
}
