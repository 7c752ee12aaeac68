//go:build e2e

package e2e

// End-to-end tests of the supply-chain step: SBOMs, provenance, their
// places (index, cosign tags, referrers) and cosign-compatible signatures,
// checked with the real cosign CLI against the real registry, on both
// binaries.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/gitctx/gittest"
	"github.com/rapidfort/kimia/internal/testenv"
)

const (
	predicateSPDX       = "https://spdx.dev/Document"
	predicateProvenance = "https://slsa.dev/provenance/v1"
	// attestKeyPassword is the cosign key's password; no attestation
	// may contain it.
	attestKeyPassword = "kimia-e2e-Key-Pass-77"
	// attestSecret is a --secret value; no attestation may contain it.
	attestSecret = "kimia-e2e-secret-VALUE-91"
)

// cosignPath is the cosign CLI hack/install-cosign.sh caches, at the
// version hack/versions.sh pins.
func cosignPath(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(env.RepoRoot, "hack", "versions.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^COSIGN_VERSION=(\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("hack/versions.sh does not set COSIGN_VERSION")
	}
	p := filepath.Join(env.CacheDir, "tools", "cosign-"+string(m[1]), "cosign")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the cosign CLI is missing (%v): run hack/install-cosign.sh", err)
	}
	return p
}

// cosignKeys makes a cosign key pair with the cosign CLI in dir, readable
// by the sandbox's user, and returns the private and public key paths.
func cosignKeys(t *testing.T, sb *Sandbox, dir, password string) (string, string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cosignPath(t), "generate-key-pair")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD="+password, "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	sb.chown(dir)
	return filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
}

// runCosign runs cosign offline (no transparency log, plain HTTP to the
// test registry) and returns its combined output.
func runCosign(t *testing.T, args ...string) (string, error) {
	t.Helper()
	full := append([]string{args[0], "--insecure-ignore-tlog=true", "--allow-insecure-registry", "--allow-http-registry"}, args[1:]...)
	cmd := exec.Command(cosignPath(t), full...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "SIGSTORE_NO_CACHE=true", "TUF_ROOT="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// pushedDigest is the digest in kimia's stdout line for repo.
func pushedDigest(t *testing.T, r *Result, repo string) v1.Hash {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if n, d, ok := strings.Cut(line, "@"); ok && strings.HasSuffix(n, repo) {
			h, err := v1.NewHash(d)
			if err != nil {
				t.Fatalf("stdout line %q: %v", line, err)
			}
			return h
		}
	}
	t.Fatalf("no %s@digest line on stdout:\n%s", repo, r)
	return v1.Hash{}
}

// attestationsOf returns the statements of the attestation manifests in
// idx, by the image digest they describe, each as predicate type ->
// decoded statement.
func attestationsOf(t *testing.T, idx v1.ImageIndex) map[string]map[string]map[string]any {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]map[string]any{}
	for _, d := range im.Manifests {
		if d.Annotations["vnd.docker.reference.type"] != "attestation-manifest" {
			continue
		}
		if d.Platform == nil || d.Platform.OS != "unknown" || d.Platform.Architecture != "unknown" {
			t.Errorf("attestation manifest %s has platform %v, want unknown/unknown", d.Digest, d.Platform)
		}
		subject := d.Annotations["vnd.docker.reference.digest"]
		am, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := am.Manifest()
		ls, _ := am.Layers()
		byType := map[string]map[string]any{}
		for i, l := range ls {
			if m.Layers[i].MediaType != "application/vnd.in-toto+json" {
				t.Errorf("attestation layer media type %s", m.Layers[i].MediaType)
			}
			pt := m.Layers[i].Annotations["in-toto.io/predicate-type"]
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			var st map[string]any
			if err := json.NewDecoder(rc).Decode(&st); err != nil {
				t.Fatal(err)
			}
			rc.Close()
			if st["predicateType"] != pt {
				t.Errorf("layer annotated %s holds a %v statement", pt, st["predicateType"])
			}
			byType[pt] = st
		}
		out[subject] = byType
	}
	return out
}

// platformDigests lists the platform images of idx.
func platformDigests(t *testing.T, idx v1.ImageIndex) map[string]v1.Hash {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]v1.Hash{}
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.OS != "unknown" {
			out[d.Platform.String()] = d.Digest
		}
	}
	return out
}

