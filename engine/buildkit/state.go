package buildkit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/rapidfort/kimia/engine"
)

// maxSocketPath keeps the socket path under the kernel's limit of 108
// bytes for unix socket addresses.
const maxSocketPath = 100

// state is where one build's daemon keeps things: a private run directory
// (socket, configuration, log) and the state directory, which is
// <Cache.Dir>/buildkit when caching (so the next build reuses it) and a
// directory inside the run directory otherwise.
type state struct {
	Root     string
	RunDir   string
	rootless bool
	// lock is held on the cache directory for the whole build, so that a second
	// kimia on the same cache dir fails at once with a clear message
	// instead of waiting on buildkitd's own lock.
	lock *os.File
}

func prepareState(req *engine.Request, rootless bool) (*state, error) {
	s := &state{rootless: rootless}
	if req.Cache.Enabled && req.Cache.Dir != "" {
		if err := s.lockCacheDir(req.Cache.Dir); err != nil {
			return nil, err
		}
		s.Root = filepath.Join(req.Cache.Dir, "buildkit")
		if err := os.MkdirAll(s.Root, 0o700); err != nil {
			s.close()
			return nil, engine.Errorf(engine.KindEnvironment, "%s: creating %q: %w", engine.FieldCacheDir, s.Root, err)
		}
	}
	run, err := os.MkdirTemp("", "kimia-buildkit-")
	if err == nil && len(run)+len("/buildkitd.sock") > maxSocketPath {
		os.Remove(run)
		run, err = os.MkdirTemp("/tmp", "kimia-buildkit-")
	}
	if err != nil {
		s.close()
		return nil, engine.Errorf(engine.KindEnvironment, "creating a temporary directory: %w", err)
	}
	s.RunDir = run
	if s.Root == "" {
		s.Root = filepath.Join(run, "state")
		if err := os.Mkdir(s.Root, 0o700); err != nil {
			s.close()
			return nil, engine.Errorf(engine.KindEnvironment, "creating %q: %w", s.Root, err)
		}
	}
	return s, nil
}

func (s *state) lockCacheDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return engine.Errorf(engine.KindEnvironment, "%s: creating %q: %w", engine.FieldCacheDir, dir, err)
	}
	p := filepath.Join(dir, "buildkit.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return engine.Errorf(engine.KindEnvironment, "%s: opening the lock %q: %w", engine.FieldCacheDir, p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(p)
		f.Close()
		holder := "another kimia"
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			holder = fmt.Sprintf("another kimia (pid %d)", pid)
		}
		return engine.Errorf(engine.KindEnvironment, "%s %q is in use by %s: wait for it to finish, or give each concurrent build its own %s", engine.FieldCacheDir, dir, holder, engine.FieldCacheDir)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	s.lock = f
	return nil
}

// close removes the run directory (and a temporary state dir in it) and
// releases the cache dir. Call it after the daemon stopped.
func (s *state) close() error {
	var errs []error
	if s.RunDir != "" {
		if err := removeAll(s.RunDir, s.rootless); err != nil {
			errs = append(errs, fmt.Errorf("removing %q: %w", s.RunDir, err))
		}
	}
	if s.lock != nil {
		_ = s.lock.Truncate(0)
		s.lock.Close()
		s.lock = nil
	}
	return errors.Join(errs...)
}

// removeAll removes dir. A rootless daemon's state holds files owned by
// subordinate ids (base-image files of other users), which only the
// user namespace can remove, so a failed removal is retried inside one.
func removeAll(dir string, rootless bool) error {
	err := os.RemoveAll(dir)
	if err == nil || !rootless {
		return err
	}
	rk, lerr := exec.LookPath("rootlesskit")
	if lerr != nil {
		return err
	}
	// rootlesskit's own state must not be inside what it removes.
	tmp, terr := os.MkdirTemp(filepath.Dir(dir), ".kimia-rm-")
	if terr != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command(rk, "--net=host", "--state-dir="+filepath.Join(tmp, "rk"), "rm", "-rf", "--", dir)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + tmp, "XDG_RUNTIME_DIR=" + tmp}
	if out, rerr := cmd.CombinedOutput(); rerr != nil {
		return fmt.Errorf("%w; in the user namespace: %v: %s", err, rerr, strings.TrimSpace(string(out)))
	}
	return nil
}
