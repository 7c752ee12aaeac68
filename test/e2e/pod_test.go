//go:build e2e

package e2e

// The shipped manifests (deploy/), run as pods: kimia's image under runc
// with each manifest's securityContext (podsim_test.go), building and
// pushing for real. docs/security.md records what this proves.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/rapidfort/kimia/internal/testenv"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// manifestDocs splits a YAML file of the repository into its documents.
func manifestDocs(t *testing.T, rel string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(env.RepoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, d := range bytes.Split(b, []byte("\n---")) {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(b []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// manifestJob decodes the Job of a manifest file, strictly.
func manifestJob(t *testing.T, rel string) *batchv1.Job {
	t.Helper()
	for _, d := range manifestDocs(t, rel) {
		var meta struct{ Kind string }
		yaml.Unmarshal(d, &meta)
		if meta.Kind != "Job" {
			continue
		}
		var job batchv1.Job
		if err := yaml.UnmarshalStrict(d, &job); err != nil {
			t.Fatalf("decoding the Job in %s: %v", rel, err)
		}
		return &job
	}
	t.Fatalf("%s has no Job", rel)
	return nil
}

// jobPod turns a manifest's Job into a pod to run with image, its
// container's args replaced by args. Secret volumes get files (volume
// name -> file name -> content); emptyDirs get fresh directories.
func jobPod(t *testing.T, job *batchv1.Job, img *builtImage, args []string, secrets map[string]map[string]string) simPod {
	t.Helper()
	spec := *job.Spec.Template.Spec.DeepCopy()
	shift := 0
	if spec.HostUsers != nil && !*spec.HostUsers {
		shift = userNSBase
	}
	vols := map[string]string{}
	for _, v := range spec.Volumes {
		switch {
		case v.EmptyDir != nil:
			vols[v.Name] = emptyDir(t, spec, shift)
		case v.Secret != nil:
			vols[v.Name] = secretVolume(t, spec, secrets[v.Name], shift)
		default:
			t.Fatalf("%s: volume %q: only emptyDir and secret volumes are simulated", job.Name, v.Name)
		}
	}
	c := spec.Containers[0]
	c.Args = args
	return simPod{Name: job.Name, Image: img, Spec: spec, Container: c, Volumes: vols}
}

// contextBind binds a build context into the pod at /workspace/src, as a
// volume holding a checkout would be.
func contextBind(dir string) specs.Mount {
	return specs.Mount{Destination: "/workspace/src", Type: "bind", Source: dir, Options: []string{"rbind", "ro"}}
}

// dockerConfig is a docker config.json with credentials for reg.
func dockerConfig(reg *testenv.Registry) string {
	return `{"auths":{"` + reg.Host + `":{"auth":"` + b64(reg.User+":"+reg.Password) + `"}}}`
}

// runJobBuild runs deploy/job.yaml with image b: a rootless build of a
// Dockerfile that needs the full subordinate-id mapping, pushed with the
// credentials of the mounted docker-config secret (at Kaniko's path) to a
// registry that requires them.
func runJobBuild(t *testing.T, sb *Sandbox, b *builtImage) {
	t.Helper()
	auth := testenv.StartRegistry(t, testenv.RegistryOptions{User: "kimia", Password: "s3cret-" + sb.Name})
	job := manifestJob(t, "deploy/job.yaml")
	ctx := sb.Context(rootlessDockerfile(sb))
	ref := auth.Ref(freshRepo(sb, "job") + ":1")
	args := append([]string{"--context=/workspace/src", "--destination=" + ref, "--insecure-registry=" + auth.Host}, sb.Registry.Flags()...)
	p := jobPod(t, job, b, args, map[string]map[string]string{"docker-config": {"config.json": dockerConfig(auth)}})
	p.Binds = append(p.Binds, contextBind(ctx))
	r := runPod(t, sb, p)
	if r.Code != 0 {
		t.Fatalf("the Job's pod failed:\n%s", r)
	}
	checkRootlessImage(t, &Sandbox{Worker: sb.Worker, T: t, Registry: auth}, ref)
	if strings.Contains(r.Stdout+r.Stderr, auth.Password) {
		t.Errorf("the registry password appears in the pod's output")
	}
}

// jobCase runs a manifest's Job with image b on a Dockerfile that needs
// the full subordinate-id mapping, after change adjusts the pod. It
// returns the run and the destination.
func jobCase(t *testing.T, sb *Sandbox, manifest string, b *builtImage, change func(p *simPod)) (*Result, string) {
	t.Helper()
	job := manifestJob(t, manifest)
	ctx := sb.Context(rootlessDockerfile(sb))
	ref := sb.Registry.Ref(freshRepo(sb, "pod") + ":1")
	args := append([]string{"--context=/workspace/src", "--destination=" + ref}, sb.Registry.Flags()...)
	p := jobPod(t, job, b, args, map[string]map[string]string{"docker-config": {"config.json": "{}"}})
	p.Binds = append(p.Binds, contextBind(ctx))
	if change != nil {
		change(&p)
	}
	return runPod(t, sb, p), ref
}

func withSeccomp(typ corev1.SeccompProfileType, localhost string) func(p *simPod) {
	return func(p *simPod) {
		prof := &corev1.SeccompProfile{Type: typ}
		if localhost != "" {
			prof.LocalhostProfile = &localhost
		}
		p.Container.SecurityContext.SeccompProfile = prof
		p.Spec.SecurityContext.SeccompProfile = prof
	}
}

// nothingPushed fails the test when ref's repository has tags.
func nothingPushed(t *testing.T, sb *Sandbox, ref string) {
	t.Helper()
	repo := strings.TrimPrefix(ref, sb.Registry.Host+"/")
	repo, _, _ = strings.Cut(repo, ":")
	if tags := sb.Registry.Tags(t, repo); len(tags) != 0 {
		t.Errorf("pushed %v", tags)
	}
}

// seccompExtra is what deploy/seccomp/*/kimia.json allows beyond
// RuntimeDefault (hack/gen-seccomp), and neededBy the engines that fail
// without each call (found by TestPodSeccomp; docs/security.md).
var seccompExtra = []string{"clone", "unshare", "mount", "umount2", "pivot_root", "sethostname", "keyctl", "chroot"}

func TestPodSeccomp(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		b := kimiaImage(t, sb, sb.Binary)
		t.Run("RuntimeDefault refuses user namespaces", func(t *testing.T) {
			r, ref := jobCase(t, sb, "deploy/job.yaml", b, withSeccomp(corev1.SeccompProfileTypeRuntimeDefault, ""))
			if r.Code == 0 {
				t.Fatalf("the build passed under RuntimeDefault; kimia.json would not be needed:\n%s", r)
			}
			t.Logf("under RuntimeDefault: exit %d:\n%s", r.Code, podTail(r.Stderr, 6))
			// kimia says what to change; kimia-bud's Buildah re-exec
			// reports only unshare(CLONE_NEWUSER) (docs/security.md).
			if sb.Binary == "kimia" && (r.Code != 8 || !strings.Contains(r.Stderr, "seccomp")) {
				t.Errorf("exit %d, want 8 (environment) with a message naming seccomp:\n%s", r.Code, r.Stderr)
			}
			if sb.Binary == "kimia-bud" && !strings.Contains(r.Stderr, "unshare(CLONE_NEWUSER)") {
				t.Errorf("the failure does not name unshare(CLONE_NEWUSER):\n%s", r.Stderr)
			}
			nothingPushed(t, sb, ref)
		})
		t.Run("Unconfined builds", func(t *testing.T) {
			r, ref := jobCase(t, sb, "deploy/job.yaml", b, withSeccomp(corev1.SeccompProfileTypeUnconfined, ""))
			if r.Code != 0 {
				t.Fatalf("the build failed Unconfined:\n%s", r)
			}
			checkRootlessImage(t, sb, ref)
		})
		// The shipped profile is what the generator writes from
		// containerd's code, with exactly these additions.
		gen, err := exec.Command("go", "run", filepath.Join(env.RepoRoot, "hack", "gen-seccomp"), "-extra="+strings.Join(seccompExtra, ",")).Output()
		if err != nil {
			t.Fatalf("hack/gen-seccomp: %v", err)
		}
		if shipped, _ := os.ReadFile(filepath.Join(env.RepoRoot, "deploy", "seccomp", goarch(), "kimia.json")); !bytes.Equal(shipped, gen) {
			t.Errorf("deploy/seccomp/%s/kimia.json differs from `go run ./hack/gen-seccomp -extra=%s`: regenerate it", goarch(), strings.Join(seccompExtra, ","))
		}
		// kimia.json is as narrow as it can be: without any one of its
		// additions, a build fails.
		dir := t.TempDir()
		needed := map[string]bool{}
		for _, call := range seccompExtra {
			var rest []string
			for _, c := range seccompExtra {
				if c != call {
					rest = append(rest, c)
				}
			}
			out, err := exec.Command("go", "run", filepath.Join(env.RepoRoot, "hack", "gen-seccomp"), "-extra="+strings.Join(rest, ",")).Output()
			if err != nil {
				t.Fatalf("hack/gen-seccomp: %v", err)
			}
			os.WriteFile(filepath.Join(dir, "without-"+call+".json"), out, 0o644)
			r, ref := jobCase(t, sb, "deploy/job.yaml", b, func(p *simPod) {
				withSeccomp(corev1.SeccompProfileTypeLocalhost, "without-"+call+".json")(p)
				p.SeccompRoot = dir
			})
			if r.Code != 0 {
				needed[call] = true
				nothingPushed(t, sb, ref)
			}
			t.Logf("kimia.json without %s: exit %d %s", call, r.Code, podTail(r.Stderr, 2))
		}
		var got []string
		for _, c := range seccompExtra {
			if needed[c] {
				got = append(got, c)
			}
		}
		if want := seccompNeeds[sb.Binary]; strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s needs %v beyond RuntimeDefault, want %v (update docs/security.md and seccompNeeds)", sb.Binary, got, want)
		}
	})
}

// seccompNeeds are the additions each engine fails without.
var seccompNeeds = map[string][]string{
	// rootlesskit and buildkitd's runc: a user namespace (clone with
	// CLONE_NEWUSER), mounts, the root switch, the RUN step's hostname
	// and session keyring.
	"kimia": {"clone", "unshare", "mount", "umount2", "pivot_root", "sethostname", "keyctl"},
	// Buildah's re-exec into a user namespace (unshare), overlay mounts,
	// chroot isolation and containers/storage's chrooted layer unpacking.
	"kimia-bud": {"unshare", "mount", "umount2", "chroot"},
}

func podTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func TestPodNoNewPrivileges(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		b := kimiaImage(t, sb, sb.Binary)
		r, ref := jobCase(t, sb, "deploy/job.yaml", b, func(p *simPod) {
			f := false
			p.Container.SecurityContext.AllowPrivilegeEscalation = &f
		})
		if r.Code != 8 {
			t.Errorf("exit %d, want 8 (environment):\n%s", r.Code, r)
		}
		if !strings.Contains(r.Stderr, "allowPrivilegeEscalation") {
			t.Errorf("the error does not name allowPrivilegeEscalation:\n%s", r.Stderr)
		}
		nothingPushed(t, sb, ref)
	})
}

