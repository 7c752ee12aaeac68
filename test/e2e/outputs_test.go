//go:build e2e

package e2e

// End-to-end tests of the shared outputs (push, digest files, archives)
// against the real registry. They drive the same code both binaries run
// after their engine, with images the tests make.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/flags"
	"github.com/rapidfort/kimia/internal/testenv"
	"github.com/rapidfort/kimia/publish"
	"github.com/rapidfort/kimia/registry"
)

var fastBackoff = registry.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Factor: 2}

func plainConfig(hosts ...string) engine.RegistryConfig {
	return engine.RegistryConfig{InsecureRegistries: hosts}
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(2048, 3)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// served returns the digest the registry serves for ref.
func served(t *testing.T, reg *testenv.Registry, ref string) v1.Hash {
	t.Helper()
	return reg.Descriptor(t, ref).Digest
}

func TestPushSeveralDestinations(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	img := randomImage(t)
	want, _ := img.Digest()
	dests := []string{reg.Ref("app/one:v1"), reg.Ref("app/two:v2"), reg.Ref("app/one:latest")}
	c := registry.New(plainConfig(reg.Host), 0, fastBackoff)
	pushed, err := c.Push(context.Background(), img, dests, registry.PushOptions{})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if len(pushed) != 3 {
		t.Fatalf("pushed %d destinations, want 3", len(pushed))
	}
	for i, d := range dests {
		if got := served(t, reg, d); got != want {
			t.Errorf("%s serves %s, want %s", d, got, want)
		}
		if pushed[i].Digest != want.String() {
			t.Errorf("reported digest %s, want %s", pushed[i].Digest, want)
		}
	}
	if got, want := pushed[1].Ref, reg.Ref("app/two")+"@"+want.String(); got != want {
		t.Errorf("reference = %s, want %s", got, want)
	}
	// Every layer is in both repositories (mounted or uploaded).
	layers, _ := img.Layers()
	for _, repo := range []string{"app/one", "app/two"} {
		for _, l := range layers {
			h, _ := l.Digest()
			resp, err := reg.HTTPClient().Head(reg.URL() + "/v2/" + repo + "/blobs/" + h.String())
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("blob %s missing in %s: %v %v", h, repo, err, resp)
			}
		}
	}
}

