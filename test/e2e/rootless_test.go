//go:build e2e

package e2e

// kimia as an unprivileged user, and as the seed README's Kubernetes Job
// runs it: a non-root uid whose capability bounding set holds only SETUID
// and SETGID, privilege escalation allowed (setpriv simulates the pod's
// securityContext). docs/security.md explains what each piece is for.

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rapidfort/kimia/engine"
)

const testUser = "kimia-e2e"

// rootlessSandbox returns a sandbox whose kimia runs as the test user.
func rootlessSandbox(t *testing.T, sb *Sandbox) *Sandbox {
	t.Helper()
	sb.Require(engine.FeatureRootless)
	if sb.Rootless() {
		return sb
	}
	u, err := user.Lookup(testUser)
	if err != nil {
		t.Fatalf("the rootless tests need the user %s with subordinate ids: run hack/setup-test-user.sh: %v", testUser, err)
	}
	w := *sb.Worker
	w.Name += "-rootless"
	w.UID, _ = strconv.Atoi(u.Uid)
	w.GID, _ = strconv.Atoi(u.Gid)
	if env.TestUser == nil {
		env.TestUser = u
	}
	return newSandbox(t, &w)
}

// rootlessDockerfile needs a full subordinate id mapping: files owned by
// another user than root, and RUN as root inside.
func rootlessDockerfile(sb *Sandbox) map[string]string {
	return map[string]string{
		"Dockerfile": "FROM " + sb.Busybox() + " AS build\n" +
			"RUN id -u > /uid\n" +
			"FROM " + sb.Busybox() + "\n" +
			"COPY --from=build /uid /uid\n" +
			"RUN mkdir /data && echo owned > /data/file && chown -R 1000:1000 /data && chmod 0750 /data\n" +
			"COPY --chown=2000:3000 f.txt /f.txt\n" +
			"USER 1000:1000\nRUN echo as-1000 > /data/again\n",
		"f.txt": "f\n",
	}
}

func checkRootlessImage(t *testing.T, sb *Sandbox, ref string) {
	t.Helper()
	files := Files(t, sb.Registry.Image(t, ref))
	fileIs(t, files, "uid", "0\n", 0, 0, 0)
	fileIs(t, files, "data/file", "owned\n", 0o644, 1000, 1000)
	fileIs(t, files, "data/again", "as-1000\n", 0o644, 1000, 1000)
	fileIs(t, files, "f.txt", "f\n", 0o644, 2000, 3000)
	if d := files["data"]; d.UID != 1000 || d.Mode != 0o750 {
		t.Errorf("/data: uid %d mode %o, want 1000 and 0750", d.UID, d.Mode)
	}
}

func TestRootlessBuild(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		rb := rootlessSandbox(t, sb)
		ctx := rb.Context(rootlessDockerfile(rb))
		_, ref, md := buildAndPush(t, rb, "rootless", ctx, "--cache", "--cache-dir="+rb.Join("cache"), "--no-push-cache")
		if !md.Engine.Rootless {
			t.Errorf("metadata says the build was not rootless: %+v", md.Engine)
		}
		checkRootlessImage(t, rb, ref)
		// The cache dir holds files of subordinate ids; a second run
		// reuses it and the sandbox can still be removed.
		_, _, md2 := buildAndPush(t, rb, "rootless", ctx, "--cache", "--cache-dir="+rb.Join("cache"), "--no-push-cache")
		if md2.Cache == nil || md2.Cache.Cached == 0 {
			t.Errorf("rootless rebuild: cache stats %+v, want cached steps", md2.Cache)
		}
		assertNothingLeft(t, rb)
	})
}

