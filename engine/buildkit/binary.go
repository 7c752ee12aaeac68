package buildkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/rapidfort/kimia/engine"
)

// EnvBuildkitd names the buildkitd binary to use, overriding the lookup.
const EnvBuildkitd = "KIMIA_BUILDKITD"

// findBuildkitd looks for buildkitd in $KIMIA_BUILDKITD, next to the
// kimia executable (where `make build` and the image put the pinned
// build), then on PATH.
func findBuildkitd() (string, error) {
	if p := os.Getenv(EnvBuildkitd); p != "" {
		if err := executable(p); err != nil {
			return "", engine.Errorf(engine.KindEnvironment, "%s=%s: %v", EnvBuildkitd, p, err)
		}
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		if self, err = filepath.EvalSymlinks(self); err == nil {
			p := filepath.Join(filepath.Dir(self), "buildkitd")
			if executable(p) == nil {
				return p, nil
			}
		}
	}
	if p, err := exec.LookPath("buildkitd"); err == nil {
		return p, nil
	}
	return "", engine.Errorf(engine.KindEnvironment,
		"buildkitd not found: set %s, put buildkitd next to kimia (make build does, from hack/install-buildkit.sh), or on PATH", EnvBuildkitd)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

// daemonVersion returns the version of the buildkitd at path. Running it
// costs as much as starting the daemon (its init is heavy), and Info runs
// before every build, so the answer is remembered per binary (path, size,
// modification time) in the user's cache directory when it is writable.
func daemonVersion(ctx context.Context, path string) (string, error) {
	key, cacheFile := versionCacheKey(path)
	if key != "" {
		if b, err := os.ReadFile(cacheFile); err == nil {
			if k, v, ok := strings.Cut(strings.TrimSpace(string(b)), "\t"); ok && k == key && v != "" {
				return v, nil
			}
		}
	}
	v, err := runVersion(ctx, path)
	if err == nil && key != "" {
		if os.MkdirAll(filepath.Dir(cacheFile), 0o700) == nil {
			tmp := fmt.Sprintf("%s.%d", cacheFile, os.Getpid())
			if os.WriteFile(tmp, []byte(key+"\t"+v+"\n"), 0o600) == nil {
				_ = os.Rename(tmp, cacheFile)
			}
		}
	}
	return v, err
}

// versionCacheKey identifies a buildkitd binary, and names the file that
// remembers its version; both are empty when there is no cache dir.
func versionCacheKey(path string) (key, file string) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", ""
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", ""
	}
	abs, _ := filepath.Abs(path)
	return fmt.Sprintf("%s %d %d", abs, fi.Size(), fi.ModTime().UnixNano()), filepath.Join(dir, "kimia", "buildkitd-version")
}

// runVersion runs `buildkitd --version` ("buildkitd
// github.com/moby/buildkit v0.34.2 <revision>") and returns the version.
func runVersion(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("running %s --version: %w", path, err)
	}
	f := strings.Fields(string(out))
	if len(f) < 3 {
		return "", fmt.Errorf("running %s --version: unexpected output %q", path, strings.TrimSpace(string(out)))
	}
	return f[2], nil
}

// moduleVersion is the version of BuildKit's client kimia was built with.
func moduleVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, m := range bi.Deps {
		if m.Path == "github.com/moby/buildkit" {
			if m.Replace != nil {
				return m.Replace.Version
			}
			return m.Version
		}
	}
	return "unknown"
}