// goBinaryInto builds a small Go program (main module
// example.com/kimia-e2e-hello) into dir/hello.
func goBinaryInto(t *testing.T, dir string) {
	t.Helper()
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module example.com/kimia-e2e-hello\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nfunc main() { println(\"hello\") }\n"), 0o644)
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "hello"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=", "CGO_ENABLED=0", "GOWORK=off", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building a Go binary: %v\n%s", err, out)
	}
}

func packageNames(t *testing.T, spdx map[string]any) map[string]bool {
	t.Helper()
	pred, _ := spdx["predicate"].(map[string]any)
	pkgs, _ := pred["packages"].([]any)
	out := map[string]bool{}
	for _, p := range pkgs {
		if m, ok := p.(map[string]any); ok {
			out[m["name"].(string)] = true
		}
	}
	return out
}

func TestAttestAndSignMax(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		key, pub := cosignKeys(t, sb, sb.Join("keys"), attestKeyPassword)
		_, otherPub := cosignKeys(t, sb, sb.Join("other-keys"), "other")
		ctx := sb.Context(map[string]string{
			"Dockerfile": "FROM " + sb.Busybox() + "\nCOPY hello /usr/local/bin/hello\n",
		})
		goBinaryInto(t, ctx)
		sb.chown(ctx)
		repo := "attest/max-" + sb.Name
		dest := sb.Registry.Ref(repo + ":v1")
		sb.Env = append(sb.Env, "KIMIA_E2E_KEY_PW="+attestKeyPassword)
		md := sb.Join("metadata.json")
		args := append([]string{"--context", ctx, "--destination", dest, "--attestation=max", "--sign",
			"--cosign-key", key, "--cosign-password-env", "KIMIA_E2E_KEY_PW", "--sign-annotations", "team=e2e",
			"--sbom-file", sb.Join("sbom.json"), "--provenance-file", sb.Join("provenance.json"), "--metadata-file", md,
			"--platform", "linux/amd64"}, sb.Registry.Flags()...)
		r := sb.MustKimia(args...)
		root := pushedDigest(t, r, repo)

		idx := sb.Registry.Index(t, dest)
		if d, _ := idx.Digest(); d != root {
			t.Fatalf("the tag serves %s, stdout says %s", d, root)
		}
		plats := platformDigests(t, idx)
		img, ok := plats["linux/amd64"]
		if !ok || len(plats) != 1 {
			t.Fatalf("platform images %v", plats)
		}
		atts := attestationsOf(t, idx)[img.String()]
		spdx, prov := atts[predicateSPDX], atts[predicateProvenance]
		if spdx == nil || prov == nil {
			t.Fatalf("the index has no SBOM and provenance for %s: %v", img, atts)
		}

		t.Run("the SBOM lists the base image's dpkg package and the Go binary", func(t *testing.T) {
			names := packageNames(t, spdx)
			for _, want := range []string{"busybox-static", "example.com/kimia-e2e-hello", "stdlib"} {
				if !names[want] {
					t.Errorf("SBOM lacks %s; it has %v", want, names)
				}
			}
			if !strings.Contains(mustJSON(spdx), "Tool: kimia-") {
				t.Error("the SBOM does not name kimia as its creator")
			}
		})
		t.Run("the provenance names the base image by digest", func(t *testing.T) {
			base := sb.Registry.Descriptor(t, sb.Busybox())
			amd := PlatformImage(t, sb.Registry.Index(t, sb.Busybox()), "linux/amd64")
			amdDigest, _ := amd.Digest()
			s := mustJSON(prov)
			if !strings.Contains(s, base.Digest.Hex) && !strings.Contains(s, amdDigest.Hex) {
				t.Errorf("provenance names neither the busybox index %s nor its amd64 image %s:\n%s", base.Digest, amdDigest, s)
			}
			if !strings.Contains(s, "https://github.com/rapidfort/kimia/buildtypes/dockerfile/v1") {
				t.Errorf("provenance build type: %s", s)
			}
		})
		t.Run("cosign verifies the signatures", func(t *testing.T) {
			for _, ref := range []string{dest, sb.Registry.Ref(repo) + "@" + root.String(), sb.Registry.Ref(repo) + "@" + img.String()} {
				if out, err := runCosign(t, "verify", "--key", pub, "-a", "team=e2e", ref); err != nil {
					t.Errorf("cosign verify %s: %v\n%s", ref, err, out)
				}
			}
		})
		t.Run("cosign verifies the attestations", func(t *testing.T) {
			for _, ref := range []string{dest, sb.Registry.Ref(repo) + "@" + img.String()} {
				for _, typ := range []string{"spdxjson", "slsaprovenance1"} {
					if out, err := runCosign(t, "verify-attestation", "--type", typ, "--key", pub, ref); err != nil {
						t.Errorf("cosign verify-attestation --type %s %s: %v\n%s", typ, ref, err, out)
					}
				}
			}
		})
		t.Run("a different key fails", func(t *testing.T) {
			if out, err := runCosign(t, "verify", "--key", otherPub, dest); err == nil {
				t.Errorf("cosign verify with another key succeeded:\n%s", out)
			}
			if out, err := runCosign(t, "verify-attestation", "--type", "slsaprovenance1", "--key", otherPub, dest); err == nil {
				t.Errorf("cosign verify-attestation with another key succeeded:\n%s", out)
			}
		})
		t.Run("files and metadata", func(t *testing.T) {
			var meta struct {
				Attestations struct {
					SBOM       []map[string]string `json:"sbom"`
					Provenance []map[string]string `json:"provenance"`
					Manifests  []map[string]string `json:"manifests"`
				} `json:"attestations"`
				Signatures []map[string]any `json:"signatures"`
			}
			b, err := os.ReadFile(md)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &meta); err != nil {
				t.Fatal(err)
			}
			for _, e := range append(meta.Attestations.SBOM, meta.Attestations.Provenance...) {
				content, err := os.ReadFile(e["file"])
				if err != nil {
					t.Fatalf("metadata names %q: %v", e["file"], err)
				}
				h, _, _ := v1.SHA256(strings.NewReader(string(content)))
				if h.String() != e["fileDigest"] || e["subject"] != img.String() {
					t.Errorf("metadata entry %v; file digest %s", e, h)
				}
			}
			if len(meta.Attestations.SBOM) != 1 || len(meta.Attestations.Provenance) != 1 || len(meta.Attestations.Manifests) != 1 || len(meta.Signatures) != 2 {
				t.Errorf("metadata: %s", b)
			}
		})
	})
}

