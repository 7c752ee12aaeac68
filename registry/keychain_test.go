package registry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/rapidfort/kimia/engine"
)

func TestKeychainNamesAConfigThatIsNotJSON(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	os.WriteFile(path, []byte("{not json"), 0o600)
	k := NewKeychain(dir)
	err := k.Check()
	if err == nil || engine.KindOf(err) != engine.KindAuth || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("Check: %v (kind %v), want an authentication error naming %s", err, engine.KindOf(err), path)
	}
	reg, _ := name.NewRegistry("registry.example")
	if _, err := k.Resolve(reg); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Resolve: %v, want the same error", err)
	}
}

func TestKeychainWithoutConfigIsAnonymous(t *testing.T) {
	k := NewKeychain("")
	if err := k.Check(); err != nil {
		t.Fatal(err)
	}
}
