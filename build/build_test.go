package build

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/rapidfort/kimia/assemble"
	"github.com/rapidfort/kimia/attest"
	"github.com/rapidfort/kimia/buildctx"
	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/publish"
)

// layoutEngine is a fake engine: it writes a fixed image (one per
// platform) as an OCI layout, as a real engine would.
type layoutEngine struct {
	platforms []string
	builds    int
}

func (e *layoutEngine) Info(context.Context) (engine.Info, error) {
	return engine.Info{Name: "fake", Version: "v0", StorageDrivers: []string{"native"},
		Features: []engine.Feature{engine.FeatureMultiPlatform, engine.FeatureSecrets}}, nil
}

func (e *layoutEngine) Build(ctx context.Context, req *engine.Request) (*engine.Result, error) {
	e.builds++
	res := &engine.Result{StorageDriver: "native",
		BaseImages: []engine.BaseImage{{Ref: "registry.example/library/busybox:latest", Digest: "sha256:" + strings.Repeat("e", 64)}}}
	for _, pl := range e.platforms {
		img, err := fakeImage(pl)
		if err != nil {
			return nil, err
		}
		cfg, err := img.RawConfigFile()
		if err != nil {
			return nil, err
		}
		p, err := engine.ParsePlatform(pl)
		if err != nil {
			return nil, err
		}
		ei := engine.Image{Platform: p, Config: cfg}
		ls, err := img.Layers()
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			d, err := l.DiffID()
			if err != nil {
				return nil, err
			}
			ei.Layers = append(ei.Layers, engine.Layer{DiffID: d.String(), Open: l.Uncompressed})
		}
		res.Images = append(res.Images, ei)
	}
	return res, nil
}

func fakeImage(platform string) (v1.Image, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	status := "Package: busybox-static\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.35.0-4\nDescription: x\n"
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "var/lib/dpkg/status", Mode: 0o644, Size: int64(len(status)), ModTime: time.Unix(0, 0)})
	tw.Write([]byte(status))
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "platform", Mode: 0o644, Size: int64(len(platform)), ModTime: time.Unix(0, 0)})
	tw.Write([]byte(platform))
	tw.Close()
	l, err := tarball.LayerFromReader(bytes.NewReader(b.Bytes()))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.OCIConfigJSON), types.OCIManifestSchema1), l)
	if err != nil {
		return nil, err
	}
	cf, _ := img.ConfigFile()
	cf.OS, cf.Architecture, _ = strings.Cut(platform, "/")
	return mutate.ConfigFile(img, cf)
}

