package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/urfave/cli/v2"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/rapidfort/kimia/flags"
)

// gitopsDoc is the page these tests keep true.
const gitopsDoc = "../docs/gitops.md"

// The repository the page's GitOps objects read from.
var (
	kimiaRepo   = regexp.MustCompile(`^https://github\.com/rapidfort/kimia(\.git)?/?$`)
	kimiaRawURL = regexp.MustCompile(`^https://raw\.githubusercontent\.com/rapidfort/kimia/[^/]+/(deploy/.+)$`)
)

// Local types for the APIs whose Go modules the project does not import
// (Argo CD, Flux, kustomize): only the fields the page uses, decoded
// strictly, so a misspelt or misplaced field fails.

type objectMeta struct {
	Name         string            `json:"name,omitempty"`
	GenerateName string            `json:"generateName,omitempty"`
	Namespace    string            `json:"namespace,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// argoApplication is argoproj.io/v1alpha1 Application.
type argoApplication struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		Project string `json:"project"`
		Source  struct {
			RepoURL        string `json:"repoURL"`
			TargetRevision string `json:"targetRevision,omitempty"`
			Path           string `json:"path,omitempty"`
		} `json:"source"`
		Destination struct {
			Server    string `json:"server,omitempty"`
			Name      string `json:"name,omitempty"`
			Namespace string `json:"namespace,omitempty"`
		} `json:"destination"`
		SyncPolicy *struct {
			Automated *struct {
				Prune    bool `json:"prune,omitempty"`
				SelfHeal bool `json:"selfHeal,omitempty"`
			} `json:"automated,omitempty"`
			SyncOptions              []string `json:"syncOptions,omitempty"`
			ManagedNamespaceMetadata *struct {
				Labels      map[string]string `json:"labels,omitempty"`
				Annotations map[string]string `json:"annotations,omitempty"`
			} `json:"managedNamespaceMetadata,omitempty"`
		} `json:"syncPolicy,omitempty"`
	} `json:"spec"`
}

// fluxGitRepository is source.toolkit.fluxcd.io/v1 GitRepository.
type fluxGitRepository struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		Interval string `json:"interval"`
		URL      string `json:"url"`
		Ref      *struct {
			Branch string `json:"branch,omitempty"`
			Tag    string `json:"tag,omitempty"`
			SemVer string `json:"semver,omitempty"`
			Name   string `json:"name,omitempty"`
			Commit string `json:"commit,omitempty"`
		} `json:"ref,omitempty"`
		Ignore    string `json:"ignore,omitempty"`
		SecretRef *struct {
			Name string `json:"name"`
		} `json:"secretRef,omitempty"`
		Timeout string `json:"timeout,omitempty"`
	} `json:"spec"`
}

// fluxKustomization is kustomize.toolkit.fluxcd.io/v1 Kustomization.
type fluxKustomization struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		Interval  string `json:"interval"`
		SourceRef struct {
			Kind      string `json:"kind"`
			Name      string `json:"name"`
			Namespace string `json:"namespace,omitempty"`
		} `json:"sourceRef"`
		Path            string `json:"path,omitempty"`
		TargetNamespace string `json:"targetNamespace,omitempty"`
		Prune           bool   `json:"prune"`
		Force           bool   `json:"force,omitempty"`
		Wait            bool   `json:"wait,omitempty"`
		Timeout         string `json:"timeout,omitempty"`
		DependsOn       []struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace,omitempty"`
		} `json:"dependsOn,omitempty"`
	} `json:"spec"`
}

// kustomization is a kustomization.yaml (kustomize.config.k8s.io/v1beta1).
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources,omitempty"`
	Patches    []struct {
		Path   string `json:"path,omitempty"`
		Patch  string `json:"patch,omitempty"`
		Target *struct {
			Group              string `json:"group,omitempty"`
			Version            string `json:"version,omitempty"`
			Kind               string `json:"kind,omitempty"`
			Name               string `json:"name,omitempty"`
			Namespace          string `json:"namespace,omitempty"`
			LabelSelector      string `json:"labelSelector,omitempty"`
			AnnotationSelector string `json:"annotationSelector,omitempty"`
		} `json:"target,omitempty"`
	} `json:"patches,omitempty"`
	ConfigMapGenerator []struct {
		Name     string   `json:"name"`
		Files    []string `json:"files,omitempty"`
		Literals []string `json:"literals,omitempty"`
	} `json:"configMapGenerator,omitempty"`
}

// fence is one fenced code block of the page.
type fence struct {
	lang string
	line int // of the opening fence
	text string
}

func (f fence) String() string { return fmt.Sprintf("%s:%d (%s block)", gitopsDoc, f.line, f.lang) }

// fences returns the page's fenced code blocks, and the problems of its
// layout: a fence that is not at the start of its line (a block inside a
// list) is one, so that no block escapes the checks.
func fences(t *testing.T) ([]fence, []string) {
	t.Helper()
	b, err := os.ReadFile(gitopsDoc)
	if err != nil {
		t.Fatal(err)
	}
	var out []fence
	var problems []string
	var cur *fence
	var body []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if !strings.HasPrefix(trimmed, "```") {
			if cur != nil {
				body = append(body, line)
			}
			continue
		}
		if trimmed != line {
			problems = append(problems, fmt.Sprintf("%s:%d: indented fence; keep code blocks at the start of the line", gitopsDoc, n))
		}
		if cur == nil {
			lang := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(trimmed, "```")))
			if lang == "yml" {
				lang = "yaml"
			}
			cur = &fence{lang: lang, line: n}
			body = nil
			continue
		}
		cur.text = strings.Join(body, "\n") + "\n"
		out = append(out, *cur)
		cur = nil
	}
	if cur != nil {
		t.Fatalf("%s:%d: unclosed code block", gitopsDoc, cur.line)
	}
	return out, problems
}

