// Package assemble turns what an engine built (per platform, a config and
// layers as uncompressed tars or as blobs that exist already) into the
// image kimia publishes: layers compressed by one implementation for both
// engines, base layers kept as their registry serves them, and the
// manifests and index written the same way whichever engine built the
// image. Equal configs and layers therefore give one digest across
// engines.
package assemble

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rapidfort/kimia/engine"
)

// Options say how to assemble.
type Options struct {
	// Format is engine.FormatOCI (default) or engine.FormatDocker.
	Format      string
	Compression engine.Compression
	// Annotations go on every image manifest, and on the index of a
	// multi-platform image.
	Annotations []engine.KeyValue
	// CacheDir, when set, keeps which blob each layer was compressed to
	// between builds (--cache-dir), so that a rebuild compresses only what
	// the registry may lack.
	CacheDir string
	// WorkDir holds the compressed layers until the build ends.
	WorkDir string
	// Fetch reads a blob from the repository it came from, for layers
	// whose engine does not hold their bytes (engine.Blob.Source).
	Fetch func(ctx context.Context, source string, digest v1.Hash) (io.ReadCloser, error)
}

// Result is the assembled artifact: one image, or an index of images.
type Result struct {
	Image v1.Image
	Index v1.ImageIndex
}

// Assemble builds the publishable image from the engine's images. Layers
// that need compressing are compressed now, several at once, unless the
// cache says what they compress to; the rest are read when a push or an
// output asks for them.
func Assemble(ctx context.Context, imgs []engine.Image, o Options) (Result, error) {
	if len(imgs) == 0 {
		return Result{}, errors.New("the engine built no image")
	}
	comp, err := newCompressor(o.Compression)
	if err != nil {
		return Result{}, err
	}
	a := &assembler{o: o, comp: comp, cache: newBlobCache(o.CacheDir, comp.cacheKey())}
	built := make([]*image, len(imgs))
	for i, in := range imgs {
		if built[i], err = a.image(ctx, in); err != nil {
			return Result{}, err
		}
	}
	if len(built) == 1 {
		return Result{Image: built[0]}, nil
	}
	idx, err := newIndex(built, imgs, o)
	if err != nil {
		return Result{}, err
	}
	return Result{Index: idx}, nil
}

type assembler struct {
	o     Options
	comp  compressor
	cache blobCache
}