func TestAttestTwoPlatforms(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		sb.Require(engine.FeatureMultiPlatform)
		ctx := sb.Context(map[string]string{"Dockerfile": "FROM " + sb.Busybox() + "\nCOPY a.txt /a.txt\n", "a.txt": "a\n"})
		dest := sb.Registry.Ref("attest/two-" + sb.Name + ":v1")
		sb.MustKimia(append([]string{"--context", ctx, "--destination", dest, "--attestation=max",
			"--platform", "linux/amd64,linux/arm64"}, sb.Registry.Flags()...)...)
		idx := sb.Registry.Index(t, dest)
		plats := platformDigests(t, idx)
		atts := attestationsOf(t, idx)
		if len(plats) != 2 || len(atts) != 2 {
			t.Fatalf("platforms %v, attestation manifests for %d images", plats, len(atts))
		}
		for p, d := range plats {
			a := atts[d.String()]
			if len(a) != 2 || a[predicateSPDX] == nil || a[predicateProvenance] == nil {
				t.Errorf("%s (%s): %d statements, want one SBOM and one provenance", p, d, len(a))
				continue
			}
			subj := a[predicateProvenance]["subject"].([]any)[0].(map[string]any)
			if subj["digest"].(map[string]any)["sha256"] != d.Hex {
				t.Errorf("%s: provenance subject %v", p, subj)
			}
		}
	})
}

