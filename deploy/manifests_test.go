// Package deploy holds kimia's Kubernetes and Tekton manifests; its tests
// decode each one strictly with the API's own Go types, so a misspelled or
// misplaced field fails here rather than being dropped by the API server.
package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// docs returns the YAML documents of a manifest file.
func docs(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, d := range bytes.Split(b, []byte("\n---")) {
		var probe map[string]any
		if err := yaml.Unmarshal(d, &probe); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(probe) > 0 {
			out = append(out, d)
		}
	}
	return out
}

func kindOf(t *testing.T, d []byte) (apiVersion, kind string) {
	var tm struct{ APIVersion, Kind string }
	if err := yaml.Unmarshal(d, &tm); err != nil {
		t.Fatal(err)
	}
	return tm.APIVersion, tm.Kind
}

// TestManifestsDecodeStrictly decodes every document of every manifest
// with its API type, unknown fields rejected.
func TestManifestsDecodeStrictly(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	more, _ := filepath.Glob("*/*.yaml")
	files = append(files, more...)
	if len(files) < 4 {
		t.Fatalf("found %d manifests, want job.yaml, job-userns.yaml, job-cache.yaml and tekton/kimia.yaml", len(files))
	}
	for _, f := range files {
		for i, d := range docs(t, f) {
			av, kind := kindOf(t, d)
			var obj any
			switch av + "/" + kind {
			case "batch/v1/Job":
				obj = &batchv1.Job{}
			case "v1/Pod":
				obj = &corev1.Pod{}
			case "tekton.dev/v1/Task":
				obj = &pipelinev1.Task{}
			default:
				t.Errorf("%s document %d: %s %s has no decoder in this test", f, i, av, kind)
				continue
			}
			if err := yaml.UnmarshalStrict(d, obj); err != nil {
				t.Errorf("%s document %d (%s): %v", f, i, kind, err)
			}
		}
	}
}

// TestStrictDecodingCatchesMistakes: the decoder this test relies on
// rejects a misplaced field (hostUsers belongs to the pod, not the
// container) and a misspelled one.
func TestStrictDecodingCatchesMistakes(t *testing.T) {
	for name, doc := range map[string]string{
		"misplaced": "apiVersion: batch/v1\nkind: Job\nspec:\n  template:\n    spec:\n      containers:\n      - name: k\n        hostUsers: false\n",
		"misspelt":  "apiVersion: tekton.dev/v1\nkind: Task\nspec:\n  parms: []\n",
	} {
		var obj any = &batchv1.Job{}
		if strings.Contains(doc, "Task") {
			obj = &pipelinev1.Task{}
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err == nil {
			t.Errorf("%s: a wrong field decoded without error", name)
		}
	}
}

func jobs(t *testing.T) map[string]*batchv1.Job {
	out := map[string]*batchv1.Job{}
	for _, f := range []string{"job.yaml", "job-userns.yaml", "job-cache.yaml"} {
		var j batchv1.Job
		if err := yaml.UnmarshalStrict(docs(t, f)[0], &j); err != nil {
			t.Fatal(err)
		}
		out[f] = &j
	}
	return out
}

// TestJobsSecurityContext pins the posture docs/security.md describes.
func TestJobsSecurityContext(t *testing.T) {
	for f, j := range jobs(t) {
		spec := j.Spec.Template.Spec
		c := spec.Containers[0]
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || !*sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation must be true (file capabilities)", f)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", f)
		}
		for _, p := range []*corev1.SeccompProfile{sc.SeccompProfile, spec.SecurityContext.SeccompProfile} {
			if p == nil || p.Type != corev1.SeccompProfileTypeLocalhost || p.LocalhostProfile == nil || *p.LocalhostProfile != "kimia.json" {
				t.Errorf("%s: seccomp %+v, want Localhost kimia.json", f, p)
			}
		}
		if spec.HostUsers != nil && !*spec.HostUsers {
			// The user-namespace variant: root of the pod's namespace.
			if got := capNames(sc.Capabilities.Add); got != "SYS_ADMIN" {
				t.Errorf("%s: adds %s, want SYS_ADMIN only", f, got)
			}
			continue
		}
		if capNames(sc.Capabilities.Drop) != "ALL" || capNames(sc.Capabilities.Add) != "SETUID,SETGID" {
			t.Errorf("%s: capabilities drop %v add %v, want drop ALL, add SETUID SETGID", f, sc.Capabilities.Drop, sc.Capabilities.Add)
		}
		if spec.SecurityContext.RunAsUser == nil || *spec.SecurityContext.RunAsUser != 1000 || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: want runAsNonRoot and runAsUser 1000", f)
		}
	}
}

func capNames(cs []corev1.Capability) string {
	var s []string
	for _, c := range cs {
		s = append(s, string(c))
	}
	return strings.Join(s, ",")
}

