package attach

import (
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rapidfort/kimia/attest"
)

func statements(t *testing.T, d v1.Hash) []attest.Statement {
	t.Helper()
	var out []attest.Statement
	for _, pt := range []string{attest.PredicateSPDX, attest.PredicateProvenance} {
		js, err := attest.NewStatement(pt, []attest.Subject{{Name: "pkg:docker/app?platform=linux%2Famd64", Digest: d}}, map[string]string{"k": pt})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, attest.Statement{PredicateType: pt, Platform: "linux/amd64", JSON: js})
	}
	return out
}

func TestIndexWrapsASingleImageAndKeepsItsDigest(t *testing.T) {
	img, err := random.Image(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	d, _ := img.Digest()
	idx, err := Index(nil, img, map[v1.Hash][]attest.Statement{d: statements(t, d)})
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex || len(im.Manifests) != 2 {
		t.Fatalf("index %+v", im)
	}
	if im.Manifests[0].Digest != d || im.Manifests[0].Platform == nil || im.Manifests[0].Platform.OS == "unknown" {
		t.Errorf("first entry %+v is not the image", im.Manifests[0])
	}
	ad := im.Manifests[1]
	if ad.Platform == nil || ad.Platform.OS != "unknown" || ad.Platform.Architecture != "unknown" ||
		ad.Annotations[attest.AnnotationReferenceType] != attest.ReferenceTypeAttestation ||
		ad.Annotations[attest.AnnotationReferenceDigest] != d.String() {
		t.Errorf("attestation descriptor %+v", ad)
	}
	am, err := idx.Image(ad.Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := am.Manifest()
	if len(m.Layers) != 2 {
		t.Fatalf("attestation manifest has %d layers", len(m.Layers))
	}
	for i, pt := range []string{attest.PredicateSPDX, attest.PredicateProvenance} {
		l := m.Layers[i]
		if l.MediaType != attest.MediaTypeInToto || l.Annotations[attest.AnnotationPredicateType] != pt {
			t.Errorf("layer %d: %+v", i, l)
		}
	}
	cf, err := am.ConfigFile()
	if err != nil || cf.OS != "unknown" || cf.Architecture != "unknown" || len(cf.RootFS.DiffIDs) != 2 {
		t.Errorf("attestation config %+v, %v", cf, err)
	}
	// The same statements give the same index.
	idx2, _ := Index(nil, img, map[v1.Hash][]attest.Statement{d: statements(t, d)})
	d1, _ := idx.Digest()
	d2, _ := idx2.Digest()
	if d1 != d2 {
		t.Errorf("index digest changed between runs: %s, %s", d1, d2)
	}
}

func TestIndexAddsAttestationsAfterEveryPlatform(t *testing.T) {
	base, err := random.Index(100, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	bm, _ := base.IndexManifest()
	sts := map[v1.Hash][]attest.Statement{}
	for _, d := range bm.Manifests {
		sts[d.Digest] = statements(t, d.Digest)
	}
	idx, err := Index(base, nil, sts)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 4 {
		t.Fatalf("%d manifests, want 2 images and 2 attestation manifests", len(im.Manifests))
	}
	for i := 0; i < 2; i++ {
		if im.Manifests[i].Digest != bm.Manifests[i].Digest {
			t.Errorf("image %d moved", i)
		}
		if got := im.Manifests[2+i].Annotations[attest.AnnotationReferenceDigest]; got != bm.Manifests[i].Digest.String() {
			t.Errorf("attestation manifest %d describes %s, want %s", i, got, bm.Manifests[i].Digest)
		}
	}
}

func newRegistry(t *testing.T) name.Repository {
	t.Helper()
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	repo, err := name.NewRepository(strings.TrimPrefix(s.URL, "http://") + "/app")
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

func TestAppendSignaturesKeepsExistingOnes(t *testing.T) {
	repo := newRegistry(t)
	d := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("c", 64)}
	first := Signature{Payload: []byte(`{"a":1}`), Base64: "c2lnMQ=="}
	second := Signature{Payload: []byte(`{"a":1}`), Base64: "c2lnMg=="}
	tag, err := AppendSignatures(repo, d, []Signature{first})
	if err != nil {
		t.Fatal(err)
	}
	if tag.TagStr() != "sha256-"+d.Hex+".sig" {
		t.Errorf("tag %s", tag)
	}
	if _, err := AppendSignatures(repo, d, []Signature{second}); err != nil {
		t.Fatal(err)
	}
	if _, err := AppendSignatures(repo, d, []Signature{second}); err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	if len(m.Layers) != 2 {
		t.Fatalf("%d signature layers, want 2 (appended, the repeated one once)", len(m.Layers))
	}
	for i, want := range []string{"c2lnMQ==", "c2lnMg=="} {
		l := m.Layers[i]
		if l.MediaType != attest.MediaTypeSimpleSigning || l.Annotations[attest.AnnotationSignature] != want {
			t.Errorf("layer %d: %+v", i, l)
		}
	}
	ls, _ := img.Layers()
	rc, err := ls[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	if string(b) != `{"a":1}` {
		t.Errorf("payload %q", b)
	}
}

func TestAppendAttestationsWritesCosignsAttTag(t *testing.T) {
	repo := newRegistry(t)
	d := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("d", 64)}
	tag, err := AppendAttestations(repo, d, []Envelope{{PredicateType: attest.PredicateSPDX, JSON: []byte(`{"payloadType":"x"}`)}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	if tag.TagStr() != "sha256-"+d.Hex+".att" || len(m.Layers) != 1 || m.Layers[0].MediaType != attest.MediaTypeDSSE ||
		m.Layers[0].Annotations["predicateType"] != attest.PredicateSPDX {
		t.Errorf("tag %s, manifest %+v", tag, m)
	}
}

func TestReferrersFallBackToTheTagSchema(t *testing.T) {
	repo := newRegistry(t) // pkg/registry without the referrers API
	img, _ := random.Image(100, 1)
	if err := remote.Write(repo.Tag("v1"), img); err != nil {
		t.Fatal(err)
	}
	desc, err := Descriptor(img)
	if err != nil {
		t.Fatal(err)
	}
	ad, err := WriteAttestationReferrer(repo, desc, nil, statements(t, desc.Digest))
	if err != nil {
		t.Fatal(err)
	}
	sd, err := WriteSignatureReferrer(repo, desc, Signature{Payload: []byte("{}"), Base64: "c2ln"})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(repo.Digest(desc.Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	found := map[v1.Hash]string{}
	for _, r := range im.Manifests {
		found[r.Digest] = r.ArtifactType
	}
	if found[ad] != attest.MediaTypeInToto || found[sd] != attest.ArtifactTypeSignature {
		t.Errorf("referrers %+v; want %s (%s) and %s (%s)", im.Manifests, ad, attest.MediaTypeInToto, sd, attest.ArtifactTypeSignature)
	}
	// The fallback tag is the tag schema's sha256-<hex>.
	if _, err := remote.Index(repo.Tag("sha256-" + desc.Digest.Hex)); err != nil {
		t.Errorf("no fallback tag: %v", err)
	}
	am, err := remote.Image(repo.Digest(ad.String()))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := am.Manifest()
	if m.Subject == nil || m.Subject.Digest != desc.Digest || m.ArtifactType != attest.MediaTypeInToto {
		t.Errorf("referrer manifest %+v", m)
	}
}