func TestDockerStyleAttestFlags(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		ctx := sb.Context(map[string]string{"Dockerfile": "FROM " + sb.Busybox() + "\nCOPY a.txt /a.txt\n", "a.txt": "a\n"})
		dest := sb.Registry.Ref("attest/docker-style-" + sb.Name + ":v1")
		sb.MustKimia(append([]string{"--context", ctx, "--destination", dest, "--platform", "linux/amd64",
			"--attest", "type=sbom,format=cyclonedx-json", "--attest", "type=provenance,mode=min,builder-id=https://ci.example/builders/kimia",
			"--build-arg", "FLAVOUR=vanilla-e2e"}, sb.Registry.Flags()...)...)
		idx := sb.Registry.Index(t, dest)
		img := platformDigests(t, idx)["linux/amd64"]
		atts := attestationsOf(t, idx)[img.String()]
		bom, prov := atts["https://cyclonedx.org/bom"], atts[predicateProvenance]
		if bom == nil || prov == nil || atts[predicateSPDX] != nil {
			t.Fatalf("attestations %v: want a CycloneDX SBOM and provenance", atts)
		}
		if bom["predicate"].(map[string]any)["bomFormat"] != "CycloneDX" {
			t.Errorf("SBOM predicate is not CycloneDX")
		}
		s := mustJSON(prov)
		if !strings.Contains(s, `"id":"https://ci.example/builders/kimia"`) {
			t.Errorf("provenance does not name the builder id: %s", s)
		}
		// min mode: the build-arg's name, not its value.
		if !strings.Contains(s, `"name":"FLAVOUR"`) || strings.Contains(s, "vanilla-e2e") {
			t.Errorf("min provenance and the build arg: %s", s)
		}
	})
}

func TestReproducibleImageDigestUnchangedByAttestations(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		sb.Require(engine.FeatureReproducible)
		ctx := sb.Context(map[string]string{"Dockerfile": "FROM " + sb.Busybox() + "\nCOPY a.txt /a.txt\n", "a.txt": "a\n"})
		repo := "attest/repro-" + sb.Name
		build := func(tag string, extra ...string) *Result {
			args := append([]string{"--context", ctx, "--destination", sb.Registry.Ref(repo + ":" + tag), "--reproducible",
				"--platform", "linux/amd64"}, sb.Registry.Flags()...)
			return sb.MustKimia(append(args, extra...)...)
		}
		sb.Env = append(sb.Env, "SOURCE_DATE_EPOCH=1700000000")
		plain := pushedDigest(t, build("plain", "--attestation=off"), repo)
		first := pushedDigest(t, build("attested", "--attestation=max"), repo)
		second := pushedDigest(t, build("again", "--attestation=max"), repo)

		idx1 := sb.Registry.Index(t, sb.Registry.Ref(repo+"@"+first.String()))
		idx2 := sb.Registry.Index(t, sb.Registry.Ref(repo+"@"+second.String()))
		if got := platformDigests(t, idx1)["linux/amd64"]; got != plain {
			t.Errorf("with attestations the image is %s, without %s", got, plain)
		}
		// Only the provenance carries times: the SBOMs of the two
		// attested builds are identical.
		s1 := attestationsOf(t, idx1)[plain.String()][predicateSPDX]
		s2 := attestationsOf(t, idx2)[plain.String()][predicateSPDX]
		if s1 == nil || mustJSON(s1) != mustJSON(s2) {
			t.Error("the SBOM of a reproducible build changed between two builds")
		}
	})
}