var (
	resultRef = regexp.MustCompile(`\$\(results\.([A-Z_]+)\.path\)`)
	paramRef  = regexp.MustCompile(`\$\(params\.([A-Z_]+)(\[\*\])?\)`)
)

// TestTektonTask checks the Task's interface (the catalog's kaniko and
// buildah Tasks' params, workspaces and results) and that every result
// is written by the step: IMAGE_DIGEST and IMAGES by kimia's
// --digest-file and --image-name-with-digest-file (given as KIMIA_*
// variables), IMAGE_URL by the script after a successful build.
func TestTektonTask(t *testing.T) {
	var task pipelinev1.Task
	if err := yaml.UnmarshalStrict(docs(t, "tekton/kimia.yaml")[0], &task); err != nil {
		t.Fatal(err)
	}
	params := map[string]pipelinev1.ParamSpec{}
	for _, p := range task.Spec.Params {
		params[p.Name] = p
	}
	for _, n := range []string{"IMAGE", "DOCKERFILE", "CONTEXT", "EXTRA_ARGS", "BUILDER_IMAGE", "BUILD_ARGS", "PLATFORMS", "ATTESTATION", "SIGN"} {
		if _, ok := params[n]; !ok {
			t.Errorf("param %s is missing", n)
		}
	}
	if params["EXTRA_ARGS"].Type != pipelinev1.ParamTypeArray {
		t.Errorf("EXTRA_ARGS is %q, want an array (as in the catalog's kaniko Task)", params["EXTRA_ARGS"].Type)
	}
	ws := map[string]pipelinev1.WorkspaceDeclaration{}
	for _, w := range task.Spec.Workspaces {
		ws[w.Name] = w
	}
	if _, ok := ws["source"]; !ok || ws["source"].Optional {
		t.Errorf("workspace source must be declared and required")
	}
	if w, ok := ws["dockerconfig"]; !ok || !w.Optional || w.MountPath != "/kaniko/.docker" {
		t.Errorf("workspace dockerconfig: %+v, want optional at /kaniko/.docker", w)
	}
	if w, ok := ws["signing-secrets"]; !ok || !w.Optional {
		t.Errorf("workspace signing-secrets: %+v, want optional", w)
	}

	if len(task.Spec.Steps) != 1 {
		t.Fatalf("%d steps, want 1", len(task.Spec.Steps))
	}
	step := task.Spec.Steps[0]
	if step.Image != "$(params.BUILDER_IMAGE)" {
		t.Errorf("step image %q, want $(params.BUILDER_IMAGE)", step.Image)
	}
	env := map[string]string{}
	for _, e := range step.Env {
		env[e.Name] = e.Value
	}
	// Where each result is written.
	writers := map[string]string{}
	for name, v := range env {
		for _, m := range resultRef.FindAllStringSubmatch(v, -1) {
			writers[m[1]] = name
		}
	}
	want := map[string]string{
		"IMAGE_DIGEST": "KIMIA_DIGEST_FILE",
		"IMAGES":       "KIMIA_IMAGE_NAME_WITH_DIGEST_FILE",
		"IMAGE_URL":    "IMAGE_URL_FILE",
	}
	for _, r := range task.Spec.Results {
		if writers[r.Name] != want[r.Name] {
			t.Errorf("result %s is written through %q, want %q", r.Name, writers[r.Name], want[r.Name])
		}
		delete(want, r.Name)
	}
	for r := range want {
		t.Errorf("result %s is not declared", r)
	}
	if !strings.Contains(step.Script, `> "$IMAGE_URL_FILE"`) {
		t.Errorf("the script does not write IMAGE_URL")
	}
	// Every param is used, and array params only as whole arguments.
	used := map[string]bool{}
	for _, s := range append(append([]string{step.Image, step.Script, step.WorkingDir}, step.Args...), envValues(step.Env)...) {
		for _, m := range paramRef.FindAllStringSubmatch(s, -1) {
			used[m[1]] = true
		}
	}
	for n := range params {
		if !used[n] {
			t.Errorf("param %s is declared but not used", n)
		}
	}
	if len(step.Args) != 1 || step.Args[0] != "$(params.EXTRA_ARGS[*])" {
		t.Errorf("args %v, want [$(params.EXTRA_ARGS[*])]", step.Args)
	}
	if paramRef.MatchString(step.Script) {
		t.Errorf("the script interpolates params into shell; pass them through env")
	}
	// Tekton's own defaulting and validation, as its admission webhook
	// does.
	task.SetDefaults(t.Context())
	if err := task.Validate(t.Context()); err != nil {
		t.Errorf("Tekton rejects the Task: %v", err)
	}
}

func envValues(es []corev1.EnvVar) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Value)
	}
	return out
}
