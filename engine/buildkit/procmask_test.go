package buildkit

import (
	"os"
	"path/filepath"
	"testing"
)

func TestProcMasked(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mountinfo string
		want      bool
	}{
		{"a host's /proc with binfmt_misc is not masked",
			"22 1 0:21 / /proc rw,nosuid - proc proc rw\n45 22 0:40 / /proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw\n", false},
		{"a pod's masked /proc/kcore is masked",
			"600 599 0:55 / /proc rw - proc proc rw\n601 600 0:5 /null /proc/kcore rw - devtmpfs udev rw\n", true},
		{"a pod's read-only /proc/sys is masked",
			"600 599 0:55 / /proc rw - proc proc rw\n602 600 0:55 /sys /proc/sys ro - proc proc rw\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "mountinfo")
			os.WriteFile(p, []byte(tc.mountinfo), 0o644)
			if got := procMasked(p); got != tc.want {
				t.Errorf("procMasked = %v, want %v", got, tc.want)
			}
		})
	}
}