// gitopsObjects are the objects of the page's yaml blocks, decoded.
type gitopsObjects struct {
	jobs           []*batchv1.Job
	pods           []*corev1.Pod
	daemonSets     []*appsv1.DaemonSet
	pipelines      []*pipelinev1.Pipeline
	pipelineRuns   []*pipelinev1.PipelineRun
	applications   []*argoApplication
	gitRepos       []*fluxGitRepository
	fluxKusts      []*fluxKustomization
	kustomizations []*kustomization
	// where each object came from, for messages
	where map[any]string
}

// decodeGitOps decodes every document of every yaml block of the page with
// its API's type, unknown fields rejected. What does not decode is
// returned, for TestGitOpsDocDecodesStrictly to report; the other tests
// check what did.
func decodeGitOps(t *testing.T) (*gitopsObjects, []string) {
	t.Helper()
	objs := &gitopsObjects{where: map[any]string{}}
	blocks, problems := fences(t)
	dir := t.TempDir()
	for i, f := range blocks {
		if f.lang != "yaml" {
			continue
		}
		// The block as a file, split into documents by manifests_test.go's
		// docs.
		file := filepath.Join(dir, fmt.Sprintf("block-%d.yaml", i))
		if err := os.WriteFile(file, []byte(f.text), 0o644); err != nil {
			t.Fatal(err)
		}
		ds := docs(t, file)
		if len(ds) == 0 {
			problems = append(problems, fmt.Sprintf("%v: no YAML document", f))
		}
		for j, d := range ds {
			where := fmt.Sprintf("%v document %d", f, j)
			av, kind := kindOf(t, d)
			var obj any
			switch av + "/" + kind {
			case "batch/v1/Job":
				o := &batchv1.Job{}
				objs.jobs, obj = append(objs.jobs, o), o
			case "v1/Pod":
				o := &corev1.Pod{}
				objs.pods, obj = append(objs.pods, o), o
			case "apps/v1/DaemonSet":
				o := &appsv1.DaemonSet{}
				objs.daemonSets, obj = append(objs.daemonSets, o), o
			case "tekton.dev/v1/Pipeline":
				o := &pipelinev1.Pipeline{}
				objs.pipelines, obj = append(objs.pipelines, o), o
			case "tekton.dev/v1/PipelineRun":
				o := &pipelinev1.PipelineRun{}
				objs.pipelineRuns, obj = append(objs.pipelineRuns, o), o
			case "argoproj.io/v1alpha1/Application":
				o := &argoApplication{}
				objs.applications, obj = append(objs.applications, o), o
			case "source.toolkit.fluxcd.io/v1/GitRepository":
				o := &fluxGitRepository{}
				objs.gitRepos, obj = append(objs.gitRepos, o), o
			case "kustomize.toolkit.fluxcd.io/v1/Kustomization":
				o := &fluxKustomization{}
				objs.fluxKusts, obj = append(objs.fluxKusts, o), o
			case "kustomize.config.k8s.io/v1beta1/Kustomization":
				o := &kustomization{}
				objs.kustomizations, obj = append(objs.kustomizations, o), o
			default:
				problems = append(problems, fmt.Sprintf("%s: %s %s has no decoder in this test", where, av, kind))
				continue
			}
			if err := yaml.UnmarshalStrict(d, obj); err != nil {
				problems = append(problems, fmt.Sprintf("%s (%s): %v", where, kind, err))
			}
			objs.where[obj] = where
		}
	}
	return objs, problems
}

// pageObjects returns the page's objects for the tests other than
// TestGitOpsDocDecodesStrictly, which reports decoding errors.
func pageObjects(t *testing.T) *gitopsObjects {
	t.Helper()
	objs, _ := decodeGitOps(t)
	return objs
}

