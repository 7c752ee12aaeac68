//go:build e2e

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rapidfort/kimia/internal/testenv"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// Main sets up the environment every test uses and runs the tests:
// binaries (from $KIMIA_BIN_DIR, or built with make), the shared
// registry with the base images, and the workers named by
// $KIMIA_E2E_WORKERS (default "kimia,kimia-bud"; add kimia-rootless and
// kimia-bud-rootless to run as the unprivileged test user).
func Main(m *testing.M) int {
	if err := setup(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e setup: %v\n", err)
		return 1
	}
	defer env.Registry.Stop()
	return m.Run()
}

func setup() error {
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	e := &Env{RepoRoot: root}
	e.CacheDir = testenv.DevCache()
	binDir := os.Getenv("KIMIA_BIN_DIR")
	if binDir == "" {
		cmd := exec.Command("make", "-C", root, "build")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("make build: %w", err)
		}
		binDir = filepath.Join(root, "bin")
	}
	names := os.Getenv("KIMIA_E2E_WORKERS")
	if names == "" {
		names = "kimia,kimia-bud"
	}
	for _, n := range strings.Split(names, ",") {
		n = strings.TrimSpace(n)
		w := &Worker{Name: n, Binary: strings.TrimSuffix(n, "-rootless")}
		if w.Binary != "kimia" && w.Binary != "kimia-bud" {
			return fmt.Errorf("KIMIA_E2E_WORKERS: unknown worker %q", n)
		}
		w.Path = filepath.Join(binDir, w.Binary)
		if strings.HasSuffix(n, "-rootless") {
			u, err := user.Lookup("kimia-e2e")
			if err != nil {
				return fmt.Errorf("worker %s needs the test user kimia-e2e: run hack/setup-test-user.sh: %w", n, err)
			}
			e.TestUser = u
			w.UID, _ = strconv.Atoi(u.Uid)
			w.GID, _ = strconv.Atoi(u.Gid)
		}
		out, err := exec.Command(w.Path, "version", "--json").Output()
		if err != nil {
			return fmt.Errorf("%s version --json: %w", w.Path, err)
		}
		var v struct {
			Engine json.RawMessage `json:"engine"`
		}
		if err := json.Unmarshal(out, &v); err != nil {
			return fmt.Errorf("%s version --json: %w", w.Path, err)
		}
		if err := json.Unmarshal(v.Engine, &w.Info); err != nil {
			return err
		}
		e.Workers = append(e.Workers, w)
	}
	dir, err := os.MkdirTemp("", "kimia-e2e-registry-")
	if err != nil {
		return err
	}
	e.Registry, err = testenv.NewRegistry(dir, testenv.RegistryOptions{})
	if err != nil {
		return err
	}
	if e.Busybox, err = testenv.PushBusybox(e.Registry, e.CacheDir); err != nil {
		e.Registry.Stop()
		return err
	}
	env = e
	return nil
}
