package provenance

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func params() Params {
	epoch := time.Unix(1700000000, 0)
	return Params{
		Mode:         ModeMin,
		Source:       Source{Context: "https://user:tok3n@git.example/app.git", Git: &Git{URL: "https://user:tok3n@git.example/app.git", Ref: "main", Commit: strings.Repeat("a", 40)}},
		Dockerfile:   "build/Dockerfile",
		Target:       "final",
		Platforms:    []string{"linux/amd64", "linux/arm64"},
		Destinations: []string{"registry.example/app:1"},
		BuildArgs:    []KeyValue{{"VERSION", "1.2.3"}},
		SecretIDs:    []string{"npmrc"},
		SSHIDs:       []string{"default"},
		Reproducible: true, SourceDateEpoch: &epoch,
		Engine: "buildkit", EngineVersion: "v0.34.2", Daemon: "buildkitd v0.34.2", StorageDriver: "overlay", Rootless: true,
		KimiaVersion: "v1.0.0",
		BaseImages:   []BaseImage{{Ref: "registry.example:5000/library/busybox:latest", Digest: "sha256:" + strings.Repeat("b", 64)}},
		Started:      time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC),
		Finished:     time.Date(2025, 1, 1, 10, 1, 0, 0, time.UTC),
		InvocationID: "tekton:taskrun/ci/build-1/uid",
	}
}

func encode(t *testing.T, p Params) (string, map[string]any) {
	t.Helper()
	b, err := json.Marshal(Predicate(p))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return string(b), m
}

func get(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

func TestPredicateRecordsTheBuild(t *testing.T) {
	raw, m := encode(t, params())
	for _, tc := range []struct {
		name string
		path []string
		want any
	}{
		{"the build type is ours", []string{"buildDefinition", "buildType"}, BuildType},
		{"the Dockerfile path", []string{"buildDefinition", "externalParameters", "dockerfile"}, "build/Dockerfile"},
		{"the target", []string{"buildDefinition", "externalParameters", "target"}, "final"},
		{"the git commit of the context", []string{"buildDefinition", "externalParameters", "context", "git", "commit"}, strings.Repeat("a", 40)},
		{"reproducible", []string{"buildDefinition", "externalParameters", "reproducible"}, true},
		{"SOURCE_DATE_EPOCH", []string{"buildDefinition", "externalParameters", "sourceDateEpoch"}, float64(1700000000)},
		{"the engine", []string{"buildDefinition", "internalParameters", "engine"}, "buildkit"},
		{"the storage driver", []string{"buildDefinition", "internalParameters", "storageDriver"}, "overlay"},
		{"rootless", []string{"buildDefinition", "internalParameters", "rootless"}, true},
		{"the default builder id", []string{"runDetails", "builder", "id"}, DefaultBuilderID},
		{"the invocation id", []string{"runDetails", "metadata", "invocationId"}, "tekton:taskrun/ci/build-1/uid"},
		{"the start time", []string{"runDetails", "metadata", "startedOn"}, "2025-01-01T10:00:00Z"},
		{"the finish time", []string{"runDetails", "metadata", "finishedOn"}, "2025-01-01T10:01:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := get(m, tc.path...); got != tc.want {
				t.Errorf("%s = %v, want %v", strings.Join(tc.path, "."), got, tc.want)
			}
		})
	}
	t.Run("credentials in URLs are removed", func(t *testing.T) {
		if strings.Contains(raw, "tok3n") || strings.Contains(raw, "user:") {
			t.Errorf("predicate holds credentials: %s", raw)
		}
	})
	t.Run("dependencies are the git commit and the base image by digest", func(t *testing.T) {
		deps, _ := get(m, "buildDefinition", "resolvedDependencies").([]any)
		if len(deps) != 2 {
			t.Fatalf("resolvedDependencies = %v", deps)
		}
		git := deps[0].(map[string]any)
		if git["uri"] != "git+https://git.example/app.git@"+strings.Repeat("a", 40) || get(git, "digest", "sha1") != strings.Repeat("a", 40) {
			t.Errorf("git dependency %v", git)
		}
		base := deps[1].(map[string]any)
		if get(base, "digest", "sha256") != strings.Repeat("b", 64) || base["uri"] != "pkg:docker/registry.example%3A5000/library/busybox@latest" {
			t.Errorf("base image dependency %v", base)
		}
	})
	t.Run("secrets and ssh are named by id only", func(t *testing.T) {
		if s := get(m, "buildDefinition", "externalParameters", "secrets"); s == nil || !strings.Contains(raw, `"secrets":[{"id":"npmrc"}]`) {
			t.Errorf("secrets %v", s)
		}
	})
}

func TestBuildArgValuesOnlyInMaxMode(t *testing.T) {
	p := params()
	raw, _ := encode(t, p)
	if !strings.Contains(raw, `"buildArgs":[{"name":"VERSION"}]`) || strings.Contains(raw, "1.2.3") {
		t.Errorf("min mode: %s", raw)
	}
	p.Mode = ModeMax
	raw, _ = encode(t, p)
	if !strings.Contains(raw, `"buildArgs":[{"name":"VERSION","value":"1.2.3"}]`) {
		t.Errorf("max mode: %s", raw)
	}
}

func TestBuilderIDCanBeOverridden(t *testing.T) {
	p := params()
	p.BuilderID = "https://ci.example/builders/kimia"
	_, m := encode(t, p)
	if got := get(m, "runDetails", "builder", "id"); got != p.BuilderID {
		t.Errorf("builder id %v", got)
	}
}

func TestInvocationFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"an explicit id wins", map[string]string{EnvInvocationID: "run-7", EnvTaskRunUID: "u"}, "run-7"},
		{"a Tekton TaskRun", map[string]string{EnvTaskRunUID: "1234", EnvTaskRunName: "build-x", EnvPodNamespace: "ci", EnvJobUID: "j"}, "tekton:taskrun/ci/build-x/1234"},
		{"a Kubernetes Job", map[string]string{EnvJobUID: "5678", EnvJobName: "kimia-build", EnvPodNamespace: "ci", EnvPodUID: "p"}, "kubernetes:job/ci/kimia-build/5678"},
		{"a bare pod", map[string]string{EnvPodUID: "9", EnvPodName: "kimia-abc"}, "kubernetes:pod/kimia-abc/9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := InvocationFromEnv(func(k string) string { return tc.env[k] }); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("without any, a random UUID", func(t *testing.T) {
		a := InvocationFromEnv(func(string) string { return "" })
		b := InvocationFromEnv(func(string) string { return "" })
		if !strings.HasPrefix(a, "urn:uuid:") || len(a) != len("urn:uuid:")+36 || a == b {
			t.Errorf("got %q and %q", a, b)
		}
	})
}
