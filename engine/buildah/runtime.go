package buildah

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"go.podman.io/buildah/define"
	"golang.org/x/sys/unix"

	"github.com/rapidfort/kimia/engine"
)

// isolationChoice is how RUN steps are isolated, and why.
type isolationChoice struct {
	Isolation define.Isolation
	Name      string
	Reason    string
}

// chooseIsolation picks chroot isolation inside a container (a pod
// cannot run a nested OCI runtime without privileges), runc elsewhere.
// The isolation engine option, then a user-set BUILDAH_ISOLATION, win.
func chooseIsolation(opt string, userEnv string, inContainer, rootless bool) (isolationChoice, error) {
	name, reason := "", ""
	switch {
	case opt != "":
		name, reason = opt, engine.FieldEngineOptions.String()+" isolation"
	case userEnv != "":
		name, reason = strings.ToLower(userEnv), "BUILDAH_ISOLATION"
	case inContainer:
		name, reason = "chroot", "running inside a container"
	case rootless:
		name, reason = "rootless", "running as a non-root user"
	default:
		name, reason = "oci", "running as root outside a container"
	}
	var iso define.Isolation
	switch name {
	case "oci", "default":
		iso, name = define.IsolationOCI, "oci"
		if rootless {
			iso, name = define.IsolationOCIRootless, "rootless"
		}
	case "rootless":
		iso = define.IsolationOCIRootless
	case "chroot":
		iso = define.IsolationChroot
	default:
		return isolationChoice{}, engine.Errorf(engine.KindUsage, "%s=%q: want oci, rootless or chroot", reason, name)
	}
	return isolationChoice{Isolation: iso, Name: name, Reason: reason}, nil
}

// userIsolationEnv is BUILDAH_ISOLATION as the user set it, or "".
func userIsolationEnv() string {
	if os.Getenv(isolationFromUserEnv) == "" {
		return ""
	}
	return os.Getenv("BUILDAH_ISOLATION")
}

// inContainer detects a container the way Podman and Buildah do
// (/run/.containerenv, /.dockerenv, $container), plus Kubernetes, whose
// containerd pods have neither file.
func inContainer() bool {
	for _, f := range []string{"/run/.containerenv", "/.dockerenv"} {
		if _, err := os.Stat(f); err == nil {
			return true
		}
	}
	return os.Getenv("container") != "" || os.Getenv("KUBERNETES_SERVICE_HOST") != ""
}

// ulimits passes the process's own hard limits to RUN steps: Buildah's
// default (1048576 open files) needs CAP_SYS_RESOURCE, which neither a
// pod nor a rootless user has.
func ulimits() []string {
	var out []string
	for _, l := range []struct {
		name string
		res  int
	}{{"nofile", unix.RLIMIT_NOFILE}, {"nproc", unix.RLIMIT_NPROC}} {
		var r unix.Rlimit
		if err := unix.Getrlimit(l.res, &r); err != nil {
			continue
		}
		v := "-1"
		if r.Max != unix.RLIM_INFINITY && r.Max <= math.MaxInt64 {
			v = fmt.Sprint(r.Max)
		}
		out = append(out, fmt.Sprintf("%s=%s:%s", l.name, v, v))
	}
	return out
}

// prepareRuntimeDir makes sure a rootless build has a private, writable
// XDG_RUNTIME_DIR (runc keeps its state there). It returns a directory
// to remove afterwards, or "".
func prepareRuntimeDir(work string) (string, error) {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		if unix.Access(d, unix.W_OK|unix.X_OK) == nil {
			return "", nil
		}
	}
	d := filepath.Join(work, "run")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", engine.Wrap(engine.KindEnvironment, fmt.Errorf("creating XDG_RUNTIME_DIR %q: %w", d, err))
	}
	os.Setenv("XDG_RUNTIME_DIR", d)
	return d, nil
}