// assembledDigest is the digest the shared layer gives the fake engine's
// image of platform.
func assembledDigest(t *testing.T, platform string) v1.Hash {
	t.Helper()
	res, err := (&layoutEngine{platforms: []string{platform}}).Build(context.Background(), &engine.Request{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := assemble.Assemble(context.Background(), res.Images, assemble.Options{WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	d, err := a.Image.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type fixture struct {
	host string
	key  *ecdsa.PrivateKey
	opts *Options
	dir  string
}

const testPassword = "Pw-7rq-kimia-test"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	f := &fixture{host: strings.TrimPrefix(s.URL, "http://"), dir: t.TempDir()}
	var err error
	if f.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(f.key)
	enc, err := encrypted.Encrypt(der, []byte(testPassword))
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(f.dir, "cosign.key")
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED SIGSTORE PRIVATE KEY", Bytes: enc}), 0o600)
	ctxDir := filepath.Join(f.dir, "ctx")
	os.MkdirAll(ctxDir, 0o755)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	t.Setenv("KIMIA_TEST_COSIGN_PASSWORD", testPassword)
	t.Setenv("KIMIA_TEST_SECRET", "s3cr3t-value-never-recorded")
	f.opts = &Options{
		Source: buildctx.Source{Context: ctxDir},
		Engine: engine.Request{
			BuildArgs: []engine.KeyValue{{Key: "VERSION", Value: "1.2.3"}},
			Secrets:   []engine.Secret{{ID: "token", Env: "KIMIA_TEST_SECRET"}},
			Registry:  engine.RegistryConfig{InsecureRegistries: []string{f.host}},
		},
		NoPreflight: true,
		Publish: publish.Options{
			Destinations: []string{f.host + "/app:v1", f.host + "/other:v1"},
			MetadataFile: filepath.Join(f.dir, "metadata.json"),
			Attest: publish.AttestOptions{SBOM: true, SBOMFormat: "spdx-json", Provenance: true, ProvenanceMode: publish.AttestationMax,
				Storage: publish.StorageBoth, SBOMFile: filepath.Join(f.dir, "sbom.json"), ProvenanceFile: filepath.Join(f.dir, "provenance.json")},
			Sign: publish.SignOptions{Enabled: true, KeyPath: keyPath, PasswordEnv: "KIMIA_TEST_COSIGN_PASSWORD",
				Annotations: []engine.KeyValue{{Key: "team", Value: "build"}}},
		},
	}
	return f
}

func (f *fixture) verifier(t *testing.T) signature.Verifier {
	v, err := signature.LoadVerifier(&f.key.PublicKey, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// verifySignature checks that repo's sha256-<hex>.sig holds a signature of
// digest by the fixture's key.
func (f *fixture) verifySignature(t *testing.T, repo string, digest v1.Hash) {
	t.Helper()
	r, _ := name.NewRepository(f.host+"/"+repo, name.Insecure)
	img, err := remote.Image(r.Tag("sha256-" + digest.Hex + ".sig"))
	if err != nil {
		t.Fatalf("no signature of %s in %s: %v", digest, repo, err)
	}
	m, _ := img.Manifest()
	ls, _ := img.Layers()
	for i, l := range ls {
		rc, _ := l.Compressed()
		payload, _ := io.ReadAll(rc)
		sig, _ := base64.StdEncoding.DecodeString(m.Layers[i].Annotations[attest.AnnotationSignature])
		var p struct {
			Critical struct {
				Identity struct {
					DockerReference string `json:"docker-reference"`
				} `json:"identity"`
				Image struct {
					Digest string `json:"docker-manifest-digest"`
				} `json:"image"`
			} `json:"critical"`
			Optional map[string]string `json:"optional"`
		}
		json.Unmarshal(payload, &p)
		if p.Critical.Image.Digest == digest.String() && p.Critical.Identity.DockerReference == r.Name() && p.Optional["team"] == "build" &&
			f.verifier(t).VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload)) == nil {
			return
		}
	}
	t.Errorf("no valid signature of %s in %s (%d layers)", digest, repo, len(ls))
}

// attestations returns the verified statements in repo's
// sha256-<hex>.att, by predicate type.
func (f *fixture) attestations(t *testing.T, repo string, digest v1.Hash) map[string][]map[string]any {
	t.Helper()
	r, _ := name.NewRepository(f.host+"/"+repo, name.Insecure)
	img, err := remote.Image(r.Tag("sha256-" + digest.Hex + ".att"))
	if err != nil {
		t.Fatalf("no attestations of %s in %s: %v", digest, repo, err)
	}
	out := map[string][]map[string]any{}
	ls, _ := img.Layers()
	for _, l := range ls {
		rc, _ := l.Compressed()
		raw, _ := io.ReadAll(rc)
		var env dsse.Envelope
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatal(err)
		}
		body, _ := env.DecodeB64Payload()
		sig, _ := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
		if err := f.verifier(t).VerifySignature(bytes.NewReader(sig), bytes.NewReader(dsse.PAE(env.PayloadType, body))); err != nil {
			t.Errorf("attestation in %s does not verify: %v", repo, err)
		}
		var st map[string]any
		json.Unmarshal(body, &st)
		out[st["predicateType"].(string)] = append(out[st["predicateType"].(string)], st)
	}
	return out
}

func subjects(st map[string]any) []string {
	var out []string
	for _, s := range st["subject"].([]any) {
		out = append(out, "sha256:"+s.(map[string]any)["digest"].(map[string]any)["sha256"].(string))
	}
	return out
}

func TestRunAttestsAndSignsASinglePlatformImage(t *testing.T) {
	f := newFixture(t)
	eng := &layoutEngine{platforms: []string{"linux/amd64"}}
	imgDigest := assembledDigest(t, "linux/amd64")

	sum, err := Run(context.Background(), eng, *f.opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if sum.MediaType != string(types.OCIImageIndex) {
		t.Fatalf("the destinations serve a %s, want an index wrapping the image", sum.MediaType)
	}
	ref, _ := name.NewTag(f.host+"/app:v1", name.Insecure)
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 || im.Manifests[0].Digest != imgDigest {
		t.Fatalf("index %+v: want the image (digest unchanged, %s) and its attestation manifest", im.Manifests, imgDigest)
	}
	if a := im.Manifests[1].Annotations; a[attest.AnnotationReferenceType] != attest.ReferenceTypeAttestation || a[attest.AnnotationReferenceDigest] != imgDigest.String() {
		t.Errorf("attestation manifest annotations %v", a)
	}

	for _, repo := range []string{"app", "other"} {
		f.verifySignature(t, repo, sum.Digest)
		f.verifySignature(t, repo, imgDigest)
		atts := f.attestations(t, repo, imgDigest)
		if len(atts[attest.PredicateSPDX]) != 1 || len(atts[attest.PredicateProvenance]) != 1 {
			t.Errorf("%s: attestations of the image %v", repo, atts)
		}
		idxAtts := f.attestations(t, repo, sum.Digest)
		prov := idxAtts[attest.PredicateProvenance]
		if len(prov) != 1 || !strings.Contains(strings.Join(subjects(prov[0]), " "), sum.Digest.String()) {
			t.Errorf("%s: the index's provenance %v does not name the index", repo, prov)
		}
	}

	md, _ := os.ReadFile(f.opts.Publish.MetadataFile)
	var meta publish.Metadata
	if err := json.Unmarshal(md, &meta); err != nil {
		t.Fatal(err)
	}
	if meta.Attestations == nil || len(meta.Attestations.SBOM) != 1 || len(meta.Attestations.Provenance) != 1 || len(meta.Signatures) != 4 {
		t.Fatalf("metadata %s", md)
	}
	for _, a := range append(meta.Attestations.SBOM, meta.Attestations.Provenance...) {
		b, err := os.ReadFile(a.File)
		if err != nil {
			t.Fatal(err)
		}
		h, _, _ := v1.SHA256(bytes.NewReader(b))
		if h.String() != a.FileDigest || a.Subject != imgDigest.String() {
			t.Errorf("metadata entry %+v: file digest %s", a, h)
		}
	}
	prov, _ := os.ReadFile(f.opts.Publish.Attest.ProvenanceFile)
	for _, s := range []string{`"VERSION"`, `"1.2.3"`, `"id":"token"`, strings.Repeat("e", 64), "https://github.com/rapidfort/kimia/buildtypes/dockerfile/v1"} {
		if !bytes.Contains(prov, []byte(s)) {
			t.Errorf("provenance lacks %s: %s", s, prov)
		}
	}
	sbom, _ := os.ReadFile(f.opts.Publish.Attest.SBOMFile)
	if !bytes.Contains(sbom, []byte(`"name":"busybox-static"`)) {
		t.Errorf("SBOM lacks the dpkg package: %.400s", sbom)
	}
	for _, b := range [][]byte{prov, sbom, md} {
		if bytes.Contains(b, []byte("s3cr3t-value-never-recorded")) || bytes.Contains(b, []byte(testPassword)) {
			t.Error("a secret value was recorded")
		}
	}
}

func TestRunAttestsEveryPlatform(t *testing.T) {
	f := newFixture(t)
	f.opts.Publish.Attest.Storage = publish.StorageIndex
	f.opts.Publish.Sign.Enabled = false
	f.opts.Publish.Attest.SBOMFile, f.opts.Publish.Attest.ProvenanceFile = "", ""
	sum, err := Run(context.Background(), &layoutEngine{platforms: []string{"linux/amd64", "linux/arm64"}}, *f.opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	ref, _ := name.NewTag(f.host+"/app:v1", name.Insecure)
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	described := map[string]map[string]int{}
	for _, d := range im.Manifests {
		if d.Annotations[attest.AnnotationReferenceType] != attest.ReferenceTypeAttestation {
			continue
		}
		am, _ := idx.Image(d.Digest)
		m, _ := am.Manifest()
		types := map[string]int{}
		for _, l := range m.Layers {
			types[l.Annotations[attest.AnnotationPredicateType]]++
		}
		described[d.Annotations[attest.AnnotationReferenceDigest]] = types
	}
	for _, d := range im.Manifests[:2] {
		if got := described[d.Digest.String()]; got[attest.PredicateSPDX] != 1 || got[attest.PredicateProvenance] != 1 {
			t.Errorf("%s (%s): attestations %v, want one SBOM and one provenance", d.Platform, d.Digest, got)
		}
	}
	if len(im.Manifests) != 4 {
		t.Errorf("%d manifests in the index", len(im.Manifests))
	}
	r, _ := name.NewRepository(f.host+"/app", name.Insecure)
	if _, err := remote.Image(r.Tag("sha256-" + sum.Digest.Hex + ".sig")); err == nil {
		t.Error("a signature was stored without --sign")
	}
}

// A key kimia cannot use stops the run before the engine builds anything.
func TestRunRefusesAnUnusableKeyBeforeBuilding(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(f *fixture)
		message string
	}{
		{"a wrong password", func(f *fixture) { t.Setenv("KIMIA_TEST_COSIGN_PASSWORD", "not-the-password") }, "wrong password"},
		{"an unreadable key", func(f *fixture) { os.Remove(f.opts.Publish.Sign.KeyPath) }, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.prepare(f)
			eng := &layoutEngine{platforms: []string{"linux/amd64"}}
			sum, err := Run(context.Background(), eng, *f.opts)
			if engine.KindOf(err) != engine.KindSigning || !strings.Contains(err.Error(), tc.message) || !strings.Contains(err.Error(), "--cosign-key") {
				t.Fatalf("error %v (kind %v), want a signing error saying %q", err, engine.KindOf(err), tc.message)
			}
			if sum != nil || eng.builds != 0 {
				t.Errorf("built %d time(s) and reported %+v with an unusable key", eng.builds, sum)
			}
			ref, _ := name.NewTag(f.host+"/app:v1", name.Insecure)
			if _, err := remote.Head(ref); err == nil {
				t.Error("the image was pushed with an unusable key")
			}
		})
	}
}

// TestMain builds the SBOM helper the runs start (kimia-sbom, the only
// binary with syft) and puts it on PATH, as the images do.
func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "kimia-build-test-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "kimia-sbom"), "github.com/rapidfort/kimia/cmd/kimia-sbom")
		cmd.Env = append(os.Environ(), "GOFLAGS=", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			log.Fatalf("building kimia-sbom: %v\n%s", err, out)
		}
		os.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
		return m.Run()
	}())
}