// podRun runs kimia as the pod securityContext of the seed README would:
// setpriv to the test user with the given bounding set, no inheritable
// capabilities, and pathPrefix first on PATH.
func podRun(t *testing.T, sb *Sandbox, bounding string, noNewPrivs bool, pathPrefix string, args ...string) *Result {
	t.Helper()
	sp := []string{"--reuid", strconv.Itoa(sb.UID), "--regid", strconv.Itoa(sb.GID), "--init-groups",
		"--bounding-set=" + bounding, "--inh-caps=-all"}
	if noNewPrivs {
		sp = append(sp, "--no-new-privs")
	}
	cmd := exec.Command("setpriv", append(append(sp, sb.Path), args...)...)
	cmd.Dir = sb.Dir
	for _, kv := range sb.environ() {
		if p, ok := strings.CutPrefix(kv, "PATH="); ok && pathPrefix != "" {
			kv = "PATH=" + pathPrefix + ":" + p
		}
		cmd.Env = append(cmd.Env, kv)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	err := cmd.Run()
	r := &Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Duration: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running setpriv: %v", err)
	}
	t.Logf("%s (pod: bounding %s, no_new_privs %v, PATH+%s) %s: exit %d in %.1fs", sb.Name, bounding, noNewPrivs, pathPrefix, strings.Join(args, " "), r.Code, r.Duration.Seconds())
	return r
}

// fileCapHelpers makes copies of newuidmap and newgidmap that carry file
// capabilities instead of the setuid bit, as kimia's image ships them.
func fileCapHelpers(t *testing.T) string {
	t.Helper()
	setcap, err := exec.LookPath("setcap")
	if err != nil {
		t.Fatalf("setcap is missing (Debian package libcap2-bin; run hack/setup.sh): %v", err)
	}
	dir, err := os.MkdirTemp("", "kimia-e2e-fcap-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	for tool, c := range map[string]string{"newuidmap": "cap_setuid+ep", "newgidmap": "cap_setgid+ep"} {
		src, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s is missing (Debian package uidmap): %v", tool, err)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, tool)
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(setcap, c, dst).CombinedOutput(); err != nil {
			t.Fatalf("setcap %s %s: %v: %s", c, dst, err, out)
		}
	}
	return dir
}

func TestPodSecurityContext(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		rb := rootlessSandbox(t, sb)
		fcap := fileCapHelpers(t)
		ctx := rb.Context(rootlessDockerfile(rb))
		build := func(name string) []string {
			return append([]string{"--context=" + ctx, "--destination=" + rb.Registry.Ref(freshRepo(rb, name)+":1")}, rb.Registry.Flags()...)
		}

		t.Run("the README's securityContext builds and pushes", func(t *testing.T) {
			args := build("pod")
			r := podRun(t, rb, "-all,+setuid,+setgid", false, fcap, args...)
			if r.Code != 0 {
				t.Fatalf("kimia under the pod securityContext failed:\n%s", r)
			}
			checkRootlessImage(t, rb, strings.TrimPrefix(args[1], "--destination="))
			assertNothingLeft(t, rb)
		})

		// The smallest working set: take away any one piece and the build
		// fails with a message naming it.
		for _, tc := range []struct {
			name     string
			bounding string
			nnp      bool
			path     string
			mentions []string
		}{
			{"without SETGID", "-all,+setuid", false, fcap, []string{"SETGID"}},
			{"without SETUID", "-all,+setgid", false, fcap, []string{"SETUID"}},
			{"with allowPrivilegeEscalation false", "-all,+setuid,+setgid", true, fcap, []string{"allowPrivilegeEscalation"}},
			{"with setuid-root helpers instead of file capabilities", "-all,+setuid,+setgid", false, "", []string{"setcap"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// Once as kimia normally runs (its preflight checks first),
				// once with --no-preflight: the engine itself must say the
				// same when the daemon's user namespace cannot be made.
				for _, extra := range [][]string{nil, {"--no-preflight"}} {
					repo := freshRepo(rb, "podfail")
					args := append([]string{"--context=" + ctx, "--destination=" + rb.Registry.Ref(repo+":1")}, rb.Registry.Flags()...)
					r := podRun(t, rb, tc.bounding, tc.nnp, tc.path, append(args, extra...)...)
					if r.Code != 8 {
						t.Errorf("%v: exit code %d, want 8 (environment):\n%s", extra, r.Code, r)
					}
					for _, m := range tc.mentions {
						if !strings.Contains(r.Stderr, m) {
							t.Errorf("%v: the error does not name %q:\n%s", extra, m, r.Stderr)
						}
					}
					if tags := rb.Registry.Tags(t, repo); len(tags) != 0 {
						t.Errorf("pushed %v", tags)
					}
				}
				assertNothingLeft(t, rb)
			})
		}
	})
}
