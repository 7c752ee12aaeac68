// Package testenv is the environment kimia's end-to-end tests, benchmarks
// and demo build in: a real registry (CNCF Distribution) on a loopback
// port with TLS and htpasswd variants, a fault-injecting proxy in front of
// it, offline base images (busybox amd64 and arm64, a Debian minbase), file
// trees written from maps, the repository root and the tool cache.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// DevCache is where hack/ caches tools and test assets (hack/versions.sh:
// $KIMIA_DEV_CACHE, else $XDG_CACHE_HOME/kimia, else ~/.cache/kimia).
func DevCache() string {
	if d := os.Getenv("KIMIA_DEV_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "kimia")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "kimia")
}

// RepoRoot is the directory of go.mod above the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no go.mod above %s", dir)
}

// WriteFiles writes files (path → content) under dir: a path ending in
// "/" is a directory, a content starting with "->" a symbolic link to the
// rest, anything else a regular file (0644).
func WriteFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			os.Remove(full)
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