func TestPodUserNamespace(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		b := kimiaImage(t, sb, sb.Binary)
		r, ref := jobCase(t, sb, "deploy/job-userns.yaml", b, nil)
		if r.Code != 0 {
			t.Fatalf("the user-namespace pod failed:\n%s", r)
		}
		checkRootlessImage(t, sb, ref)

		// Why the manifest adds SYS_ADMIN and uses kimia.json.
		t.Run("without SYS_ADMIN", func(t *testing.T) {
			r, ref := jobCase(t, sb, "deploy/job-userns.yaml", b, func(p *simPod) {
				p.Container.SecurityContext.Capabilities = nil
			})
			t.Logf("exit %d: %s", r.Code, podTail(r.Stderr, 2))
			switch sb.Binary {
			case "kimia":
				// buildkitd runs as root in a mount namespace of its own.
				if r.Code == 0 {
					t.Errorf("kimia built without SYS_ADMIN; the manifest should not add it")
				}
				nothingPushed(t, sb, ref)
			case "kimia-bud":
				// Buildah makes a nested user namespace over the pod's ids
				// (root there may write the maps itself) and mounts in it.
				if r.Code != 0 {
					t.Fatalf("kimia-bud failed without SYS_ADMIN:\n%s", r)
				}
				checkRootlessImage(t, sb, ref)
			}
		})
		t.Run("with RuntimeDefault", func(t *testing.T) {
			r, ref := jobCase(t, sb, "deploy/job-userns.yaml", b, withSeccomp(corev1.SeccompProfileTypeRuntimeDefault, ""))
			t.Logf("exit %d: %s", r.Code, podTail(r.Stderr, 2))
			switch sb.Binary {
			case "kimia":
				// runc's session keyring: keyctl, which RuntimeDefault
				// refuses even with SYS_ADMIN.
				if r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, "keyring") {
					t.Errorf("exit %d, want a failure on runc's session keyring", r.Code)
				}
				nothingPushed(t, sb, ref)
			case "kimia-bud":
				if r.Code != 0 {
					t.Errorf("kimia-bud failed under RuntimeDefault with SYS_ADMIN:\n%s", r)
				}
			}
		})
	})
}