// TestGitOpsDocDecodesStrictly decodes every yaml block of the page with
// its API type and checks that each section's objects are there.
func TestGitOpsDocDecodesStrictly(t *testing.T) {
	objs, problems := decodeGitOps(t)
	for _, p := range problems {
		t.Error(p)
	}
	for what, n := range map[string]int{
		"Job (Argo CD hook)":                    len(objs.jobs),
		"Pod (Jenkins agent)":                   len(objs.pods),
		"DaemonSet (seccomp profile)":           len(objs.daemonSets),
		"Pipeline":                              len(objs.pipelines),
		"PipelineRun":                           len(objs.pipelineRuns),
		"Argo CD Application":                   len(objs.applications),
		"Flux GitRepository":                    len(objs.gitRepos),
		"Flux Kustomization":                    len(objs.fluxKusts),
		"kustomization.yaml (overlay, seccomp)": len(objs.kustomizations),
	} {
		if n == 0 {
			t.Errorf("docs/gitops.md has no %s", what)
		}
	}
	for _, k := range objs.fluxKusts {
		for _, d := range []string{k.Spec.Interval, k.Spec.Timeout} {
			if _, err := time.ParseDuration(d); d != "" && err != nil {
				t.Errorf("%s: %v", objs.where[k], err)
			}
		}
	}
	for _, g := range objs.gitRepos {
		if _, err := time.ParseDuration(g.Spec.Interval); err != nil {
			t.Errorf("%s: interval: %v", objs.where[g], err)
		}
	}
	// Annotations are free-form to the decoder: check Argo CD's by name.
	argoAnnotations := map[string][]string{
		"argocd.argoproj.io/hook":               {"PreSync", "Sync", "PostSync", "SyncFail", "Skip", "PreDelete", "PostDelete"},
		"argocd.argoproj.io/hook-delete-policy": {"HookSucceeded", "HookFailed", "BeforeHookCreation"},
	}
	for _, j := range objs.jobs {
		for k, v := range j.Annotations {
			allowed, ok := argoAnnotations[k]
			if !ok && strings.HasPrefix(k, "argocd.argoproj.io/") {
				t.Errorf("%s: unknown Argo CD annotation %s", objs.where[j], k)
			}
			for _, v := range strings.Split(v, ",") {
				if ok && !slices.Contains(allowed, v) {
					t.Errorf("%s: %s: %q is not one of %v", objs.where[j], k, v, allowed)
				}
			}
		}
	}
	// Each DaemonSet reads a ConfigMap that a kustomization generates.
	generated := map[string]bool{}
	for _, k := range objs.kustomizations {
		for _, g := range k.ConfigMapGenerator {
			generated[g.Name] = true
		}
	}
	for _, ds := range objs.daemonSets {
		for _, v := range ds.Spec.Template.Spec.Volumes {
			if v.ConfigMap != nil && !generated[v.ConfigMap.Name] {
				t.Errorf("%s: ConfigMap %s is not generated by any kustomization on the page", objs.where[ds], v.ConfigMap.Name)
			}
		}
	}
}

// TestGitOpsLocalDecodersAreStrict: the local types reject a misspelt
// field, as the API types do.
func TestGitOpsLocalDecodersAreStrict(t *testing.T) {
	for name, tc := range map[string]struct {
		doc string
		obj any
	}{
		"Application":     {"apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec:\n  source:\n    repoUrl: x\n    pth: y\n", &argoApplication{}},
		"GitRepository":   {"apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nspec:\n  ref:\n    brnch: main\n", &fluxGitRepository{}},
		"Kustomization":   {"apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nspec:\n  sourceref: {}\n  forse: true\n", &fluxKustomization{}},
		"kustomization":   {"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\npatchesJson: []\n", &kustomization{}},
		"misplaced field": {"apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec:\n  path: deploy/tekton\n", &argoApplication{}},
	} {
		if err := yaml.UnmarshalStrict([]byte(tc.doc), tc.obj); err == nil {
			t.Errorf("%s: a wrong field decoded without error", name)
		}
	}
}

// taskInterface is what a Task declares: params (type, required),
// workspaces (required) and results.
type taskInterface struct {
	name       string
	params     map[string]paramDecl
	workspaces map[string]bool // name -> required
	results    map[string]bool
}

type paramDecl struct {
	typ      pipelinev1.ParamType
	required bool
}

func interfaceOf(task *pipelinev1.Task) taskInterface {
	ti := taskInterface{name: "Task " + task.Name, params: map[string]paramDecl{}, workspaces: map[string]bool{}, results: map[string]bool{}}
	for _, p := range task.Spec.Params {
		typ := p.Type
		if typ == "" {
			typ = pipelinev1.ParamTypeString
		}
		ti.params[p.Name] = paramDecl{typ: typ, required: p.Default == nil}
	}
	for _, w := range task.Spec.Workspaces {
		ti.workspaces[w.Name] = !w.Optional
	}
	for _, r := range task.Spec.Results {
		ti.results[r.Name] = true
	}
	return ti
}

// shippedTask is deploy/tekton/kimia.yaml.
func shippedTask(t *testing.T) *pipelinev1.Task {
	t.Helper()
	var task pipelinev1.Task
	if err := yaml.UnmarshalStrict(docs(t, "tekton/kimia.yaml")[0], &task); err != nil {
		t.Fatal(err)
	}
	return &task
}

// gitClone010 is the interface of the Tekton catalog's git-clone Task,
// version 0.10 (github.com/tektoncd/catalog, task/git-clone/0.10/git-clone.yaml),
// copied here because the test cannot fetch it.
var gitClone010 = func() taskInterface {
	ti := taskInterface{
		name:       "catalog git-clone 0.10",
		params:     map[string]paramDecl{"url": {pipelinev1.ParamTypeString, true}},
		workspaces: map[string]bool{"output": true, "ssh-directory": false, "basic-auth": false, "ssl-ca-directory": false},
		results:    map[string]bool{"commit": true, "url": true, "committer-date": true},
	}
	for _, p := range []string{"revision", "refspec", "submodules", "depth", "sslVerify", "crtFileName", "subdirectory",
		"sparseCheckoutDirectories", "deleteExisting", "httpProxy", "httpsProxy", "noProxy", "verbose", "gitInitImage", "userHome"} {
		ti.params[p] = paramDecl{pipelinev1.ParamTypeString, false}
	}
	return ti
}()

