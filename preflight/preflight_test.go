package preflight

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rapidfort/kimia/engine"
)

func TestSubIDsMatchByNameOrUID(t *testing.T) {
	f := filepath.Join(t.TempDir(), "subuid")
	os.WriteFile(f, []byte("other:1:2\nkimia:100000:65536\n1000:200000:1000\nbroken line\nkimia:x:1\n"), 0o644)
	got := subIDs(f, &user.User{Username: "kimia", Uid: "1000"})
	want := []SubIDRange{{100000, 65536}, {200000, 1000}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("subIDs = %v, want %v", got, want)
	}
	if got := subIDs(f, &user.User{Username: "nobody", Uid: "65534"}); len(got) != 0 {
		t.Errorf("ranges for a user without any: %v", got)
	}
}

func TestReadIDMap(t *testing.T) {
	f := filepath.Join(t.TempDir(), "uid_map")
	os.WriteFile(f, []byte("         0       1000          1\n         1     100000      65536\n"), 0o644)
	m := readIDMap(f)
	if len(m) != 2 || mapSize(m) != 65537 || m[1].Outside != 100000 {
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
	if err := Emulator(engine.HostPlatform()); err != nil {
		t.Errorf("the host's own platform: %v", err)
	}
}

func TestFailedNamesEveryFailureAndItsFix(t *testing.T) {
	err := Failed([]Result{
		{Name: "a", Status: OK, Detail: "fine"},
		{Name: "b", Status: Fail, Detail: "broken", Fix: "mend it"},
		{Name: "c", Status: Warn, Detail: "meh"},
		{Name: "d", Status: Fail, Detail: "gone"},
	}, " (skip these checks with --no-preflight)")
	if !errors.Is(err, engine.ErrEnvironment) {
		t.Fatalf("error %v is not an environment error", err)
	}
	for _, s := range []string{"b: broken; mend it", "d: gone", "--no-preflight"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q lacks %q", err, s)
		}
	}
	if Failed([]Result{{Status: OK}, {Status: Warn}}, "") != nil {
		t.Error("warnings are not failures")
	}
}

func TestFailedKindSaysWhoIsAtFault(t *testing.T) {
	deny := func(k engine.Kind) Result {
		return pushAccess(context.Background(), "r.example/a:1", func(context.Context, string) error { return engine.Errorf(k, "no") })
	}
	machine := Result{Name: "runc", Status: Fail, Detail: "missing"}
	for _, tc := range []struct {
		name    string
		results []Result
		want    engine.Kind
	}{
		{"a registry that refuses the upload is a registry error", []Result{deny(engine.KindRegistry)}, engine.KindRegistry},
		{"rejected credentials are an auth error", []Result{deny(engine.KindAuth)}, engine.KindAuth},
		{"auth wins over another destination's registry error", []Result{deny(engine.KindRegistry), deny(engine.KindAuth)}, engine.KindAuth},
		{"a broken machine wins over destinations", []Result{deny(engine.KindAuth), machine}, engine.KindEnvironment},
		{"the machine alone is an environment error", []Result{machine}, engine.KindEnvironment},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := engine.KindOf(Failed(tc.results, "")); got != tc.want {
				t.Errorf("kind %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPushAccessExplainsAuthFailures(t *testing.T) {
	r := pushAccess(context.Background(), "r.example/a:1", func(context.Context, string) error {
		return engine.Errorf(engine.KindAuth, "UNAUTHORIZED")
	})
	if r.Status != Fail || !strings.Contains(r.Fix, "dockerconfigjson") {
		t.Errorf("result %+v", r)
	}
}

// Emulator runs a tiny executable of the architecture; its answer must
// agree with what binfmt_misc says, and a disabled handler must be seen.
func TestEmulatorRunsForeignBinaries(t *testing.T) {
	if _, err := os.Stat("/proc/sys/fs/binfmt_misc/status"); err != nil {
		t.Fatal("binfmt_misc is not mounted: run hack/setup-binfmt.sh (as root) first")
	}
	for _, arch := range []string{"arm64", "arm", "riscv64", "ppc64le", "s390x"} {
		p := engine.Platform{OS: "linux", Architecture: arch}
		entry, err := os.ReadFile("/proc/sys/fs/binfmt_misc/qemu-" + qemuNames[arch])
		registered := err == nil && strings.HasPrefix(string(entry), "enabled")
		if got := Emulator(p); (got == nil) != registered {
			t.Errorf("%s: Emulator = %v, but binfmt_misc says registered=%v", arch, got, registered)
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
	err := Emulator(engine.Platform{OS: "linux", Architecture: "riscv64"})
	if !errors.Is(err, engine.ErrEnvironment) || !strings.Contains(err.Error(), "QEMU") {
		t.Errorf("with the handler disabled: %v, want the missing-emulator error", err)
	}
}