// With --cache, an image rebuilt with the same layers takes its SBOM from
// --cache-dir, and that SBOM is the one a build without the cache makes.
func TestSBOMCache(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		sb.Require(engine.FeatureReproducible)
		ctx := sb.Context(map[string]string{"Dockerfile": "FROM " + sb.Busybox() + "\nARG V\nLABEL v=$V\nCOPY a.txt /a.txt\n", "a.txt": "a\n"})
		cacheDir := sb.Join("cache")
		sb.Env = append(sb.Env, "SOURCE_DATE_EPOCH=1700000000")
		build := func(v, sbomFile string, extra ...string) *Result {
			args := append([]string{"--context", ctx, "--destination", sb.Registry.Ref("attest/sbomcache-" + sb.Name + ":" + v), "--reproducible",
				"--platform", "linux/amd64", "--attestation=max", "--build-arg", "V=" + v, "--sbom-file", sbomFile}, sb.Registry.Flags()...)
			return sb.MustKimia(append(args, extra...)...)
		}
		first := build("1", sb.Join("sbom1.json"), "--cache", "--cache-dir", cacheDir)
		if !strings.Contains(first.Stderr, "cached=0") {
			t.Errorf("the first build did not make its SBOM:\n%s", tailOf(first.Stderr, 5))
		}
		entries, _ := filepath.Glob(filepath.Join(cacheDir, "sbom", "*.json"))
		if len(entries) != 1 {
			t.Fatalf("%d SBOM cache entries after one build, want 1", len(entries))
		}
		hit := build("2", sb.Join("sbom2.json"), "--cache", "--cache-dir", cacheDir)
		if !strings.Contains(hit.Stderr, "cached=1") {
			t.Errorf("a rebuild with the same layers did not take its SBOM from the cache:\n%s", tailOf(hit.Stderr, 5))
		}
		build("2", sb.Join("sbom3.json"))
		got, err := os.ReadFile(sb.Join("sbom2.json"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(sb.Join("sbom3.json"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("the SBOM from the cache differs from the one made without it:\n%s\nwant\n%s", tailOf(string(got), 3), tailOf(string(want), 3))
		}
		one, _ := os.ReadFile(sb.Join("sbom1.json"))
		if bytes.Equal(one, got) {
			t.Error("the SBOMs of two images with different digests are equal: the cache did not rewrite the subject")
		}
	})
}

func TestAttestationsHoldNoSecretValues(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		sb.Require(engine.FeatureSecrets)
		key, _ := cosignKeys(t, sb, sb.Join("keys"), attestKeyPassword)
		ctx := sb.Context(map[string]string{"Dockerfile": "FROM " + sb.Busybox() + "\nRUN --mount=type=secret,id=tok test -s /run/secrets/tok && echo ok > /ok\n"})
		repo := "attest/secret-" + sb.Name
		dest := sb.Registry.Ref(repo + ":v1")
		sb.Env = append(sb.Env, "KIMIA_E2E_SECRET="+attestSecret, "COSIGN_PASSWORD="+attestKeyPassword)
		r := sb.MustKimia(append([]string{"--context", ctx, "--destination", dest, "--attestation=max", "--sign", "--cosign-key", key,
			"--secret", "id=tok,env=KIMIA_E2E_SECRET", "--provenance-file", sb.Join("prov.json"), "--sbom-file", sb.Join("sbom.json"),
			"--metadata-file", sb.Join("md.json"), "--platform", "linux/amd64"}, sb.Registry.Flags()...)...)
		root := pushedDigest(t, r, repo)
		var all []string
		for _, f := range []string{"prov.json", "sbom.json", "md.json"} {
			b, _ := os.ReadFile(sb.Join(f))
			all = append(all, string(b))
		}
		idx := sb.Registry.Index(t, dest)
		for _, byType := range attestationsOf(t, idx) {
			for _, st := range byType {
				all = append(all, mustJSON(st))
			}
		}
		img := platformDigests(t, idx)["linux/amd64"]
		for _, d := range []v1.Hash{root, img} {
			ref, _ := name.NewTag(sb.Registry.Ref(repo+":sha256-"+d.Hex+".att"), sb.Registry.NameOptions()...)
			att, err := remote.Image(ref, sb.Registry.Options()...)
			if err != nil {
				t.Fatalf("no cosign attestations for %s: %v", d, err)
			}
			ls, _ := att.Layers()
			for _, l := range ls {
				rc, _ := l.Compressed()
				var env struct{ Payload string }
				json.NewDecoder(rc).Decode(&env)
				rc.Close()
				p, _ := base64.StdEncoding.DecodeString(env.Payload)
				all = append(all, string(p))
			}
		}
		joined := strings.Join(all, "\n")
		if !strings.Contains(joined, `"id":"tok"`) {
			t.Error("the provenance does not name the secret by id")
		}
		for _, secret := range []string{attestSecret, attestKeyPassword} {
			if strings.Contains(joined, secret) {
				t.Errorf("an attestation or output file contains the value %q", secret)
			}
		}
		if strings.Contains(r.Stderr, attestSecret) || strings.Contains(r.Stderr, attestKeyPassword) {
			t.Error("the log contains a secret value")
		}
	})
}

func TestProvenanceNamesTheGitCommit(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		fx := gittest.NewFixture(t, sb.Busybox())
		srv := gittest.ServeHTTP(t, fx.Root, "u", "p")
		repo := "attest/git-" + sb.Name
		dest := sb.Registry.Ref(repo + ":v1")
		sb.MustKimia(append([]string{"--context", srv.URL + "/app.git#main", "--destination", dest, "--attestation=min",
			"--provenance-file", sb.Join("prov.json"), "--platform", "linux/amd64"}, sb.Registry.Flags()...)...)
		b, err := os.ReadFile(sb.Join("prov.json"))
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			Predicate struct {
				BuildDefinition struct {
					ExternalParameters struct {
						Context struct {
							Git struct{ Commit string } `json:"git"`
						} `json:"context"`
					} `json:"externalParameters"`
					ResolvedDependencies []struct {
						URI    string            `json:"uri"`
						Digest map[string]string `json:"digest"`
					} `json:"resolvedDependencies"`
				} `json:"buildDefinition"`
			} `json:"predicate"`
		}
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		bd := st.Predicate.BuildDefinition
		if bd.ExternalParameters.Context.Git.Commit != fx.Main {
			t.Errorf("context commit %q, want %s", bd.ExternalParameters.Context.Git.Commit, fx.Main)
		}
		found := false
		for _, d := range bd.ResolvedDependencies {
			found = found || d.Digest["sha1"] == fx.Main
		}
		if !found {
			t.Errorf("resolvedDependencies %+v lack the commit %s", bd.ResolvedDependencies, fx.Main)
		}
		// The index copy is the same statement.
		if atts := attestationsOf(t, sb.Registry.Index(t, dest)); len(atts) != 1 {
			t.Errorf("attestation manifests for %d images", len(atts))
		}
	})
}