// referencedTask returns the interface of the Task a pipeline task runs.
func referencedTask(pt pipelinev1.PipelineTask, shipped *pipelinev1.Task) (taskInterface, error) {
	ref := pt.TaskRef
	if ref == nil {
		return taskInterface{}, fmt.Errorf("no taskRef")
	}
	if ref.Resolver == "" {
		if ref.Kind != "" && ref.Kind != pipelinev1.NamespacedTaskKind {
			return taskInterface{}, fmt.Errorf("taskRef kind %q, want Task", ref.Kind)
		}
		if ref.Name != shipped.Name {
			return taskInterface{}, fmt.Errorf("taskRef names %q, but the shipped Task is %q", ref.Name, shipped.Name)
		}
		return interfaceOf(shipped), nil
	}
	rp := map[string]string{}
	for _, p := range ref.Params {
		rp[p.Name] = p.Value.StringVal
	}
	switch {
	case ref.Resolver == "git" && rp["url"] == "https://github.com/tektoncd/catalog.git" && rp["pathInRepo"] == "task/git-clone/0.10/git-clone.yaml":
		return gitClone010, nil
	case ref.Resolver == "git" && kimiaRepo.MatchString(rp["url"]) && rp["pathInRepo"] == "deploy/tekton/kimia.yaml":
		return interfaceOf(shipped), nil
	}
	return taskInterface{}, fmt.Errorf("taskRef %+v: a Task this test does not know", ref.ResolverRef)
}

var taskResultRef = regexp.MustCompile(`\$\(tasks\.([a-z0-9-]+)\.results\.([A-Za-z0-9_-]+)`)

