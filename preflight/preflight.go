// Package preflight checks, before a build and in `kimia check`, that this
// machine and pod can do what the build needs: user namespaces with a full
// subordinate-id map, overlay mounts in them, QEMU for foreign platforms,
// runc, the engine's daemon, registry access and disk space. Every failure
// names the securityContext field, node setting or package to change.
package preflight

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/rapidfort/kimia/engine"
)

// Status of one check.
type Status string

// Statuses.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Result is the outcome of one check.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Detail says what was found.
	Detail string `json:"detail"`
	// Fix says what to change when the check did not pass.
	Fix string `json:"fix,omitempty"`
	// kind is the error kind of a failure that is not the machine's (the
	// zero value means Environment).
	kind engine.Kind
}

// Options says what to check.
type Options struct {
	Info      engine.Info
	Platforms []engine.Platform
	// CacheDir is where the build keeps state ("" means TMPDIR).
	CacheDir string
	// Probe runs the live probes (a user namespace, an overlay mount);
	// without it only cheap file reads are done.
	Probe bool
	// Destinations are checked by PushCheck, when set.
	Destinations []string
	PushCheck    func(ctx context.Context, dest string) error
}

// Run runs the checks.
func Run(ctx context.Context, o Options) []Result {
	var out []Result
	out = append(out, userNamespace(o.Probe)...)
	out = append(out, emulators(o.Platforms, o.Probe)...)
	out = append(out, runtimeBinary(o.Probe))
	if o.Info.Daemon != nil || o.Info.Name == "buildkit" {
		out = append(out, daemon(o.Info))
	}
	out = append(out, diskSpace(o.CacheDir))
	for _, d := range o.Destinations {
		out = append(out, pushAccess(ctx, d, o.PushCheck))
	}
	return out
}

// Failed returns the failed checks as one error, nil when nothing
// failed. Its kind is Environment when the machine is at fault; when only
// destinations failed, that of their failure (Auth before Registry), so
// that the exit code tells a credentials problem from a broken node. hint
// ends the message (the check before a build says how to skip it).
func Failed(results []Result, hint string) error {
	var msgs []string
	var kind engine.Kind // the zero value, KindInternal: nothing yet
	for _, r := range results {
		if r.Status != Fail {
			continue
		}
		msg := r.Name + ": " + r.Detail
		if r.Fix != "" {
			msg += "; " + r.Fix
		}
		msgs = append(msgs, msg)
		switch k := r.kind; {
		case k == engine.KindInternal || kind == engine.KindEnvironment:
			kind = engine.KindEnvironment
		case kind == engine.KindInternal || k == engine.KindAuth:
			kind = k
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return engine.Errorf(kind, "preflight: %s%s", strings.Join(msgs, "; "), hint)
}

// runtimeBinary finds runc; with probe it also runs it, which costs a
// process start that the check before every build does without.
func runtimeBinary(probe bool) Result {
	r := Result{Name: "runc"}
	path, err := exec.LookPath("runc")
	if err != nil {
		r.Status, r.Detail, r.Fix = Fail, "runc is not on PATH", "install runc (Debian package runc); kimia's images include it"
		return r
	}
	if !probe {
		r.Status, r.Detail = OK, path
		return r
	}
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		r.Status, r.Detail = Fail, fmt.Sprintf("%s --version: %v", path, err)
		return r
	}
	r.Status, r.Detail = OK, path+": "+firstLine(string(out))
	return r
}

func daemon(info engine.Info) Result {
	r := Result{Name: "buildkitd"}
	if info.Daemon == nil || info.Daemon.Path == "" {
		r.Status, r.Detail, r.Fix = Fail, "buildkitd was not found", "put buildkitd next to kimia, on PATH, or name it with $KIMIA_BUILDKITD (hack/install-buildkit.sh builds the pinned version)"
		return r
	}
	r.Status, r.Detail = OK, fmt.Sprintf("%s %s (%s)", info.Daemon.Name, info.Daemon.Version, info.Daemon.Path)
	return r
}

func diskSpace(dir string) Result {
	r := Result{Name: "disk space"}
	if dir == "" {
		dir = os.TempDir()
	}
	probe := dir
	for probe != "/" {
		if _, err := os.Stat(probe); err == nil {
			break
		}
		probe = parent(probe)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(probe, &st); err != nil {
		r.Status, r.Detail = Warn, fmt.Sprintf("statfs %s: %v", probe, err)
		return r
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	r.Detail = fmt.Sprintf("%s free in %s", human(free), probe)
	switch {
	case free < 256<<20:
		r.Status, r.Fix = Fail, "give the pod more ephemeral storage, or put --cache-dir (and TMPDIR) on a larger volume"
	case free < 2<<30:
		r.Status, r.Fix = Warn, "a large image may not fit; consider a larger volume for --cache-dir and TMPDIR"
	default:
		r.Status = OK
	}
	return r
}

func pushAccess(ctx context.Context, dest string, check func(context.Context, string) error) Result {
	r := Result{Name: "push access to " + dest}
	if check == nil {
		r.Status, r.Detail = Skip, "not checked"
		return r
	}
	if err := check(ctx, dest); err != nil {
		r.Status, r.Detail, r.kind = Fail, err.Error(), engine.KindRegistry
		switch engine.KindOf(err) {
		case engine.KindAuth:
			r.kind = engine.KindAuth
			r.Fix = "put credentials for the registry in the docker config.json that $DOCKER_CONFIG names (in a pod: mount a kubernetes.io/dockerconfigjson Secret there)"
		default:
			r.Fix = "check the registry's address and that the pod can reach it (NetworkPolicy, proxy); for plain HTTP add --insecure-registry"
		}
		return r
	}
	r.Status, r.Detail = OK, "the registry accepts an upload"
	return r
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func parent(p string) string {
	i := strings.LastIndexByte(strings.TrimRight(p, "/"), '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

func human(n int64) string {
	const gib = 1 << 30
	if n >= gib {
		return fmt.Sprintf("%.1f GiB", float64(n)/gib)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}
