//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rapidfort/kimia/internal/testenv"
)

// assertNothingLeft checks what a finished kimia run may not leave: files
// in its TMPDIR, processes started from them (daemons, RUN containers),
// mounts under the sandbox.
func assertNothingLeft(t *testing.T, sb *Sandbox) {
	t.Helper()
	assertNoLeftovers(t, sb)
	// A daemon's shutdown is synchronous, but give a killed process group
	// a moment to be reaped.
	deadline := time.Now().Add(3 * time.Second)
	for {
		procs := processesMentioning(sb.TmpDir, sb.Dir)
		if len(procs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("processes left running: %v", procs)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, sb.TmpDir) || strings.Contains(line, sb.Dir) {
				t.Errorf("mount left behind: %s", line)
			}
		}
	}
}

// processesMentioning lists the command lines of processes whose argv
// mentions one of dirs.
func processesMentioning(dirs ...string) []string {
	var out []string
	pids, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range pids {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		for _, d := range dirs {
			if bytes.Contains(b, []byte(d)) {
				out = append(out, strings.ReplaceAll(string(bytes.TrimRight(b, "\x00")), "\x00", " "))
				break
			}
		}
	}
	return out
}

// failing runs kimia expecting exit code want, checks that stderr names
// every one of mentions, that nothing reached repo, and that nothing was
// left behind.
func failing(t *testing.T, sb *Sandbox, want int, repo string, mentions []string, args ...string) *Result {
	t.Helper()
	r := sb.Kimia(args...)
	if r.Code != want {
		t.Errorf("exit code %d, want %d:\n%s", r.Code, want, r)
	}
	for _, m := range mentions {
		if !strings.Contains(r.Stderr, m) {
			t.Errorf("stderr does not name %q:\n%s", m, r.Stderr)
		}
	}
	if repo != "" {
		if tags := sb.Registry.Tags(t, repo); len(tags) != 0 {
			t.Errorf("a failed build pushed %s: %v", repo, tags)
		}
	}
	assertNothingLeft(t, sb)
	return r
}

func TestBuildErrors(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		for _, tc := range []struct {
			name       string
			dockerfile string
			args       []string
			code       int
			mentions   []string
		}{
			{
				name:       "a failing RUN exits 3 and names its line",
				dockerfile: "FROM " + sb.Busybox() + "\nRUN echo first\nRUN echo before && exit 7\nRUN echo never\n",
				code:       3,
				mentions:   []string{"Dockerfile:3", "exit 7", "7"},
			},
			{
				name:       "a syntax error exits 3 and names its line",
				dockerfile: "FROM " + sb.Busybox() + "\nFROBNICATE /x\n",
				code:       3,
				mentions:   []string{"Dockerfile:2", "FROBNICATE"},
			},
			{
				name:       "a missing base image exits 4 and names it",
				dockerfile: "FROM " + sb.Registry.Ref("library/does-not-exist:1") + "\nRUN true\n",
				code:       4,
				mentions:   []string{"library/does-not-exist", sb.Registry.Host},
			},
			{
				name:       "an unreachable registry exits 4 and names it",
				dockerfile: "FROM 127.0.0.1:1/library/busybox:latest\nRUN true\n",
				args:       []string{"--insecure-registry=127.0.0.1:1"},
				code:       4,
				mentions:   []string{"127.0.0.1:1"},
			},
			{
				name:       "a missing --target stage exits 2 and names the flag",
				dockerfile: "FROM " + sb.Busybox() + " AS build\nRUN true\nFROM build AS final\n",
				args:       []string{"--target=nosuchstage"},
				code:       2,
				mentions:   []string{"--target", "nosuchstage"},
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx := sb.Context(map[string]string{"Dockerfile": tc.dockerfile})
				repo := freshRepo(sb, "errors")
				args := append([]string{"--context=" + ctx, "--destination=" + sb.Registry.Ref(repo+":latest")}, sb.Registry.Flags()...)
				failing(t, sb, tc.code, repo, tc.mentions, append(args, tc.args...)...)
			})
		}
	})
}