// image assembles one platform's image.
func (a *assembler) image(ctx context.Context, in engine.Image) (*image, error) {
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(in.Config, &cfg); err != nil {
		return nil, fmt.Errorf("reading the %s image config: %w", in.Platform, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(in.Layers) {
		return nil, fmt.Errorf("the %s image config lists %d layers, the engine handed over %d", in.Platform, len(cfg.RootFS.DiffIDs), len(in.Layers))
	}
	layers := make([]*layer, len(in.Layers))
	errs := make([]error, len(in.Layers))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, l := range in.Layers {
		if l.DiffID != cfg.RootFS.DiffIDs[i] {
			return nil, fmt.Errorf("layer %d of the %s image is %s, its config says %s", i, in.Platform, l.DiffID, cfg.RootFS.DiffIDs[i])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			layers[i], errs[i] = a.layer(ctx, l)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("layer %d (%s) of the %s image: %w", i, l.DiffID, in.Platform, errs[i])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return newImage(in.Config, layers, a.o)
}

// layer decides what one layer's blob is: the existing blob when it is in
// the compression asked for, else the compressor's output (known from the
// cache, or made now).
func (a *assembler) layer(ctx context.Context, l engine.Layer) (*layer, error) {
	diffID, err := v1.NewHash(l.DiffID)
	if err != nil {
		return nil, err
	}
	out := &layer{diffID: diffID, mediaType: a.comp.mediaType(a.o.Format), file: l.File}
	// Whatever the engine handed over, remember what it became, so that
	// a rebuild can tell the engine which bytes it can keep (Known).
	defer func() {
		if out.digest.Hex != "" && out.size >= 0 {
			if b := l.Blob; b != nil {
				if d, err := v1.NewHash(b.Digest); err == nil {
					a.cache.put(d, out.digest, out.size)
				}
			}
		}
	}()
	if b := l.Blob; b != nil && b.Keep && algorithmOf(b.MediaType) == a.comp.algorithm {
		if out.digest, err = v1.NewHash(b.Digest); err != nil {
			return nil, err
		}
		out.size, out.source = b.Size, b.Source
		out.compressed = b.Open
		if out.compressed == nil {
			if b.Source == "" || a.o.Fetch == nil {
				return nil, fmt.Errorf("blob %s is neither held nor has a source to copy it from", b.Digest)
			}
			out.compressed = func() (io.ReadCloser, error) { return a.o.Fetch(ctx, b.Source, out.digest) }
		}
		out.uncompressed = l.Open
		if out.uncompressed == nil {
			out.uncompressed = func() (io.ReadCloser, error) { return decompress(out.compressed, a.comp.algorithm) }
		}
		return out, nil
	}

	// The uncompressed tar: from the engine, or from the existing blob.
	open := l.Open
	if open == nil {
		b := l.Blob
		if b == nil || b.Digest == "" {
			return nil, errors.New("the engine handed over neither the tar nor a blob")
		}
		alg := algorithmOf(b.MediaType)
		if alg == "" {
			return nil, fmt.Errorf("blob %s has media type %s, not a layer", b.Digest, b.MediaType)
		}
		blobOpen := b.Open
		if blobOpen == nil {
			src := b.Source
			d, err := v1.NewHash(b.Digest)
			if err != nil {
				return nil, err
			}
			blobOpen = func() (io.ReadCloser, error) { return a.o.Fetch(ctx, src, d) }
		}
		open = func() (io.ReadCloser, error) { return decompress(blobOpen, alg) }
	}
	out.uncompressed = open

	if a.comp.algorithm == Uncompressed {
		out.digest, out.size = diffID, -1
		out.compressed = open
		return out, out.sizeFromOpen()
	}
	if d, size, ok := a.cache.get(diffID); ok {
		out.digest, out.size = d, size
		out.compressed = a.compressing(open, d)
		return out, nil
	}
	path, d, size, err := a.compressToFile(open)
	if err != nil {
		return nil, err
	}
	a.cache.put(diffID, d, size)
	out.digest, out.size = d, size
	out.compressed = func() (io.ReadCloser, error) { return os.Open(path) }
	return out, nil
}

// Known returns what a blob an engine hands over (a layer's compressed
// form or its uncompressed tar, by digest) became in an image assembled
// before with the same compression and cache directory, for
// engine.Request.HaveBlob; ok is false when it is not known.
func Known(cacheDir string, c engine.Compression) func(digest string) (v1.Hash, bool) {
	comp, err := newCompressor(c)
	if err != nil {
		return func(string) (v1.Hash, bool) { return v1.Hash{}, false }
	}
	cache := newBlobCache(cacheDir, comp.cacheKey())
	return func(digest string) (v1.Hash, bool) {
		h, err := v1.NewHash(digest)
		if err != nil {
			return v1.Hash{}, false
		}
		final, _, ok := cache.get(h)
		return final, ok
	}
}

// compressToFile compresses a layer into the work directory.
func (a *assembler) compressToFile(open func() (io.ReadCloser, error)) (string, v1.Hash, int64, error) {
	rc, err := open()
	if err != nil {
		return "", v1.Hash{}, 0, err
	}
	defer rc.Close()
	f, err := os.CreateTemp(a.o.WorkDir, "layer-")
	if err != nil {
		return "", v1.Hash{}, 0, err
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	zw, err := a.comp.wrap(cw)
	if err == nil {
		if _, err = io.Copy(zw, rc); err == nil {
			err = zw.Close()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", v1.Hash{}, 0, fmt.Errorf("compressing: %w", err)
	}
	return f.Name(), v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, cw.n, nil
}

// compressing streams the compressor's output of open, for a layer whose
// digest the cache already gave; a stream that turns out different fails
// at its end rather than pushing a blob under the wrong digest.
func (a *assembler) compressing(open func() (io.ReadCloser, error), want v1.Hash) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		rc, err := open()
		if err != nil {
			return nil, err
		}
		pr, pw := io.Pipe()
		h := sha256.New()
		go func() {
			defer rc.Close()
			zw, err := a.comp.wrap(io.MultiWriter(pw, h))
			if err == nil {
				if _, err = io.Copy(zw, rc); err == nil {
					err = zw.Close()
				}
			}
			if err == nil {
				if got := hex.EncodeToString(h.Sum(nil)); got != want.Hex {
					err = fmt.Errorf("the layer compressed to sha256:%s, the cache in --cache-dir said %s (remove %s)", got, want, a.cache.dir)
				}
			}
			pw.CloseWithError(err)
		}()
		return pr, nil
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// mediaTypeOf is what a descriptor of v in format says.
func manifestMediaType(format string) types.MediaType {
	if format == engine.FormatDocker {
		return types.DockerManifestSchema2
	}
	return types.OCIManifestSchema1
}

func configMediaType(format string) types.MediaType {
	if format == engine.FormatDocker {
		return types.DockerConfigJSON
	}
	return types.OCIConfigJSON
}

func indexMediaType(format string) types.MediaType {
	if format == engine.FormatDocker {
		return types.DockerManifestList
	}
	return types.OCIImageIndex
}