// TestGitOpsPipelineUsesTheShippedTask checks the Pipeline against the
// Task in deploy/tekton/kimia.yaml (and the catalog's git-clone): params,
// workspaces and results by name and type, required ones included; and
// the PipelineRun against the Pipeline. Tekton's own defaulting and
// validation run on both.
func TestGitOpsPipelineUsesTheShippedTask(t *testing.T) {
	objs := pageObjects(t)
	shipped := shippedTask(t)
	pipelines := map[string]*pipelinev1.Pipeline{}
	usesShipped := 0
	for _, p := range objs.pipelines {
		where := objs.where[p]
		pipelines[p.Name] = p
		byTask := map[string]taskInterface{}
		for _, pt := range append(slices.Clone(p.Spec.Tasks), p.Spec.Finally...) {
			ti, err := referencedTask(pt, shipped)
			if err != nil {
				t.Errorf("%s: task %s: %v", where, pt.Name, err)
				continue
			}
			byTask[pt.Name] = ti
			if ti.name == "Task "+shipped.Name {
				usesShipped++
			}
			given := map[string]bool{}
			for _, prm := range pt.Params {
				given[prm.Name] = true
				d, ok := ti.params[prm.Name]
				if !ok {
					t.Errorf("%s: task %s passes param %s, which %s does not declare", where, pt.Name, prm.Name, ti.name)
					continue
				}
				if prm.Value.Type != d.typ {
					t.Errorf("%s: task %s passes %s as %s, %s declares it %s", where, pt.Name, prm.Name, prm.Value.Type, ti.name, d.typ)
				}
			}
			for n, d := range ti.params {
				if d.required && !given[n] {
					t.Errorf("%s: task %s does not pass the required param %s of %s", where, pt.Name, n, ti.name)
				}
			}
			bound := map[string]bool{}
			for _, w := range pt.Workspaces {
				bound[w.Name] = true
				if _, ok := ti.workspaces[w.Name]; !ok {
					t.Errorf("%s: task %s binds workspace %s, which %s does not declare", where, pt.Name, w.Name, ti.name)
				}
			}
			for n, required := range ti.workspaces {
				if required && !bound[n] {
					t.Errorf("%s: task %s does not bind the required workspace %s of %s", where, pt.Name, n, ti.name)
				}
			}
		}
		// Every result read anywhere in the Pipeline is declared by the
		// Task that writes it.
		b, err := json.Marshal(p.Spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range taskResultRef.FindAllStringSubmatch(string(b), -1) {
			ti, ok := byTask[m[1]]
			if !ok {
				t.Errorf("%s: reads a result of %s, which is not a task of the Pipeline", where, m[1])
				continue
			}
			if !ti.results[m[2]] {
				t.Errorf("%s: reads result %s of task %s, which %s does not declare", where, m[2], m[1], ti.name)
			}
		}
		p.SetDefaults(t.Context())
		if err := p.Validate(t.Context()); err != nil {
			t.Errorf("%s: Tekton rejects the Pipeline: %v", where, err)
		}
	}
	if usesShipped == 0 {
		t.Errorf("no Pipeline on the page runs the shipped Task %q", shipped.Name)
	}

	for _, pr := range objs.pipelineRuns {
		where := objs.where[pr]
		if pr.Spec.PipelineRef == nil {
			t.Errorf("%s: no pipelineRef", where)
			continue
		}
		p, ok := pipelines[pr.Spec.PipelineRef.Name]
		if !ok {
			t.Errorf("%s: pipelineRef %q is not a Pipeline on the page", where, pr.Spec.PipelineRef.Name)
			continue
		}
		declared := map[string]pipelinev1.ParamSpec{}
		for _, ps := range p.Spec.Params {
			declared[ps.Name] = ps
		}
		given := map[string]bool{}
		for _, prm := range pr.Spec.Params {
			given[prm.Name] = true
			d, ok := declared[prm.Name]
			if !ok {
				t.Errorf("%s: param %s is not declared by Pipeline %s", where, prm.Name, p.Name)
			} else if d.Type != "" && prm.Value.Type != d.Type {
				t.Errorf("%s: param %s is %s, the Pipeline declares %s", where, prm.Name, prm.Value.Type, d.Type)
			}
		}
		for n, d := range declared {
			if d.Default == nil && !given[n] {
				t.Errorf("%s: the required param %s of Pipeline %s is not given", where, n, p.Name)
			}
		}
		bound := map[string]bool{}
		for _, w := range pr.Spec.Workspaces {
			bound[w.Name] = true
			if !slices.ContainsFunc(p.Spec.Workspaces, func(d pipelinev1.PipelineWorkspaceDeclaration) bool { return d.Name == w.Name }) {
				t.Errorf("%s: workspace %s is not declared by Pipeline %s", where, w.Name, p.Name)
			}
		}
		for _, d := range p.Spec.Workspaces {
			if !d.Optional && !bound[d.Name] {
				t.Errorf("%s: the required workspace %s of Pipeline %s is not bound", where, d.Name, p.Name)
			}
		}
		for _, s := range pr.Spec.TaskRunSpecs {
			if !slices.ContainsFunc(p.Spec.Tasks, func(pt pipelinev1.PipelineTask) bool { return pt.Name == s.PipelineTaskName }) {
				t.Errorf("%s: taskRunSpecs names %s, which is not a task of Pipeline %s", where, s.PipelineTaskName, p.Name)
			}
		}
		// The API server turns generateName into a name before Tekton's
		// admission webhook validates the run.
		if pr.Name == "" && pr.GenerateName != "" {
			pr.Name = pr.GenerateName + "x7k2p"
		}
		pr.SetDefaults(t.Context())
		if err := pr.Validate(t.Context()); err != nil {
			t.Errorf("%s: Tekton rejects the PipelineRun: %v", where, err)
		}
	}
}

var kimiaImage = regexp.MustCompile(`^ghcr\.io/rapidfort/kimia(-bud)?([:@].*)?$`)

// isKimiaImage reports whether an image is one of kimia's.
func isKimiaImage(image string) bool { return kimiaImage.MatchString(image) }

// binaryOf is the binary an image of kimia runs.
func binaryOf(image string) string {
	if strings.HasPrefix(image, "ghcr.io/rapidfort/kimia-bud") {
		return "kimia-bud"
	}
	return "kimia"
}

// podSpecs returns the pod specs of the page's Jobs and Pods.
func (o *gitopsObjects) podSpecs() map[string]*corev1.PodSpec {
	out := map[string]*corev1.PodSpec{}
	for _, j := range o.jobs {
		out[o.where[j]] = &j.Spec.Template.Spec
	}
	for _, p := range o.pods {
		out[o.where[p]] = &p.Spec
	}
	return out
}

// TestGitOpsPodsKeepTheJobSecurityContext: every pod on the page that runs
// kimia (the Argo CD hook Job, the Jenkins agent) has deploy/job.yaml's
// pod and container securityContext, volumes and mounts.
func TestGitOpsPodsKeepTheJobSecurityContext(t *testing.T) {
	objs := pageObjects(t)
	want := jobs(t)["job.yaml"].Spec.Template.Spec
	wantC := want.Containers[0]
	checked := 0
	for where, spec := range objs.podSpecs() {
		for _, c := range spec.Containers {
			if !isKimiaImage(c.Image) {
				continue
			}
			checked++
			for _, d := range []struct {
				what      string
				got, want any
			}{
				{"pod securityContext", spec.SecurityContext, want.SecurityContext},
				{"automountServiceAccountToken", spec.AutomountServiceAccountToken, want.AutomountServiceAccountToken},
				{"volumes", spec.Volumes, want.Volumes},
				{"container securityContext", c.SecurityContext, wantC.SecurityContext},
				{"volumeMounts", c.VolumeMounts, wantC.VolumeMounts},
				{"resources", c.Resources, wantC.Resources},
			} {
				if !reflect.DeepEqual(d.got, d.want) {
					g, _ := json.Marshal(d.got)
					w, _ := json.Marshal(d.want)
					t.Errorf("%s: container %s: %s is\n  %s\nwant deploy/job.yaml's\n  %s", where, c.Name, d.what, g, w)
				}
			}
		}
	}
	if checked < 2 {
		t.Errorf("checked %d kimia pods, want the Argo CD hook Job and the Jenkins pod", checked)
	}
}

// TestGitOpsOverlayPatchesTheShippedJob: a kustomization that takes a
// manifest of deploy/ by its raw URL patches objects and containers that
// manifest has (a strategic merge patch naming another container would
// add one), and its patches decode strictly with the API types.
func TestGitOpsOverlayPatchesTheShippedJob(t *testing.T) {
	objs := pageObjects(t)
	overlays := 0
	for _, k := range objs.kustomizations {
		where := objs.where[k]
		base := map[string]*batchv1.Job{}
		for _, r := range k.Resources {
			m := kimiaRawURL.FindStringSubmatch(r)
			if m == nil {
				continue
			}
			for _, d := range docs(t, strings.TrimPrefix(m[1], "deploy/")) {
				var j batchv1.Job
				if _, kind := kindOf(t, d); kind != "Job" {
					continue
				}
				if err := yaml.UnmarshalStrict(d, &j); err != nil {
					t.Fatal(err)
				}
				base[j.Name] = &j
			}
		}
		if len(base) == 0 {
			continue
		}
		overlays++
		if len(k.Patches) == 0 {
			t.Errorf("%s: no patches", where)
		}
		for i, p := range k.Patches {
			if p.Patch == "" {
				t.Errorf("%s: patch %d is not inline; this test reads inline patches only", where, i)
				continue
			}
			av, kind := kindOf(t, []byte(p.Patch))
			if av != "batch/v1" || kind != "Job" {
				t.Errorf("%s: patch %d is a %s %s, want a batch/v1 Job", where, i, av, kind)
				continue
			}
			var patch batchv1.Job
			if err := yaml.UnmarshalStrict([]byte(p.Patch), &patch); err != nil {
				t.Errorf("%s: patch %d: %v", where, i, err)
				continue
			}
			if tg := p.Target; tg != nil && (tg.Kind != "Job" || (tg.Group != "" && tg.Group != "batch") || base[tg.Name] == nil) {
				t.Errorf("%s: patch %d targets %+v, which deploy/ does not have", where, i, *tg)
			}
			b := base[patch.Name]
			if b == nil {
				t.Errorf("%s: patch %d names Job %q, which the base does not have", where, i, patch.Name)
				continue
			}
			for _, c := range patch.Spec.Template.Spec.Containers {
				if !slices.ContainsFunc(b.Spec.Template.Spec.Containers, func(bc corev1.Container) bool { return bc.Name == c.Name }) {
					t.Errorf("%s: patch %d names container %q, which Job %s does not have: it would add a container", where, i, c.Name, b.Name)
				}
			}
		}
	}
	if overlays == 0 {
		t.Error("no kustomization on the page takes a manifest of deploy/ by its raw URL")
	}
}

// cliFlags are a binary's (or command's) flags: name -> takes a value.
type cliFlags struct {
	takesValue map[string]bool
	env        map[string]bool
	commands   map[string]*cliFlags
}

func flagSet(fs []cli.Flag) *cliFlags {
	out := &cliFlags{takesValue: map[string]bool{"help": false, "h": false}, env: map[string]bool{}}
	for _, f := range fs {
		df, ok := f.(cli.DocGenerationFlag)
		for _, n := range f.Names() {
			out.takesValue[n] = ok && df.TakesValue()
		}
		if ok {
			for _, e := range df.GetEnvVars() {
				out.env[e] = true
			}
		}
	}
	return out
}

// binaryFlags returns the flags of kimia or kimia-bud, from the same
// definitions the binaries (cmd/kimia, cmd/kimia-bud) and the CLI reference
// use.
func binaryFlags(t *testing.T, name string) *cliFlags {
	t.Helper()
	b := map[string]flags.Binary{"kimia": flags.Kimia, "kimia-bud": flags.KimiaBud}[name]
	if b.Name == "" {
		t.Fatalf("no binary %q", name)
	}
	app := flags.App(b)
	out := flagSet(app.Flags)
	out.takesValue["version"] = false
	out.commands = map[string]*cliFlags{}
	for _, c := range app.Commands {
		out.commands[c.Name] = flagSet(c.Flags)
	}
	return out
}

// argProblems returns what is wrong with args given to a binary: unknown
// flags, a value flag without a value, a positional argument.
func argProblems(fs *cliFlags, args []string) []string {
	var out []string
	i := 0
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, ok := fs.commands[args[0]]
		if !ok {
			return []string{fmt.Sprintf("%q is neither a flag nor a command", args[0])}
		}
		fs, i = cmd, 1
	}
	for ; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			out = append(out, fmt.Sprintf("positional argument %q (kimia takes flags only)", a))
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takesValue, ok := fs.takesValue[name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("unknown flag %s", a))
		case takesValue && !hasValue:
			if i+1 >= len(args) || strings.HasPrefix(args[i+1], "-") {
				out = append(out, fmt.Sprintf("%s needs a value", a))
			} else {
				i++
			}
		}
	}
	return out
}