func TestAttestationStorage(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		key, pub := cosignKeys(t, sb, sb.Join("keys"), attestKeyPassword)
		sb.Env = append(sb.Env, "COSIGN_PASSWORD="+attestKeyPassword)
		ctx := sb.Context(map[string]string{"Dockerfile": "FROM " + sb.Busybox() + "\nCOPY a.txt /a.txt\n", "a.txt": "a\n"})
		build := func(repo, storage string) (string, v1.Hash) {
			dest := sb.Registry.Ref(repo + ":v1")
			r := sb.MustKimia(append([]string{"--context", ctx, "--destination", dest, "--attestation=max", "--sign", "--cosign-key", key,
				"--attestation-storage", storage, "--platform", "linux/amd64"}, sb.Registry.Flags()...)...)
			return dest, pushedDigest(t, r, repo)
		}
		t.Run("cosign: the tag serves the image itself, attestations in .att", func(t *testing.T) {
			repo := "attest/cosign-" + sb.Name
			dest, d := build(repo, "cosign")
			desc := sb.Registry.Descriptor(t, dest)
			if !desc.MediaType.IsImage() || desc.Digest != d {
				t.Fatalf("the tag serves a %s %s", desc.MediaType, desc.Digest)
			}
			for _, typ := range []string{"spdxjson", "slsaprovenance1"} {
				if out, err := runCosign(t, "verify-attestation", "--type", typ, "--key", pub, dest); err != nil {
					t.Errorf("cosign verify-attestation --type %s: %v\n%s", typ, err, out)
				}
			}
		})
		t.Run("referrers: subject manifests listed by the tag schema", func(t *testing.T) {
			repo := "attest/referrers-" + sb.Name
			dest, d := build(repo, "referrers")
			ref, _ := name.NewDigest(sb.Registry.Ref(repo+"@"+d.String()), sb.Registry.NameOptions()...)
			// Debian's registry has no referrers API: the list is the
			// sha256-<hex> tag.
			fallback, _ := name.NewTag(sb.Registry.Ref(repo+":sha256-"+d.Hex), sb.Registry.NameOptions()...)
			if _, err := remote.Index(fallback, sb.Registry.Options()...); err != nil {
				t.Fatalf("no referrers tag %s: %v", fallback, err)
			}
			idx, err := remote.Referrers(ref, sb.Registry.Options()...)
			if err != nil {
				t.Fatal(err)
			}
			im, _ := idx.IndexManifest()
			types := map[string]int{}
			for _, m := range im.Manifests {
				types[m.ArtifactType]++
				child, err := remote.Image(ref.Context().Digest(m.Digest.String()), sb.Registry.Options()...)
				if err != nil {
					t.Fatal(err)
				}
				cm, _ := child.Manifest()
				if cm.Subject == nil || cm.Subject.Digest != d {
					t.Errorf("referrer %s has subject %v", m.Digest, cm.Subject)
				}
			}
			if types["application/vnd.in-toto+json"] != 1 || types["application/vnd.dev.cosign.artifact.sig.v1+json"] != 1 {
				t.Errorf("referrers by artifact type %v", types)
			}
			if desc := sb.Registry.Descriptor(t, dest); !desc.MediaType.IsImage() {
				t.Errorf("the tag serves a %s", desc.MediaType)
			}
			if out, err := runCosign(t, "verify", "--key", pub, dest); err != nil {
				t.Errorf("cosign verify: %v\n%s", err, out)
			}
		})
		t.Run("signatures are appended, not replaced", func(t *testing.T) {
			if !sb.Info.Has(engine.FeatureReproducible) {
				t.Skipf("%s (%s engine) does not support %s, needed to build one image twice", sb.Name, sb.Info.Name, engine.FeatureReproducible)
			}
			repo := "attest/append-" + sb.Name
			sb.Env = append(sb.Env, "SOURCE_DATE_EPOCH=1700000000")
			var imgs []v1.Hash
			for i := 0; i < 2; i++ {
				dest := sb.Registry.Ref(repo + ":v1")
				sb.MustKimia(append([]string{"--context", ctx, "--destination", dest, "--attestation=min", "--sign", "--cosign-key", key,
					"--reproducible", "--platform", "linux/amd64"}, sb.Registry.Flags()...)...)
				imgs = append(imgs, platformDigests(t, sb.Registry.Index(t, dest))["linux/amd64"])
			}
			if imgs[0] != imgs[1] {
				t.Fatalf("a reproducible build gave %s, then %s", imgs[0], imgs[1])
			}
			sigTag, _ := name.NewTag(sb.Registry.Ref(repo+":sha256-"+imgs[0].Hex+".sig"), sb.Registry.NameOptions()...)
			img, err := remote.Image(sigTag, sb.Registry.Options()...)
			if err != nil {
				t.Fatal(err)
			}
			if m, _ := img.Manifest(); len(m.Layers) != 2 {
				t.Errorf("two signings of %s left %d signatures, want 2", imgs[0], len(m.Layers))
			}
			if out, err := runCosign(t, "verify", "--key", pub, sb.Registry.Ref(repo)+"@"+imgs[0].String()); err != nil {
				t.Errorf("cosign verify: %v\n%s", err, out)
			}
		})
		t.Run("cosign storage without --sign is a usage error", func(t *testing.T) {
			r := sb.Kimia(append([]string{"--context", ctx, "--destination", sb.Registry.Ref("attest/x:v1"), "--attestation=max",
				"--attestation-storage", "cosign"}, sb.Registry.Flags()...)...)
			if r.Code != 2 || !strings.Contains(r.Stderr, "--sign") {
				t.Errorf("want exit 2 naming --sign:\n%s", r)
			}
		})
	})
}

