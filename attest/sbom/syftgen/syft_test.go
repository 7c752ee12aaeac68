package syftgen

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/rapidfort/kimia/attest"
	"github.com/rapidfort/kimia/attest/sbom"
)

const dpkgStatus = `Package: busybox-static
Status: install ok installed
Priority: optional
Section: shells
Installed-Size: 2000
Maintainer: Debian Busybox Team
Architecture: amd64
Source: busybox
Version: 1:1.35.0-4+b3
Description: Standalone rescue shell with tons of builtin utilities
`

// goBinary builds a tiny Go program whose main module is
// example.com/hello, as a user's image would COPY in.
func goBinary(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/hello\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { println(\"hello\") }\n"), 0o644)
	out := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "CGO_ENABLED=0", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building a Go binary: %v: %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func layer(t *testing.T, files map[string][]byte) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for p, data := range files {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(0, 0)})
		tw.Write(data)
	}
	tw.Close()
	l, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func testImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image,
		layer(t, map[string][]byte{"var/lib/dpkg/status": []byte(dpkgStatus), "etc/os-release": []byte("ID=debian\nVERSION_ID=\"12\"\n")}),
		layer(t, map[string][]byte{"usr/local/bin/hello": goBinary(t)}),
	)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestSPDXListsOSPackagesAndGoBinaries(t *testing.T) {
	img := testImage(t)
	digest, _ := img.Digest()
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	opts := sbom.Options{Name: "registry.example/app", ToolName: "kimia", ToolVersion: "v9.9.9", Created: created}
	doc, err := Generate(context.Background(), img, opts)
	if err != nil {
		t.Fatal(err)
	}
	if doc.PredicateType != attest.PredicateSPDX || doc.Subject != digest {
		t.Errorf("predicate type %s, subject %s", doc.PredicateType, doc.Subject)
	}
	var spdx struct {
		SPDXVersion       string   `json:"spdxVersion"`
		Name              string   `json:"name"`
		DocumentNamespace string   `json:"documentNamespace"`
		DocumentDescribes []string `json:"documentDescribes"`
		CreationInfo      struct {
			Creators []string `json:"creators"`
			Created  string   `json:"created"`
		} `json:"creationInfo"`
		Packages []struct {
			SPDXID      string `json:"SPDXID"`
			Name        string `json:"name"`
			VersionInfo string `json:"versionInfo"`
		} `json:"packages"`
		Relationships []struct {
			Element string `json:"spdxElementId"`
			Type    string `json:"relationshipType"`
			Related string `json:"relatedSpdxElement"`
		} `json:"relationships"`
	}
	if err := json.Unmarshal(doc.JSON, &spdx); err != nil {
		t.Fatal(err)
	}
	if spdx.SPDXVersion != "SPDX-2.3" {
		t.Errorf("spdxVersion %q", spdx.SPDXVersion)
	}
	if !strings.Contains(strings.Join(spdx.CreationInfo.Creators, ","), "Tool: kimia-v9.9.9") {
		t.Errorf("creators %v do not name kimia", spdx.CreationInfo.Creators)
	}
	if spdx.CreationInfo.Created != "2024-01-01T00:00:00Z" {
		t.Errorf("created %q", spdx.CreationInfo.Created)
	}
	if !strings.Contains(spdx.DocumentNamespace, digest.Hex) || !strings.Contains(spdx.Name, digest.String()) {
		t.Errorf("name %q / namespace %q do not name the image digest", spdx.Name, spdx.DocumentNamespace)
	}
	names := map[string]string{}
	ids := map[string]string{}
	for _, p := range spdx.Packages {
		names[p.Name] = p.VersionInfo
		ids[p.SPDXID] = p.VersionInfo
	}
	if v, ok := names["busybox-static"]; !ok || v != "1:1.35.0-4+b3" {
		t.Errorf("dpkg package missing or wrong version (%q); packages %v", v, names)
	}
	if _, ok := names["example.com/hello"]; !ok {
		t.Errorf("the Go binary's main module is missing; packages %v", names)
	}
	if _, ok := names["stdlib"]; !ok {
		t.Errorf("the Go binary's standard library is missing; packages %v", names)
	}
	// The document describes the image: the described package's version
	// is its digest.
	described := false
	for _, id := range spdx.DocumentDescribes {
		described = described || ids[id] == digest.String()
	}
	for _, r := range spdx.Relationships {
		if r.Element == "SPDXRef-DOCUMENT" && r.Type == "DESCRIBES" {
			described = described || ids[r.Related] == digest.String()
		}
	}
	if !described {
		t.Errorf("the document does not describe %s", digest)
	}
	if doc.Packages < 3 {
		t.Errorf("Packages = %d", doc.Packages)
	}

	again, err := Generate(context.Background(), img, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.JSON, doc.JSON) {
		t.Error("two SBOMs of one image with one creation time differ")
	}
}

func TestCycloneDX(t *testing.T) {
	img := testImage(t)
	doc, err := Generate(context.Background(), img, sbom.Options{Format: sbom.FormatCycloneDX, Name: "app", ToolName: "kimia", ToolVersion: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	var bom struct {
		BOMFormat    string `json:"bomFormat"`
		SerialNumber string `json:"serialNumber"`
		Components   []struct {
			Name string `json:"name"`
		} `json:"components"`
	}
	if err := json.Unmarshal(doc.JSON, &bom); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range bom.Components {
		found = found || c.Name == "busybox-static"
	}
	if doc.PredicateType != attest.PredicateCycloneDX || bom.BOMFormat != "CycloneDX" || !strings.HasPrefix(bom.SerialNumber, "urn:uuid:") || !found {
		t.Errorf("predicate %s, bom %+v", doc.PredicateType, bom)
	}
}