// kimiaCommands returns the argument lists of the kimia and kimia-bud
// commands in a shell script (or a Jenkinsfile's sh steps): lines that
// start with the binary, joined over backslash continuations, up to the
// first shell operator.
func kimiaCommands(script string) map[string][][]string {
	out := map[string][][]string{}
	joined := strings.ReplaceAll(script, "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || (fields[0] != "kimia" && fields[0] != "kimia-bud") {
			continue
		}
		var args []string
		for _, f := range fields[1:] {
			if strings.ContainsAny(f[:1], ";|&><") || f == "2>" || f == "2>&1" {
				break
			}
			args = append(args, strings.Trim(f, `"'`))
		}
		out[fields[0]] = append(out[fields[0]], args)
	}
	return out
}

// TestGitOpsKimiaArgumentsAreFlags: every argument the page gives kimia (a
// kimia container's args, the overlay patch's args, the Pipeline's
// EXTRA_ARGS, the Jenkinsfile's command) and every KIMIA_* variable is a
// flag of the binary that receives it.
func TestGitOpsKimiaArgumentsAreFlags(t *testing.T) {
	objs := pageObjects(t)
	bins := map[string]*cliFlags{"kimia": binaryFlags(t, "kimia"), "kimia-bud": binaryFlags(t, "kimia-bud")}
	checked := 0
	check := func(where, bin string, args []string) {
		checked += len(args)
		for _, p := range argProblems(bins[bin], args) {
			t.Errorf("%s: %s: %s", where, bin, p)
		}
	}
	checkContainers := func(where string, cs []corev1.Container, defaultImage func(string) string) {
		for _, c := range cs {
			image := c.Image
			if image == "" && defaultImage != nil {
				image = defaultImage(c.Name)
			}
			if !isKimiaImage(image) {
				continue
			}
			bin := binaryOf(image)
			for _, e := range c.Env {
				if strings.HasPrefix(e.Name, "KIMIA_") && !bins[bin].env[e.Name] {
					t.Errorf("%s: container %s: %s is not the variable of any %s flag", where, c.Name, e.Name, bin)
				}
			}
			switch {
			case len(c.Command) == 0: // the image's entrypoint, kimia
				check(where+" container "+c.Name, bin, c.Args)
			case c.Command[0] == "kimia" || c.Command[0] == "kimia-bud":
				check(where+" container "+c.Name, c.Command[0], append(slices.Clone(c.Command[1:]), c.Args...))
			}
		}
	}
	for where, spec := range objs.podSpecs() {
		checkContainers(where, spec.Containers, nil)
	}
	// The overlay's patches, whose image may come from the base.
	for _, k := range objs.kustomizations {
		for _, p := range k.Patches {
			var patch batchv1.Job
			if err := yaml.UnmarshalStrict([]byte(p.Patch), &patch); err != nil {
				continue // reported by TestGitOpsOverlayPatchesTheShippedJob
			}
			checkContainers(objs.where[k]+" patch", patch.Spec.Template.Spec.Containers, func(string) string { return "ghcr.io/rapidfort/kimia:latest" })
		}
	}
	// EXTRA_ARGS of the shipped Task, run by the image BUILDER_IMAGE names.
	shipped := shippedTask(t)
	builder := ""
	for _, p := range shipped.Spec.Params {
		if p.Name == "BUILDER_IMAGE" && p.Default != nil {
			builder = p.Default.StringVal
		}
	}
	for _, pl := range objs.pipelines {
		for _, pt := range pl.Spec.Tasks {
			if pt.TaskRef == nil || pt.TaskRef.Name != shipped.Name {
				continue
			}
			image := builder
			for _, prm := range pt.Params {
				if prm.Name == "BUILDER_IMAGE" {
					image = prm.Value.StringVal
				}
			}
			for _, prm := range pt.Params {
				if prm.Name == "EXTRA_ARGS" {
					check(fmt.Sprintf("%s task %s EXTRA_ARGS", objs.where[pl], pt.Name), binaryOf(image), prm.Value.ArrayVal)
				}
			}
		}
	}
	// The shipped Task sets kimia's flags through KIMIA_* variables.
	for _, s := range shipped.Spec.Steps {
		for _, e := range s.Env {
			if strings.HasPrefix(e.Name, "KIMIA_") && !bins["kimia"].env[e.Name] {
				t.Errorf("deploy/tekton/kimia.yaml step %s: %s is not the variable of any kimia flag", s.Name, e.Name)
			}
		}
	}
	// Commands in the shell and Groovy blocks.
	commands := 0
	blocks, _ := fences(t)
	for _, f := range blocks {
		if f.lang == "yaml" {
			continue
		}
		for bin, cmds := range kimiaCommands(f.text) {
			for _, args := range cmds {
				commands++
				check(f.String(), bin, args)
			}
		}
	}
	if commands == 0 {
		t.Error("found no kimia command in the page's shell and Groovy blocks (the Jenkinsfile)")
	}
	if checked < 20 {
		t.Errorf("checked %d kimia arguments; the page has more: is the extraction broken?", checked)
	}
}

