package assemble

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/rapidfort/kimia/engine"
)

// fakeLayer is an uncompressed layer whose opens are counted.
type fakeLayer struct {
	tar   []byte
	opens atomic.Int32
}

func newFakeLayer(t *testing.T, files map[string]string) *fakeLayer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for n, c := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(c))
	}
	tw.Close()
	return &fakeLayer{tar: b.Bytes()}
}

func (f *fakeLayer) diffID() string { return sha(f.tar).String() }

func (f *fakeLayer) layer() engine.Layer {
	return engine.Layer{DiffID: f.diffID(), Open: func() (io.ReadCloser, error) {
		f.opens.Add(1)
		return io.NopCloser(bytes.NewReader(f.tar)), nil
	}}
}

func config(t *testing.T, arch string, ls ...*fakeLayer) []byte {
	t.Helper()
	c := map[string]any{"architecture": arch, "os": "linux", "config": map[string]any{}}
	ids := []string{}
	for _, l := range ls {
		ids = append(ids, l.diffID())
	}
	c["rootfs"] = map[string]any{"type": "layers", "diff_ids": ids}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

func read(t *testing.T, open func() (io.ReadCloser, error)) []byte {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAssembleCompressesNewLayersAlikeAndKeepsBaseBlobs(t *testing.T) {
	base := newFakeLayer(t, map[string]string{"bin/sh": "shell"})
	baseBlob := gzipped(t, base.tar) // as a registry served it: not kimia's compressor's bytes
	app := newFakeLayer(t, map[string]string{"app/main": strings.Repeat("kimia ", 1000)})
	in := func() []engine.Image {
		return []engine.Image{{
			Platform: engine.Platform{OS: "linux", Architecture: "amd64"},
			Config:   config(t, "amd64", base, app),
			Layers: []engine.Layer{
				{DiffID: base.diffID(), Blob: &engine.Blob{MediaType: string(types.OCILayer), Digest: sha(baseBlob).String(), Size: int64(len(baseBlob)),
					Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(baseBlob)), nil }}},
				app.layer(),
			},
		}}
	}
	var digests []v1.Hash
	for i := 0; i < 2; i++ {
		res, err := Assemble(context.Background(), in(), Options{WorkDir: t.TempDir(), Compression: engine.Compression{Algorithm: "gzip", Level: -1},
			Annotations: []engine.KeyValue{{Key: "org.example", Value: "x"}}})
		if err != nil {
			t.Fatal(err)
		}
		img := res.Image
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON || m.Annotations["org.example"] != "x" {
			t.Errorf("manifest %+v", m)
		}
		if m.Layers[0].Digest != sha(baseBlob) || m.Layers[0].Size != int64(len(baseBlob)) {
			t.Errorf("the base layer is %v, want the registry's blob %s", m.Layers[0], sha(baseBlob))
		}
		ls, _ := img.Layers()
		got := read(t, ls[1].Uncompressed)
		if !bytes.Equal(got, app.tar) {
			t.Error("the new layer's uncompressed bytes differ from the engine's")
		}
		blob := read(t, ls[1].Compressed)
		if sha(blob) != m.Layers[1].Digest || int64(len(blob)) != m.Layers[1].Size || m.Layers[1].MediaType != types.OCILayer {
			t.Errorf("the new layer's blob (%s, %d) does not match its descriptor %+v", sha(blob), len(blob), m.Layers[1])
		}
		zr, err := gzip.NewReader(bytes.NewReader(blob))
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(zr); !bytes.Equal(b, app.tar) {
			t.Error("the new layer's blob does not decompress to the layer")
		}
		raw, _ := img.RawConfigFile()
		if !bytes.Equal(raw, in()[0].Config) {
			t.Error("the config was changed")
		}
		d, _ := img.Digest()
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("two assemblies of the same layers gave %s and %s", digests[0], digests[1])
	}
}

func TestAssembleConvertsBlobsOfAnotherCompression(t *testing.T) {
	base := newFakeLayer(t, map[string]string{"etc/os-release": "kimia"})
	baseBlob := gzipped(t, base.tar)
	for _, tc := range []struct {
		algorithm, format string
		want              types.MediaType
	}{
		{"zstd", engine.FormatOCI, types.OCILayerZStd},
		{"uncompressed", engine.FormatOCI, types.OCIUncompressedLayer},
		{"uncompressed", engine.FormatDocker, types.DockerUncompressedLayer},
		{"gzip", engine.FormatDocker, types.DockerLayer},
	} {
		t.Run(tc.algorithm+" "+tc.format, func(t *testing.T) {
			res, err := Assemble(context.Background(), []engine.Image{{
				Config: config(t, "amd64", base),
				Layers: []engine.Layer{{DiffID: base.diffID(), Blob: &engine.Blob{MediaType: string(types.OCILayer), Digest: sha(baseBlob).String(), Size: int64(len(baseBlob)),
					Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(baseBlob)), nil }}}},
			}}, Options{WorkDir: t.TempDir(), Format: tc.format, Compression: engine.Compression{Algorithm: tc.algorithm, Level: -1}})
			if err != nil {
				t.Fatal(err)
			}
			m, _ := res.Image.Manifest()
			l := m.Layers[0]
			if l.MediaType != tc.want {
				t.Errorf("media type %s, want %s", l.MediaType, tc.want)
			}
			ls, _ := res.Image.Layers()
			blob := read(t, ls[0].Compressed)
			if sha(blob) != l.Digest || int64(len(blob)) != l.Size {
				t.Errorf("blob %s (%d bytes) does not match %+v", sha(blob), len(blob), l)
			}
			if tc.algorithm == "gzip" && l.Digest != sha(baseBlob) {
				t.Errorf("a gzip base layer was recompressed for docker format: %s", l.Digest)
			}
			if tc.algorithm == "uncompressed" && l.Digest.String() != base.diffID() {
				t.Errorf("an uncompressed layer's digest is %s, want its diff id", l.Digest)
			}
			if got := read(t, ls[0].Uncompressed); !bytes.Equal(got, base.tar) {
				t.Error("the layer's uncompressed bytes differ")
			}
		})
	}
}