func TestPushIndex(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	idx, err := random.Index(1024, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	c := registry.New(plainConfig(reg.Host), 0, fastBackoff)
	if _, err := c.Push(context.Background(), idx, []string{reg.Ref("multi:1")}, registry.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	got := reg.Index(t, reg.Ref("multi:1"))
	if d, _ := got.Digest(); d != want {
		t.Fatalf("index digest %s, want %s", d, want)
	}
	im, _ := got.IndexManifest()
	for _, m := range im.Manifests {
		if _, err := reg.Get(reg.Ref("multi@" + m.Digest.String())); err != nil {
			t.Errorf("child manifest %s not in the registry: %v", m.Digest, err)
		}
	}
}

func TestDigestFilesMatchTheRegistry(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	img := randomImage(t)
	dests := []string{reg.Ref("files/a:1"), reg.Ref("files/b:2")}
	c := registry.New(plainConfig(reg.Host), 0, fastBackoff)
	pushed, err := c.Push(context.Background(), img, dests, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	d, _ := img.Digest()
	if err := publish.WriteDigestFile(filepath.Join(dir, "digest"), d); err != nil {
		t.Fatal(err)
	}
	if err := publish.WriteImageNameWithDigestFile(filepath.Join(dir, "names"), pushed); err != nil {
		t.Fatal(err)
	}
	if err := publish.WriteImageNameTagWithDigestFile(filepath.Join(dir, "tags.json"), pushed); err != nil {
		t.Fatal(err)
	}
	digest, _ := os.ReadFile(filepath.Join(dir, "digest"))
	for _, dest := range dests {
		if got := served(t, reg, dest); got.String() != string(digest) {
			t.Errorf("digest file %q, registry serves %s for %s", digest, got, dest)
		}
	}
	names, _ := os.ReadFile(filepath.Join(dir, "names"))
	lines := strings.Split(strings.TrimSpace(string(names)), "\n")
	if len(lines) != 2 {
		t.Fatalf("image-name-with-digest file has %d lines:\n%s", len(lines), names)
	}
	for i, l := range lines {
		repo, dg, _ := strings.Cut(l, "@")
		if want := strings.SplitN(dests[i], ":", 3); repo != want[0]+":"+want[1] {
			t.Errorf("line %d names %s, want repo of %s", i, repo, dests[i])
		}
		if got := served(t, reg, l); got.String() != dg {
			t.Errorf("line %d: registry serves %s for %s", i, got, l)
		}
	}
	var entries []publish.TagDigest
	b, _ := os.ReadFile(filepath.Join(dir, "tags.json"))
	if err := json.Unmarshal(b, &entries); err != nil {
		t.Fatalf("tag-with-digest file is not JSON: %v: %s", err, b)
	}
	for i, e := range entries {
		if e.Image != dests[i] || e.Digest != served(t, reg, dests[i]).String() {
			t.Errorf("entry %d = %+v, want %s at the served digest", i, e, dests[i])
		}
	}
}

func TestDockerArchiveHasEveryTag(t *testing.T) {
	img := randomImage(t)
	path := filepath.Join(t.TempDir(), "image.tar")
	dests := []string{"registry.example/app:v1", "registry.example/app:latest"}
	if err := publish.WriteTarball(path, img, dests); err != nil {
		t.Fatal(err)
	}
	want, _ := img.ConfigName()
	for _, d := range dests {
		tag, _ := name.NewTag(d)
		got, err := tarball.ImageFromPath(path, &tag)
		if err != nil {
			t.Fatalf("reading %s from the archive: %v", d, err)
		}
		if h, _ := got.ConfigName(); h != want {
			t.Errorf("%s config %s, want %s", d, h, want)
		}
	}
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatal("skopeo is not installed (Debian package skopeo; run hack/setup.sh)")
	}
	out, err := exec.Command(skopeo, "inspect", "--raw", "--config", "docker-archive:"+path+":"+dests[1]).Output()
	if err != nil {
		t.Fatalf("skopeo cannot read the archive: %v", err)
	}
	if h, _, _ := v1.SHA256(strings.NewReader(string(out))); h != want {
		t.Errorf("skopeo reads config %s, want %s", h, want)
	}
}

func TestOCILayoutOutput(t *testing.T) {
	idx, err := random.Index(512, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	if err := publish.WriteOCILayout(dir, publish.Image{Index: idx}, []string{"r.example/a:1"}); err != nil {
		t.Fatal(err)
	}
	got, err := publish.ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	gd, _ := got.Index.Digest()
	wd, _ := idx.Digest()
	if gd != wd {
		t.Errorf("layout holds %s, want %s", gd, wd)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	var top v1.IndexManifest
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if len(top.Manifests) != 1 || top.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "r.example/a:1" {
		t.Errorf("index.json lacks the reference name: %s", b)
	}
}

func TestPushOverTLS(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true, Host: "127.0.0.2"})
	img := randomImage(t)
	dest := reg.Ref("tls/app:1")

	_, err := registry.New(engine.RegistryConfig{}, 0, fastBackoff).Push(context.Background(), img, []string{dest}, registry.PushOptions{})
	if err == nil {
		t.Fatal("push to a registry with an unknown CA succeeded")
	}
	// The CLI shows request fields as flags.
	if msg := engine.NameFields(err.Error(), flags.FieldNames("buildkit-opt")); !errors.Is(err, engine.ErrRegistry) || !strings.Contains(msg, "--registry-certificate="+reg.Host+"=CA.pem") {
		t.Errorf("error %s: want a registry error that suggests --registry-certificate", msg)
	}

	cfg := engine.RegistryConfig{Certificates: []engine.HostFile{{Host: reg.Host, Path: reg.CAFile}}}
	if _, err := registry.New(cfg, 0, fastBackoff).Push(context.Background(), img, []string{dest}, registry.PushOptions{}); err != nil {
		t.Fatalf("push with the registry's CA: %v", err)
	}
	want, _ := img.Digest()
	if got := served(t, reg, dest); got != want {
		t.Errorf("served %s, want %s", got, want)
	}

	skip := engine.RegistryConfig{SkipTLSVerifyRegistries: []string{reg.Host}}
	if _, err := registry.New(skip, 0, fastBackoff).Push(context.Background(), img, []string{reg.Ref("tls/skip:1")}, registry.PushOptions{}); err != nil {
		t.Fatalf("push with --skip-tls-verify-registry: %v", err)
	}
}

func TestPushWithAuth(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{User: "builder", Password: "s3cret-pw"})
	img := randomImage(t)
	dest := reg.Ref("private/app:1")
	writeConfig := func(user, pw string) string {
		dir := t.TempDir()
		b, _ := json.Marshal(map[string]any{"auths": map[string]any{reg.Host: map[string]string{"auth": b64(user + ":" + pw)}}})
		os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600)
		return dir
	}
	for _, tc := range []struct {
		name    string
		cfgDir  string
		wantErr error
	}{
		{"no credentials", "", engine.ErrAuth},
		{"wrong password", writeConfig("builder", "wrong"), engine.ErrAuth},
		{"right password", writeConfig("builder", "s3cret-pw"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := plainConfig(reg.Host)
			cfg.DockerConfigDir = tc.cfgDir
			c := registry.New(cfg, 0, fastBackoff)
			permErr := c.CheckPushPermission(context.Background(), dest)
			_, err := c.Push(context.Background(), img, []string{dest}, registry.PushOptions{})
			if tc.wantErr == nil {
				if err != nil || permErr != nil {
					t.Fatalf("push: %v; permission check: %v", err, permErr)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !errors.Is(permErr, tc.wantErr) {
				t.Fatalf("push: %v; permission check: %v; want %v", err, permErr, tc.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("the password appears in the error: %v", err)
			}
		})
	}
}

func TestPushRetriesThroughAFlakyRegistry(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	// outage fails, during 24 requests from now, every third request,
	// alternately with 503 and a connection reset; streamed blob uploads
	// (PATCH) only when uploads is set, since those cannot be sent again
	// request by request and go to the whole-push retries.
	var proxy *testenv.FlakyProxy
	outage := func(uploads bool) func(int64, *http.Request) string {
		from := proxy.Requests.Load()
		return func(n int64, r *http.Request) string {
			n -= from
			if n > 24 || (!uploads && r.Method == http.MethodPatch) {
				return ""
			}
			switch n % 6 {
			case 2:
				return "503"
			case 5:
				return "reset"
			}
			return ""
		}
	}
	proxy = testenv.StartFlakyProxy(t, reg, func(int64, *http.Request) string { return "" })
	img := randomImage(t)
	want, _ := img.Digest()
	cfg := plainConfig(proxy.Host)

	t.Run("push-retry 0 gets through request by request", func(t *testing.T) {
		proxy.SetFail(outage(false))
		before := proxy.Failed.Load()
		dest := proxy.Host + "/flaky/zero:1"
		if _, err := registry.New(cfg, 0, fastBackoff).Push(context.Background(), img, []string{dest}, registry.PushOptions{}); err != nil {
			t.Fatalf("push through the flaky proxy, requests retried one by one: %v", err)
		}
		if proxy.Failed.Load() == before {
			t.Fatal("the proxy failed no request: the test proves nothing")
		}
		if got := served(t, reg, reg.Ref("flaky/zero:1")); got != want {
			t.Errorf("flaky/zero:1 serves %s, want %s", got, want)
		}
	})
	t.Run("push-retry 5 gets through", func(t *testing.T) {
		// Another image, so that its blobs are uploaded (and uploads fail).
		img := randomImage(t)
		want, _ := img.Digest()
		proxy.SetFail(outage(true))
		before := proxy.Failed.Load()
		dests := []string{proxy.Host + "/flaky/five:1", proxy.Host + "/flaky/five:2"}
		_, err := registry.New(cfg, 5, fastBackoff).Push(context.Background(), img, dests, registry.PushOptions{})
		if err != nil {
			t.Fatalf("push with retries: %v", err)
		}
		if proxy.Failed.Load() == before {
			t.Fatal("the proxy failed no request: the test proves nothing")
		}
		for _, tag := range []string{"flaky/five:1", "flaky/five:2"} {
			if got := served(t, reg, reg.Ref(tag)); got != want {
				t.Errorf("%s serves %s, want %s", tag, got, want)
			}
		}
	})
	t.Run("a registry that stays down fails cleanly", func(t *testing.T) {
		proxy.SetFail(func(int64, *http.Request) string { return "503" })
		defer proxy.SetFail(func(int64, *http.Request) string { return "" })
		dest := proxy.Host + "/flaky/down:1"
		_, err := registry.New(cfg, 1, fastBackoff).Push(context.Background(), img, []string{dest}, registry.PushOptions{})
		if !errors.Is(err, engine.ErrRegistry) {
			t.Fatalf("push to a registry that answers 503: %v, want a registry error", err)
		}
		// Nothing half-pushed: the tag does not exist.
		if tags := reg.Tags(t, "flaky/down"); len(tags) != 0 {
			t.Errorf("tags %v exist after a failed push", tags)
		}
	})
	t.Run("auth failures are not retried", func(t *testing.T) {
		proxy.SetFail(func(int64, *http.Request) string { return "" })
		authReg := testenv.StartRegistry(t, testenv.RegistryOptions{User: "u", Password: "p"})
		start := time.Now()
		_, err := registry.New(plainConfig(authReg.Host), 5, registry.Backoff{Initial: time.Second, Max: time.Second, Factor: 1}).
			Push(context.Background(), img, []string{authReg.Ref("x/y:1")}, registry.PushOptions{})
		if !errors.Is(err, engine.ErrAuth) {
			t.Fatalf("error %v, want an authentication error", err)
		}
		if d := time.Since(start); d > 900*time.Millisecond {
			t.Errorf("an authentication failure took %s: it was retried", d)
		}
	})
}

func TestImmutableTagErrors(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	img := randomImage(t)
	want, _ := img.Digest()
	// Refuse tag writes the way ECR does for an immutable repository.
	immutable := StartImmutableProxy(t, reg)
	dest := immutable + "/imm/app:v1"
	cfg := plainConfig(immutable)
	_, err := registry.New(cfg, 0, fastBackoff).Push(context.Background(), img, []string{dest}, registry.PushOptions{})
	if err == nil || !registry.IsImmutableTag(err) {
		t.Fatalf("push to an immutable tag: %v, want the registry's immutability error", err)
	}
	pushed, err := registry.New(cfg, 0, fastBackoff).Push(context.Background(), img, []string{dest}, registry.PushOptions{IgnoreImmutableTagErrors: true})
	if err != nil {
		t.Fatalf("push with --push-ignore-immutable-tag-errors: %v", err)
	}
	if !pushed[0].ImmutableSkipped {
		t.Error("the kept immutable tag is not reported")
	}
	// The image itself was pushed by digest.
	if got := served(t, reg, reg.Ref("imm/app@"+want.String())); got != want {
		t.Errorf("served %s", got)
	}
}

// StartImmutableProxy answers tag writes with ECR's immutability error and
// passes everything else to reg.
func StartImmutableProxy(t *testing.T, reg *testenv.Registry) string {
	p := testenv.StartFlakyProxy(t, reg, func(_ int64, r *http.Request) string {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") && !strings.Contains(r.URL.Path, "/manifests/sha256:") {
			return "immutable"
		}
		return ""
	})
	return p.Host
}