// TestFlagCheckCatchesMistakes: the argument check rejects what kimia
// would reject.
func TestFlagCheckCatchesMistakes(t *testing.T) {
	fs := binaryFlags(t, "kimia")
	for _, args := range [][]string{
		{"--destinaton=x"},
		{"--buildah-opt=a=b"}, // kimia-bud's only
		{"--destination"},
		{"--destination", "--no-push"},
		{"registry.example.com/app"},
		{"chek"},
	} {
		if len(argProblems(fs, args)) == 0 {
			t.Errorf("%q passed the flag check", args)
		}
	}
	for _, args := range [][]string{
		{"--context=.", "-f", "Dockerfile", "--destination", "r/a:1", "--cache", "--no-push=false"},
		{"check", "--platform=linux/arm64", "--json"},
	} {
		if p := argProblems(fs, args); len(p) > 0 {
			t.Errorf("%q: %v", args, p)
		}
	}
}

// unconfinedAppArmor reports whether a manifest of this repository asks
// for AppArmor Unconfined, in a pod or container of a Job or a Task step.
func unconfinedAppArmor(t *testing.T, file string) bool {
	t.Helper()
	unconfined := func(p *corev1.AppArmorProfile) bool {
		return p != nil && p.Type == corev1.AppArmorProfileTypeUnconfined
	}
	for _, d := range docs(t, file) {
		switch _, kind := kindOf(t, d); kind {
		case "Job":
			var j batchv1.Job
			if err := yaml.UnmarshalStrict(d, &j); err != nil {
				t.Fatal(err)
			}
			spec := j.Spec.Template.Spec
			if spec.SecurityContext != nil && unconfined(spec.SecurityContext.AppArmorProfile) {
				return true
			}
			for _, c := range spec.Containers {
				if c.SecurityContext != nil && unconfined(c.SecurityContext.AppArmorProfile) {
					return true
				}
			}
		case "Task":
			var task pipelinev1.Task
			if err := yaml.UnmarshalStrict(d, &task); err != nil {
				t.Fatal(err)
			}
			for _, s := range task.Spec.Steps {
				if s.SecurityContext != nil && unconfined(s.SecurityContext.AppArmorProfile) {
					return true
				}
			}
		}
	}
	return false
}