func TestPrivateBaseImage(t *testing.T) {
	const password = "pull-s3cret-e2e"
	priv := testenv.StartRegistry(t, testenv.RegistryOptions{User: "puller", Password: password})
	if _, err := testenv.PushBusybox(priv, env.CacheDir); err != nil {
		t.Fatal(err)
	}
	Run(t, func(t *testing.T, sb *Sandbox) {
		ctx := sb.Context(map[string]string{"Dockerfile": "FROM " + priv.Ref("library/busybox:latest") + "\nRUN sleep 3 && echo pulled > /pulled\n"})
		flags := append(sb.Registry.Flags(), priv.Flags()...)

		t.Run("bad credentials exit 5 and name the registry", func(t *testing.T) {
			sb.DockerConfig(map[string][2]string{priv.Host: {"puller", "wrong-password"}})
			repo := freshRepo(sb, "badcreds")
			r := failing(t, sb, 5, repo, []string{priv.Host}, append([]string{"--context=" + ctx, "--destination=" + sb.Registry.Ref(repo+":1")}, flags...)...)
			if strings.Contains(r.Stderr, "wrong-password") {
				t.Errorf("the password appears in the output")
			}
		})

		t.Run("a docker config that is not JSON exits 5 and names the file", func(t *testing.T) {
			sb.DockerConfig(nil)
			cfg := filepath.Join(sb.Home, ".docker", "config.json")
			if err := os.WriteFile(cfg, []byte("{\"auths\": {not json"), 0o600); err != nil {
				t.Fatal(err)
			}
			defer sb.DockerConfig(nil)
			repo := freshRepo(sb, "badconfig")
			failing(t, sb, 5, repo, []string{cfg, "not valid JSON", "DOCKER_CONFIG"}, append([]string{"--context=" + ctx, "--destination=" + sb.Registry.Ref(repo+":1")}, flags...)...)
		})

		t.Run("the docker config's credentials pull it and stay in kimia", func(t *testing.T) {
			sb.DockerConfig(map[string][2]string{priv.Host: {"puller", password}})
			ref := sb.Registry.Ref(freshRepo(sb, "privbase") + ":1")
			// While the build runs, no child process may carry the
			// password in its arguments or environment.
			done := make(chan struct{})
			leaks := make(chan string, 16)
			go func() {
				defer close(leaks)
				for {
					select {
					case <-done:
						return
					case <-time.After(200 * time.Millisecond):
					}
					for _, p := range childrenOf(sb) {
						for _, f := range []string{"cmdline", "environ"} {
							if b, err := os.ReadFile(filepath.Join(p, f)); err == nil && bytes.Contains(b, []byte(password)) {
								select {
								case leaks <- p + "/" + f:
								default:
								}
							}
						}
					}
				}
			}()
			r := sb.Kimia(append([]string{"--context=" + ctx, "--destination=" + ref}, flags...)...)
			close(done)
			for l := range leaks {
				t.Errorf("the registry password is in %s", l)
			}
			if r.Code != 0 {
				t.Fatalf("build from a private base failed:\n%s", r)
			}
			fileIs(t, Files(t, sb.Registry.Image(t, ref)), "pulled", "pulled\n", 0, 0, 0)
			if strings.Contains(r.Stderr, password) {
				t.Errorf("the password appears in the output")
			}
		})
	})
}

// childrenOf lists /proc/PID of processes started for the sandbox: their
// argv or working directory mention its directories.
func childrenOf(sb *Sandbox) []string {
	var out []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		cwd, _ := os.Readlink(filepath.Join(d, "cwd"))
		if bytes.Contains(b, []byte(sb.TmpDir)) || strings.HasPrefix(cwd, sb.TmpDir) {
			out = append(out, d)
		}
	}
	return out
}

func TestSIGTERMStopsTheBuildAndCleansUp(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		// The sleep's argument finds this worker's RUN step among all
		// processes (the other worker's runs alongside).
		marker := fmt.Sprintf("47.%d", 25+repoSeq.Add(1)%70)
		ctx := sb.Context(map[string]string{"Dockerfile": "FROM " + sb.Busybox() + "\nRUN sleep " + marker + "\n"})
		repo := freshRepo(sb, "sigterm")
		cctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// Send SIGTERM once the RUN step is running.
		go func() {
			deadline := time.Now().Add(90 * time.Second)
			for time.Now().Before(deadline) {
				if len(processesMentioning("sleep\x00"+marker)) > 0 {
					time.Sleep(300 * time.Millisecond)
					cancel()
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			cancel()
		}()
		start := time.Now()
		r := sb.KimiaContext(cctx, nil, append([]string{"--context=" + ctx, "--destination=" + sb.Registry.Ref(repo+":1"), "--cache", "--cache-dir=" + sb.Join("cache")}, sb.Registry.Flags()...)...)
		if took := time.Since(start); took > 40*time.Second {
			t.Errorf("kimia took %s to stop after SIGTERM", took)
		}
		if r.Code != 143 {
			t.Errorf("exit code %d, want 143 (SIGTERM):\n%s", r.Code, r)
		}
		if left := processesMentioning("sleep\x00" + marker); len(left) != 0 {
			t.Errorf("the RUN step still runs: %v", left)
		}
		if tags := sb.Registry.Tags(t, repo); len(tags) != 0 {
			t.Errorf("an interrupted build pushed %v", tags)
		}
		assertNothingLeft(t, sb)
		// The cache dir is usable again at once: no stale lock or daemon.
		ok := sb.Kimia("--context="+sb.Context(map[string]string{"Dockerfile": "FROM " + sb.Busybox() + "\nRUN true\n"}), "--no-push", "--cache", "--cache-dir="+sb.Join("cache"))
		if ok.Code != 0 {
			t.Errorf("a build on the same --cache-dir after SIGTERM failed:\n%s", ok)
		}
	})
}
