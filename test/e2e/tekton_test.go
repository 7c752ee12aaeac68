//go:build e2e

package e2e

// deploy/tekton/kimia.yaml's step, run as Tekton would run it: params,
// workspaces and results substituted, the script at /tekton/scripts, the
// step's securityContext, in the simulated pod (podsim_test.go).

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// tektonTask is the part of a Tekton v1 Task the simulation needs (the
// deploy package's tests decode it strictly with Tekton's own types).
type tektonTask struct {
	Metadata struct{ Name string }
	Spec     struct {
		Params []struct {
			Name    string
			Type    string
			Default any
		}
		Volumes    []corev1.Volume
		Workspaces []struct {
			Name      string
			MountPath string
			Optional  bool
			ReadOnly  bool
		}
		Results []struct{ Name string }
		Steps   []struct {
			Name            string
			Image           string
			WorkingDir      string
			Script          string
			Args            []string
			Env             []corev1.EnvVar
			SecurityContext *corev1.SecurityContext
			VolumeMounts    []corev1.VolumeMount
		}
	}
}

// runTektonStep runs the Task's only step with params (strings, or
// []string for arrays) and workspaces (name -> host dir; unbound ones
// left out) and returns the run and the results.
func runTektonStep(t *testing.T, sb *Sandbox, img *builtImage, params map[string]any, workspaces map[string]string) (*Result, map[string]string) {
	t.Helper()
	var task tektonTask
	if err := yaml.Unmarshal(manifestDocs(t, "deploy/tekton/kimia.yaml")[0], &task); err != nil {
		t.Fatal(err)
	}
	str := map[string]string{}
	arr := map[string][]string{}
	for _, p := range task.Spec.Params {
		v, ok := params[p.Name]
		if !ok {
			v = p.Default
		}
		switch x := v.(type) {
		case string:
			str[p.Name] = x
		case []string:
			arr[p.Name] = x
		case []any:
			arr[p.Name] = nil
			for _, e := range x {
				arr[p.Name] = append(arr[p.Name], e.(string))
			}
		case nil:
			t.Fatalf("param %s has no value and no default", p.Name)
		}
	}
	for n := range params {
		if _, ok := str[n]; !ok && arr[n] == nil {
			t.Fatalf("the Task has no param %s", n)
		}
	}
	var binds []specs.Mount
	repl := []string{}
	for n, v := range str {
		repl = append(repl, "$(params."+n+")", v)
	}
	for _, w := range task.Spec.Workspaces {
		path := w.MountPath
		if path == "" {
			path = "/workspace/" + w.Name
		}
		dir, bound := workspaces[w.Name]
		if !bound {
			if !w.Optional {
				t.Fatalf("workspace %s is required", w.Name)
			}
			path = ""
		} else {
			opt := []string{"rbind", "rw"}
			if w.ReadOnly {
				opt = []string{"rbind", "ro"}
			}
			binds = append(binds, specs.Mount{Destination: path, Type: "bind", Source: dir, Options: opt})
		}
		repl = append(repl, "$(workspaces."+w.Name+".path)", path, "$(workspaces."+w.Name+".bound)", map[bool]string{true: "true", false: "false"}[bound])
	}
	results := t.TempDir()
	os.Chmod(results, 0o777)
	for _, r := range task.Spec.Results {
		repl = append(repl, "$(results."+r.Name+".path)", "/tekton/results/"+r.Name)
	}
	binds = append(binds, specs.Mount{Destination: "/tekton/results", Type: "bind", Source: results, Options: []string{"rbind", "rw"}})
	sub := strings.NewReplacer(repl...)

	if len(task.Spec.Steps) != 1 {
		t.Fatalf("%d steps, want 1", len(task.Spec.Steps))
	}
	st := task.Spec.Steps[0]
	scripts := t.TempDir()
	if err := os.WriteFile(filepath.Join(scripts, "script-0"), []byte(sub.Replace(st.Script)), 0o755); err != nil {
		t.Fatal(err)
	}
	binds = append(binds, specs.Mount{Destination: "/tekton/scripts", Type: "bind", Source: scripts, Options: []string{"rbind", "ro"}})
	var args []string
	for _, a := range st.Args {
		if strings.HasPrefix(a, "$(params.") && strings.HasSuffix(a, "[*])") {
			args = append(args, arr[strings.TrimSuffix(strings.TrimPrefix(a, "$(params."), "[*])")]...)
			continue
		}
		args = append(args, sub.Replace(a))
	}
	var env []corev1.EnvVar
	for _, e := range st.Env {
		e.Value = sub.Replace(e.Value)
		env = append(env, e)
	}
	if got := sub.Replace(st.Image); got != str["BUILDER_IMAGE"] {
		t.Fatalf("step image %q is not BUILDER_IMAGE", got)
	}
	spec := corev1.PodSpec{Volumes: task.Spec.Volumes, SecurityContext: &corev1.PodSecurityContext{}}
	vols := map[string]string{}
	for _, v := range spec.Volumes {
		if v.EmptyDir == nil {
			t.Fatalf("Task volume %s: only emptyDir is simulated", v.Name)
		}
		vols[v.Name] = emptyDir(t, spec, 0)
	}
	c := corev1.Container{Name: "step-" + st.Name, Command: []string{"/tekton/scripts/script-0"}, Args: args, Env: env,
		WorkingDir: sub.Replace(st.WorkingDir), SecurityContext: st.SecurityContext, VolumeMounts: st.VolumeMounts}
	r := runPod(t, sb, simPod{Name: task.Metadata.Name, Image: img, Spec: spec, Container: c, Volumes: vols, Binds: binds})
	out := map[string]string{}
	for _, res := range task.Spec.Results {
		if b, err := os.ReadFile(filepath.Join(results, res.Name)); err == nil {
			out[res.Name] = string(b)
		}
	}
	return r, out
}

