package buildkit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moby/buildkit/client"

	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/hostfacts"
)

// Timeouts of the daemon's lifecycle.
const (
	readyTimeout = 60 * time.Second
	// stopGrace is how long buildkitd gets after SIGTERM to cancel its
	// RUN containers and unmount, before it is killed.
	stopGrace = 10 * time.Second
)

// daemonSpec says how to run one buildkitd.
type daemonSpec struct {
	// Binary is buildkitd's path.
	Binary string
	// Root is the state directory (--root).
	Root string
	// RunDir is a private directory for the socket, the configuration,
	// the log and, rootless, XDG_RUNTIME_DIR.
	RunDir   string
	Config   []byte
	Rootless bool
	// Debug runs buildkitd with --debug and copies its log to Log.
	Debug bool
	Log   *slog.Logger
}

// daemon is a running buildkitd, kimia's child for one build.
type daemon struct {
	spec    daemonSpec
	cmd     *exec.Cmd
	sock    string
	logPath string
	exited  chan struct{}
	waitErr error
}

// startDaemon starts buildkitd; waitReady tells when it serves.
//
// As root, buildkitd runs in a private mount namespace, so whatever it
// mounts goes away with it even if it is killed. As an unprivileged user
// it runs under rootlesskit, which maps the user's subordinate ids into a
// user namespace (through newuidmap/newgidmap) and shares the host's
// network, so RUN reaches what kimia reaches.
func startDaemon(spec daemonSpec) (*daemon, error) {
	d := &daemon{
		spec:    spec,
		sock:    filepath.Join(spec.RunDir, "buildkitd.sock"),
		logPath: filepath.Join(spec.RunDir, "buildkitd.log"),
		exited:  make(chan struct{}),
	}
	if _, err := os.Lstat(d.sock); err == nil {
		return nil, engine.Errorf(engine.KindEnvironment, "a socket %q already exists: another buildkitd may be using this run directory; remove it if no kimia is running", d.sock)
	}
	cfgPath := filepath.Join(spec.RunDir, "buildkitd.toml")
	if err := os.WriteFile(cfgPath, spec.Config, 0o600); err != nil {
		return nil, engine.Errorf(engine.KindEnvironment, "writing %q: %w", cfgPath, err)
	}
	args := []string{"--config", cfgPath, "--root", spec.Root, "--addr", "unix://" + d.sock}
	args = append(args, processSandboxArgs(spec.Rootless)...)
	if spec.Debug {
		args = append(args, "--debug")
	}

	var cmd *exec.Cmd
	attr := &syscall.SysProcAttr{
		// Own process group: a Ctrl-C on the terminal reaches kimia,
		// which stops the daemon in order, not the daemon directly.
		Setpgid: true,
		// If kimia is killed outright, the daemon does not outlive it
		// holding the state dir's lock.
		Pdeathsig: syscall.SIGTERM,
	}
	if spec.Rootless {
		rk, err := exec.LookPath("rootlesskit")
		if err != nil {
			return nil, engine.Errorf(engine.KindEnvironment, "running as uid %d needs rootlesskit on PATH (Debian: apt-get install rootlesskit uidmap): %v", os.Getuid(), err)
		}
		rkArgs := []string{"--net=host", "--state-dir=" + filepath.Join(spec.RunDir, "rootlesskit"), spec.Binary}
		cmd = exec.Command(rk, append(rkArgs, args...)...)
	} else {
		cmd = exec.Command(spec.Binary, args...)
		attr.Unshareflags = syscall.CLONE_NEWNS // Go makes the new namespace's mounts private
	}
	cmd.SysProcAttr = attr
	cmd.Dir = spec.RunDir
	cmd.Env = daemonEnv(spec)
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, engine.Errorf(engine.KindEnvironment, "creating %q: %w", d.logPath, err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	d.cmd = cmd
	if spec.Log != nil {
		spec.Log.Debug("starting buildkitd", "argv", strings.Join(cmd.Args, " "), "config", string(spec.Config))
	}
	if err := cmd.Start(); err != nil {
		return nil, engine.Errorf(engine.KindEnvironment, "starting %s: %w", cmd.Path, err)
	}
	go func() {
		d.waitErr = cmd.Wait()
		close(d.exited)
	}()
	return d, nil
}

// daemonEnv is buildkitd's whole environment: what it needs and nothing
// else, so that secrets in kimia's environment (tokens, passwords,
// secret values) never reach it.
func daemonEnv(spec daemonSpec) []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, k := range []string{"TMPDIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	home := os.Getenv("HOME")
	if home == "" {
		home = spec.RunDir
	}
	env = append(env, "HOME="+home)
	if spec.Rootless {
		// buildkitd switches to its rootless defaults only when USER
		// names a non-root user; rootless runc keeps its state under
		// XDG_RUNTIME_DIR.
		name := os.Getenv("USER")
		if name == "" || name == "root" {
			name = "kimia"
			if u, err := user.Current(); err == nil && u.Username != "" && u.Username != "root" {
				name = u.Username
			}
		}
		env = append(env, "USER="+name, "LOGNAME="+name, "XDG_RUNTIME_DIR="+spec.RunDir)
	}
	return env
}

// waitReady waits until buildkitd answers ListWorkers, and returns a
// client and its workers. If the daemon exits first, the error carries
// the end of its log at once.
func (d *daemon) waitReady(ctx context.Context) (*client.Client, []*client.WorkerInfo, error) {
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		if _, err := os.Stat(d.sock); err == nil {
			// A fresh client each attempt: gRPC backs off for a second
			// after a failed dial, longer than the daemon takes.
			c, err := client.New(ctx, "unix://"+d.sock)
			if err == nil {
				lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				ws, err := c.ListWorkers(lctx)
				cancel()
				if err == nil && len(ws) > 0 {
					return c, ws, nil
				}
				lastErr = err
				c.Close()
			} else {
				lastErr = err
			}
		}
		select {
		case <-d.exited:
			return nil, nil, d.exitError()
		case <-ctx.Done():
			return nil, nil, context.Cause(ctx)
		case <-deadline.C:
			return nil, nil, engine.Errorf(engine.KindEnvironment, "buildkitd did not become ready in %s (last error: %v)%s", readyTimeout, lastErr, d.tail())
		case <-tick.C:
		}
	}
}