// TestSigningKeyFailuresStopBeforeTheBuild: a key kimia cannot use fails
// at once, with the signing exit code, before anything is built or
// pushed.
func TestSigningKeyFailuresStopBeforeTheBuild(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		key, _ := cosignKeys(t, sb, sb.Join("keys"), attestKeyPassword)
		garbage := sb.Join("garbage.key")
		os.WriteFile(garbage, []byte("not a key\n"), 0o644)
		sb.chown(garbage)
		ctx := sb.Context(map[string]string{"Dockerfile": "FROM " + sb.Busybox() + "\nRUN echo built > /built\n"})
		for _, tc := range []struct {
			name, key, password, message string
		}{
			{"a wrong password", key, "not-the-password", "wrong password"},
			{"no password for an encrypted key", key, "", "the key is encrypted"},
			{"a key that is not a key", garbage, attestKeyPassword, "--cosign-key"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				repo := freshRepo(sb, "signkey")
				sb.Env = nil
				if tc.password != "" {
					sb.Env = []string{"COSIGN_PASSWORD=" + tc.password}
				}
				r := sb.Kimia("--context", ctx, "--destination", sb.Registry.Ref(repo+":v1"), "--attestation=max", "--sign", "--cosign-key", tc.key,
					"--insecure-registry", sb.Registry.Host)
				if r.Code != 6 || !strings.Contains(r.Stderr, tc.message) {
					t.Fatalf("want exit 6 (signing) saying %q:\n%s", tc.message, r)
				}
				if strings.Contains(r.Stderr, "RUN echo built") || strings.Contains(r.Stderr, "msg=building") {
					t.Errorf("the build started before the key was checked:\n%s", r)
				}
				if tags := sb.Registry.Tags(t, repo); len(tags) != 0 {
					t.Errorf("pushed %v although the key was unusable", tags)
				}
				if tc.password != "" && strings.Contains(r.Stderr, tc.password) {
					t.Error("the password is in the log")
				}
				assertNoLeftovers(t, sb)
			})
		}
	})
}