func TestTektonTask(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		b := kimiaImage(t, sb, sb.Binary)
		src := sb.Context(map[string]string{
			"app/Dockerfile": "FROM " + sb.Busybox() + "\nARG A\nARG B\nRUN echo \"$A-$B-$(uname -m)\" > /out\n",
		})
		os.Chmod(src, 0o777)
		cfg := t.TempDir()
		os.WriteFile(filepath.Join(cfg, "config.json"), []byte("{}"), 0o644)
		image := sb.Registry.Ref(freshRepo(sb, "tekton") + ":v1")
		r, res := runTektonStep(t, sb, b, map[string]any{
			"IMAGE":         image,
			"CONTEXT":       "app",
			"BUILDER_IMAGE": "ghcr.io/rapidfort/" + b.Name + ":latest",
			"EXTRA_ARGS":    append([]string{"--label=org.example.pipeline=tekton"}, sb.Registry.Flags()...),
			"BUILD_ARGS":    "A=1\nB=two",
			// Multi-platform in a pod: the node's QEMU handlers (F flag),
			// no emulator in kimia's image.
			"PLATFORMS":   "linux/amd64,linux/arm64",
			"ATTESTATION": "min",
		}, map[string]string{"source": src, "dockerconfig": cfg})
		if r.Code != 0 {
			t.Fatalf("the Task's step failed:\n%s", r)
		}
		dg := digestOf(t, sb, image)
		if res["IMAGE_DIGEST"] != dg.String() {
			t.Errorf("IMAGE_DIGEST %q, want the pushed digest %s", res["IMAGE_DIGEST"], dg)
		}
		if res["IMAGE_URL"] != image {
			t.Errorf("IMAGE_URL %q, want %q", res["IMAGE_URL"], image)
		}
		// Tekton Chains reads IMAGES as repo@digest, comma or newline
		// separated.
		lines := strings.Fields(res["IMAGES"])
		if len(lines) != 1 {
			t.Fatalf("IMAGES %q, want one repo@digest", res["IMAGES"])
		}
		d, err := name.NewDigest(lines[0], name.Insecure)
		if err != nil || d.DigestStr() != dg.String() || d.Context().Name() != strings.TrimSuffix(image, ":v1") {
			t.Errorf("IMAGES %q does not name %s@%s (%v)", lines[0], image, dg, err)
		}
		idx := sb.Registry.Index(t, image)
		for plat, arch := range map[string]string{"linux/amd64": "x86_64", "linux/arm64": "aarch64"} {
			img := PlatformImage(t, idx, plat)
			fileIs(t, Files(t, img), "out", "1-two-"+arch+"\n", 0, 0, 0)
			if l := Config(t, img).Config.Labels["org.example.pipeline"]; l != "tekton" {
				t.Errorf("%s: label from EXTRA_ARGS is %q", plat, l)
			}
		}
	})
}