// TestPodCacheRepo runs two pods of deploy/job-cache.yaml, as the Indexed
// Job would (completion indexes 0 and 1, each with fresh state, the
// manifest's own args with the hosts replaced): the second pod's shared
// stage comes from the registry cache the first pod exported.
func TestPodCacheRepo(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		b := kimiaImage(t, sb, sb.Binary)
		job := manifestJob(t, "deploy/job-cache.yaml")
		files := map[string]string{}
		for _, svc := range []string{"service-0", "service-1"} {
			files[svc+"/Dockerfile"] = "FROM " + sb.Busybox() + " AS base\n" +
				"RUN dd if=/dev/urandom of=/shared bs=1024 count=2048 2>/dev/null && echo base > /base\n" +
				"FROM base\nRUN echo " + svc + " > /svc\n"
		}
		ctx := sb.Context(files)
		prefix := sb.Registry.Ref(freshRepo(sb, "services"))
		for i := 0; i < 2; i++ {
			var args []string
			for _, a := range job.Spec.Template.Spec.Containers[0].Args {
				a = strings.Replace(a, "https://github.com/example/monorepo.git", "/workspace/src", 1)
				a = strings.Replace(a, "myregistry.io/example", prefix, 1)
				args = append(args, a)
			}
			args = append(args, "--metadata-file=/tmp/metadata.json")
			args = append(args, sb.Registry.Flags()...)
			p := jobPod(t, job, b, args, map[string]map[string]string{"docker-config": {"config.json": "{}"}})
			p.Binds = append(p.Binds, contextBind(ctx))
			p.FieldRefs = map[string]string{"metadata.annotations['batch.kubernetes.io/job-completion-index']": strconv.Itoa(i)}
			r := runPod(t, sb, p)
			if r.Code != 0 {
				t.Fatalf("pod %d failed:\n%s", i, r)
			}
			fileIs(t, Files(t, sb.Registry.Image(t, fmt.Sprintf("%s/service-%d:latest", prefix, i))), "svc", fmt.Sprintf("service-%d\n", i), 0, 0, 0)
			md := readMetadata(t, filepath.Join(p.Volumes["tmp"], "metadata.json"))
			t.Logf("pod %d: cache %+v", i, md.Cache)
			if i == 1 && (md.Cache == nil || md.Cache.Cached == 0) {
				t.Errorf("the second pod reused nothing from --cache-repo: %+v", md.Cache)
			}
		}
		if tags := sb.Registry.Tags(t, strings.TrimPrefix(prefix, sb.Registry.Host+"/")+"/build-cache"); len(tags) == 0 {
			t.Errorf("nothing was exported to the --cache-repo %s/build-cache", prefix)
		}
	})
}