// A rebuild with --cache-dir whose layers the registry already has
// pushes without compressing (or even reading) them again.
func TestAssembleCacheSkipsLayersTheRegistryHas(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref, err := name.NewTag(strings.TrimPrefix(srv.URL, "http://")+"/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	app := newFakeLayer(t, map[string]string{"app": strings.Repeat("x", 1<<20)})
	assembleAndPush := func() (v1.Hash, int32) {
		app.opens.Store(0)
		res, err := Assemble(context.Background(), []engine.Image{{Config: config(t, "amd64", app), Layers: []engine.Layer{app.layer()}}},
			Options{WorkDir: t.TempDir(), CacheDir: cache, Compression: engine.Compression{Algorithm: "gzip", Level: -1}})
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, res.Image); err != nil {
			t.Fatal(err)
		}
		d, _ := res.Image.Digest()
		return d, app.opens.Load()
	}
	first, opens := assembleAndPush()
	if opens != 1 {
		t.Errorf("the first build read the layer %d times, want 1 (compressed once)", opens)
	}
	second, opens := assembleAndPush()
	if opens != 0 {
		t.Errorf("the rebuild read the layer %d times, want 0: the registry has its blob", opens)
	}
	if first != second {
		t.Errorf("the cached rebuild gave %s, the first build %s", second, first)
	}
	// A registry that lacks the blob gets it compressed again, to the
	// same bytes the cache named.
	other, _ := name.NewTag(strings.TrimPrefix(srv.URL, "http://")+"/other/app:v1", name.Insecure)
	res, err := Assemble(context.Background(), []engine.Image{{Config: config(t, "amd64", app), Layers: []engine.Layer{app.layer()}}},
		Options{WorkDir: t.TempDir(), CacheDir: cache, Compression: engine.Compression{Algorithm: "gzip", Level: -1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(other, res.Image); err != nil {
		t.Fatalf("pushing a cached layer to a repository without it: %v", err)
	}
	img, err := remote.Image(other)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d != first {
		t.Errorf("the other repository serves %s, want %s", d, first)
	}
}

func TestAssembleIndex(t *testing.T) {
	a := newFakeLayer(t, map[string]string{"arch": "amd64"})
	b := newFakeLayer(t, map[string]string{"arch": "arm64"})
	res, err := Assemble(context.Background(), []engine.Image{
		{Platform: engine.Platform{OS: "linux", Architecture: "amd64"}, Config: config(t, "amd64", a), Layers: []engine.Layer{a.layer()}},
		{Platform: engine.Platform{OS: "linux", Architecture: "arm64"}, Config: config(t, "arm64", b), Layers: []engine.Layer{b.layer()}},
	}, Options{WorkDir: t.TempDir(), Format: engine.FormatDocker, Compression: engine.Compression{Algorithm: "gzip", Level: -1}})
	if err != nil {
		t.Fatal(err)
	}
	im, err := res.Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.DockerManifestList || len(im.Manifests) != 2 {
		t.Fatalf("index %+v", im)
	}
	for i, arch := range []string{"amd64", "arm64"} {
		d := im.Manifests[i]
		if d.Platform == nil || d.Platform.Architecture != arch || d.MediaType != types.DockerManifestSchema2 {
			t.Errorf("entry %d: %+v", i, d)
		}
		img, err := res.Index.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		if cf.Architecture != arch {
			t.Errorf("entry %d's config is %s", i, cf.Architecture)
		}
	}
}

func TestAssembleRefusesLayersThatDoNotMatchTheConfig(t *testing.T) {
	a := newFakeLayer(t, map[string]string{"a": "a"})
	b := newFakeLayer(t, map[string]string{"b": "b"})
	for name, img := range map[string]engine.Image{
		"a missing layer": {Config: config(t, "amd64", a, b), Layers: []engine.Layer{a.layer()}},
		"a wrong layer":   {Config: config(t, "amd64", a), Layers: []engine.Layer{b.layer()}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Assemble(context.Background(), []engine.Image{img}, Options{WorkDir: t.TempDir()})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "layer") {
				t.Errorf("error %q does not name the layers", err)
			}
		})
	}
}