// exitError explains why the daemon exited before it was ready.
func (d *daemon) exitError() error {
	log := d.tail()
	what := "rootless buildkitd (under rootlesskit)"
	if !d.spec.Rootless {
		what = "buildkitd"
	}
	msg := fmt.Sprintf("%s exited before it was ready (%v)", what, d.waitErr)
	if hint := diagnose(log, d.spec); hint != "" {
		msg += ": " + hint
	}
	return engine.Errorf(engine.KindEnvironment, "%s%s", msg, log)
}

// diagnose turns known start failures into what to do about them.
func diagnose(log string, spec daemonSpec) string {
	switch {
	case strings.Contains(log, "another instance running") || strings.Contains(log, "could not lock"):
		return fmt.Sprintf("the state directory %q is locked by another buildkitd (left by a kimia that was killed?); stop that process or use another %s", spec.Root, engine.FieldCacheDir)
	case spec.Rootless:
		return rootlessDiagnosis(log, hostfacts.ReadStatus().NoNewPrivs())
	}
	return ""
}

// tail returns the last lines of the daemon's log, indented, for error
// messages.
func (d *daemon) tail() string {
	b, err := os.ReadFile(d.logPath)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return ""
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "\nbuildkitd log (last lines):\n  " + strings.Join(lines, "\n  ")
}

// hasExited reports whether the daemon process has ended.
func (d *daemon) hasExited() bool {
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}

// stop ends the daemon: SIGTERM, a grace period, then SIGKILL to its
// whole process group. It is safe to call more than once.
func (d *daemon) stop() error {
	select {
	case <-d.exited:
		return nil
	default:
	}
	pid := d.cmd.Process.Pid
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-d.exited:
		return nil
	case <-t.C:
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		return fmt.Errorf("buildkitd (pid %d) did not exit after SIGKILL", pid)
	}
	return errors.New("buildkitd did not stop within " + stopGrace.String() + " of SIGTERM and was killed")
}

// copyDebugLog copies the daemon's log to the kimia log at debug level.
func (d *daemon) copyDebugLog() {
	if d.spec.Log == nil || !d.spec.Debug {
		return
	}
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		d.spec.Log.Debug("buildkitd: " + line)
	}
}