// TestPodCheck runs `kimia check` (docs/installation.md shows it) in the
// Job's pod: everything a build needs is there; under RuntimeDefault the
// user-namespace probe fails.
func TestPodCheck(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		b := kimiaImage(t, sb, sb.Binary)
		job := manifestJob(t, "deploy/job.yaml")
		check := func(change func(p *simPod)) *Result {
			p := jobPod(t, job, b, []string{"check"}, map[string]map[string]string{"docker-config": {"config.json": "{}"}})
			if change != nil {
				change(&p)
			}
			return runPod(t, sb, p)
		}
		r := check(nil)
		t.Logf("kimia check in the Job's pod:\n%s", r.Stdout)
		if r.Code != 0 {
			t.Errorf("kimia check failed in the Job's pod:\n%s", r)
		}
		if !strings.Contains(r.Stdout, "user namespace") {
			t.Errorf("kimia check does not report the user namespace:\n%s", r.Stdout)
		}
		r = check(withSeccomp(corev1.SeccompProfileTypeRuntimeDefault, ""))
		t.Logf("kimia check under RuntimeDefault: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		if r.Code == 0 {
			t.Errorf("kimia check passed under RuntimeDefault, where builds fail:\n%s", r)
		}
		// kimia reports the failed probe; kimia-bud's Buildah re-exec
		// fails before check runs (docs/security.md).
		if sb.Binary == "kimia" && !strings.Contains(r.Stdout, "fail  user namespace") {
			t.Errorf("kimia check under RuntimeDefault does not fail the user-namespace probe:\n%s", r.Stdout)
		}
	})
}