// TestSigningFailuresReportThePush: when storing the signature fails after
// the push, kimia exits with the signing code and still reports the
// digest it pushed, which the registry serves.
func TestSigningFailuresReportThePush(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		key, _ := cosignKeys(t, sb, sb.Join("keys"), attestKeyPassword)
		ctx := sb.Context(map[string]string{"Dockerfile": "FROM " + sb.Busybox() + "\nCOPY a.txt /a.txt\n", "a.txt": "a\n"})
		proxy := testenv.StartFlakyProxy(t, sb.Registry, func(n int64, r *http.Request) string {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/sha256-") && strings.HasSuffix(r.URL.Path, ".sig") {
				return "immutable"
			}
			return ""
		})
		repo := "attest/fail-" + sb.Name
		dest := proxy.Host + "/" + repo + ":v1"
		sb.Env = []string{"COSIGN_PASSWORD=" + attestKeyPassword}
		r := sb.Kimia("--context", ctx, "--destination", dest, "--attestation=max", "--sign", "--cosign-key", key,
			"--platform", "linux/amd64", "--insecure-registry", proxy.Host)
		if r.Code != 6 || !strings.Contains(r.Stderr, ".sig") {
			t.Fatalf("want exit 6 (signing) naming the .sig tag:\n%s", r)
		}
		d := pushedDigest(t, r, repo)
		if got := sb.Registry.Descriptor(t, sb.Registry.Ref(repo+":v1")).Digest; got != d {
			t.Errorf("stdout reports %s, the registry serves %s", d, got)
		}
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// The two binaries attest alike: the same provenance, field by field,
// apart from the builder's identity (its engine, versions and times).
// Every image the build pulled is in resolvedDependencies with the digest
// the registry serves, however the Dockerfile names it: through a build
// arg without a tag, in COPY --from and in RUN --mount from=.
func TestProvenanceAgreesAcrossEngines(t *testing.T) {
	k, b := conformanceWorkers(t)
	bare := k.Registry.Ref("library/busybox") // no tag: a build arg's usual spelling
	tagged := k.Registry.Ref("library/busybox:1.36")
	files := map[string]string{"Dockerfile": "ARG BASE\nFROM ${BASE}\nCOPY --from=" + tagged + " /bin/busybox /copied\n" +
		"RUN --mount=type=bind,from=" + tagged + ",source=/etc/passwd,target=/p cp /p /passwd\n"}
	want := map[string]string{
		bare:   served(t, k.Registry, bare+":latest").String(),
		tagged: served(t, k.Registry, tagged).String(),
	}
	preds := map[string]map[string]any{}
	// One context and one destination, so that the inputs are the same.
	ctx := k.For(t).Context(files)
	dest := k.Registry.Ref(freshRepo(k, "provenance") + ":v1")
	for _, sb := range []*Sandbox{k, b} {
		sb := sb.For(t)
		prov := sb.Join("prov-" + sb.Name + ".json")
		r := sb.MustKimia(append([]string{"--context=" + ctx, "--destination=" + dest, "--build-arg=BASE=" + bare,
			"--attest=type=provenance,mode=max", "--provenance-file=" + prov, "--reproducible"}, sb.Registry.Flags()...)...)
		if strings.Contains(r.Stderr, "ERROR") {
			t.Errorf("%s: the build's output shows an error although it succeeded:\n%s", sb.Name, r.Stderr)
		}
		var st map[string]any
		bs, err := os.ReadFile(prov)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(bs, &st); err != nil {
			t.Fatal(err)
		}
		pred := st["predicate"].(map[string]any)
		deps := map[string]string{}
		bd := pred["buildDefinition"].(map[string]any)
		for _, d := range bd["resolvedDependencies"].([]any) {
			dm := d.(map[string]any)
			for alg, hex := range dm["digest"].(map[string]any) {
				deps[dm["name"].(string)] = alg + ":" + hex.(string)
			}
		}
		for ref, digest := range want {
			if deps[ref] != digest {
				t.Errorf("%s: resolvedDependencies %v, want %s at %s", sb.Name, deps, ref, digest)
			}
		}
		// The builder's identity is all that may differ.
		delete(bd, "internalParameters")
		delete(pred, "runDetails")
		preds[sb.Name] = pred
	}
	if a, b := mustJSON(preds["kimia"]), mustJSON(preds["kimia-bud"]); a != b {
		t.Errorf("the provenance differs between the engines:\nkimia:     %s\nkimia-bud: %s", a, b)
	}
}
