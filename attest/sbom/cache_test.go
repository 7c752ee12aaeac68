package sbom

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// fakeDocument stands for what the helper writes for an image: its digest
// in names and purls, a serial number derived from it, the creation time.
func fakeDocument(subject v1.Hash, created time.Time) []byte {
	return []byte(fmt.Sprintf(`{"name":"app@%s","serialNumber":"%s","created":%s,"timestamp":%s,"packages":[{"purl":"pkg:oci/app@sha256%%3A%s"}]}`,
		subject, SerialNumber(subject), createdText(created), createdText(created), subject.Hex))
}

func TestCacheHitIsTheDocumentAMissWouldGive(t *testing.T) {
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Same layers, another config: another digest, the same key.
	relabeled, err := mutate.Config(img, v1.Config{Labels: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Format: FormatSPDX, Name: "app", ToolName: "kimia", ToolVersion: "test"}
	k1, err := cacheKey(img, opts)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := cacheKey(relabeled, opts)
	if k1 != k2 {
		t.Fatal("a config change without a layer change changed the key")
	}
	other, _ := random.Image(512, 2)
	if k3, _ := cacheKey(other, opts); k3 == k1 {
		t.Fatal("other layers, same key")
	}
	if k4, _ := cacheKey(img, Options{Format: FormatCycloneDX, Name: "app", ToolName: "kimia", ToolVersion: "test"}); k4 == k1 {
		t.Fatal("another format, same key")
	}

	dir := t.TempDir()
	d1, _ := img.Digest()
	d2, _ := relabeled.Digest()
	t1, t2 := time.Unix(1700000000, 0), time.Unix(1800000000, 0)
	if fromCache(dir, k1, d1, t1) != nil {
		t.Fatal("a hit in an empty cache")
	}
	if err := toCache(dir, k1, &Document{PredicateType: "spdx", Subject: d1, Packages: 3, JSON: fakeDocument(d1, t1)}, t1); err != nil {
		t.Fatal(err)
	}
	got := fromCache(dir, k2, d2, t2)
	if got == nil {
		t.Fatal("no hit for the relabeled image")
	}
	if want := fakeDocument(d2, t2); !bytes.Equal(got.JSON, want) {
		t.Errorf("hit\n%s\nwant what a miss gives\n%s", got.JSON, want)
	}
	if got.Subject != d2 || got.Packages != 3 || got.PredicateType != "spdx" {
		t.Errorf("hit %+v", got)
	}
}
