package buildkit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rapidfort/kimia/engine"
)

func TestCacheDirIsLockedWhileInUse(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	req := &engine.Request{Cache: engine.Cache{Enabled: true, Dir: filepath.Join(t.TempDir(), "cache")}}
	first, err := prepareState(req, false)
	if err != nil {
		t.Fatal(err)
	}
	if first.Root != filepath.Join(req.Cache.Dir, "buildkit") {
		t.Errorf("state dir %s, want it in --cache-dir", first.Root)
	}
	_, err = prepareState(req, false)
	if err == nil || engine.KindOf(err) != engine.KindEnvironment || !strings.Contains(err.Error(), "in use by another kimia (pid") {
		t.Fatalf("second user of the cache dir: %v, want an environment error naming the holder", err)
	}
	if err := first.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(first.RunDir); !os.IsNotExist(err) {
		t.Errorf("run dir %s left behind", first.RunDir)
	}
	if _, err := os.Stat(first.Root); err != nil {
		t.Errorf("the cache dir's state was removed: %v", err)
	}
	again, err := prepareState(req, false)
	if err != nil {
		t.Fatalf("after close the cache dir is still locked: %v", err)
	}
	again.close()
}

func TestTemporaryStateIsRemoved(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	st, err := prepareState(&engine.Request{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.Root, st.RunDir) {
		t.Errorf("temporary state %s outside the run dir %s", st.Root, st.RunDir)
	}
	os.WriteFile(filepath.Join(st.Root, "x"), []byte("x"), 0o600)
	if err := st.close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
}