// TestGitOpsNamespaceAdmitsThePods: an Argo CD Application that syncs
// manifests of this repository into a namespace it labels gives that
// namespace a Pod Security level that admits their pods. Pod Security
// admission's baseline level refuses AppArmor Unconfined (Kubernetes 1.30
// and later), which the shipped manifests set, so it must be privileged.
func TestGitOpsNamespaceAdmitsThePods(t *testing.T) {
	objs := pageObjects(t)
	checked := 0
	for _, a := range objs.applications {
		sp := a.Spec.SyncPolicy
		if !kimiaRepo.MatchString(a.Spec.Source.RepoURL) || sp == nil || sp.ManagedNamespaceMetadata == nil {
			continue
		}
		level := sp.ManagedNamespaceMetadata.Labels["pod-security.kubernetes.io/enforce"]
		files, _ := filepath.Glob(filepath.Join("..", a.Spec.Source.Path, "*.yaml"))
		for _, f := range files {
			checked++
			rel := strings.TrimPrefix(filepath.ToSlash(f), "../deploy/")
			if unconfinedAppArmor(t, rel) && level != "" && level != "privileged" {
				t.Errorf("%s: namespace enforces Pod Security %q, which refuses the AppArmor Unconfined of deploy/%s", objs.where[a], level, rel)
			}
		}
	}
	if checked == 0 {
		t.Error("no Argo CD Application on the page labels the namespace of the shipped Task")
	}
}

var repoPath = regexp.MustCompile("(?:^|[^A-Za-z0-9_.-])((?:deploy|docs)/[A-Za-z0-9_.<>/-]*)")

// TestGitOpsPathsExist: every deploy/ and docs/ path the page names
// exists, and so do the paths its Argo CD and Flux objects read from this
// repository.
func TestGitOpsPathsExist(t *testing.T) {
	b, err := os.ReadFile(gitopsDoc)
	if err != nil {
		t.Fatal(err)
	}
	exists := func(p string) bool {
		_, err := os.Stat(filepath.Join("..", filepath.FromSlash(p)))
		return err == nil
	}
	seen := map[string]bool{}
	for _, m := range repoPath.FindAllStringSubmatch(string(b), -1) {
		p := strings.TrimRight(m[1], ".,")
		if seen[p] {
			continue
		}
		seen[p] = true
		var candidates []string
		if strings.Contains(p, "<arch>") {
			for _, arch := range []string{"amd64", "arm64"} {
				candidates = append(candidates, strings.ReplaceAll(p, "<arch>", arch))
			}
		} else {
			candidates = []string{p}
		}
		for _, c := range candidates {
			if i := strings.Index(c, "<"); i >= 0 {
				c = c[:i] // a placeholder such as deploy/<file>: its directory
			}
			if !exists(c) {
				t.Errorf("docs/gitops.md names %s, which does not exist", c)
			}
		}
	}
	if !seen["deploy/job.yaml"] || !seen["deploy/tekton/kimia.yaml"] {
		t.Errorf("docs/gitops.md does not name deploy/job.yaml and deploy/tekton/kimia.yaml")
	}

	objs := pageObjects(t)
	for _, a := range objs.applications {
		if !kimiaRepo.MatchString(a.Spec.Source.RepoURL) {
			continue
		}
		p := strings.Trim(a.Spec.Source.Path, "./")
		if !exists(p) {
			t.Errorf("%s: path %s does not exist in this repository", objs.where[a], a.Spec.Source.Path)
		}
		if p == "deploy" || p == "" {
			t.Errorf("%s: syncs %q, which holds example Jobs that would all build", objs.where[a], a.Spec.Source.Path)
		}
	}
	repos := map[string]*fluxGitRepository{}
	for _, g := range objs.gitRepos {
		repos[g.Metadata.Name] = g
	}
	for _, k := range objs.fluxKusts {
		g := repos[k.Spec.SourceRef.Name]
		if k.Spec.SourceRef.Kind != "GitRepository" || g == nil || !kimiaRepo.MatchString(g.Spec.URL) {
			continue
		}
		p := strings.TrimPrefix(k.Spec.Path, "./")
		if !exists(p) || p == "deploy" || p == "" {
			t.Errorf("%s: path %s is not a directory of deploy/ in this repository", objs.where[k], k.Spec.Path)
		}
		// With an ignore list that starts by excluding everything, the
		// path and each directory above it must be re-included, as in
		// .gitignore (an excluded directory is not descended into).
		if strings.HasPrefix(strings.TrimSpace(g.Spec.Ignore), "/*") {
			parts := strings.Split(strings.TrimSuffix(p, "/"), "/")
			for i := range parts {
				dir := "!/" + strings.Join(parts[:i+1], "/") + "/"
				if !slices.Contains(strings.Split(g.Spec.Ignore, "\n"), dir) {
					t.Errorf("%s: reads %s, but GitRepository %s's ignore does not re-include %s", objs.where[k], p, g.Metadata.Name, dir)
				}
			}
		}
	}
}
