package assemble

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/rapidfort/kimia/engine"
)

// Compression algorithms, as engine.Compression names them.
const (
	Gzip         = "gzip"
	Zstd         = "zstd"
	Uncompressed = "uncompressed"
)

// compressor is the one layer compression both engines' images get. Its
// output depends only on the uncompressed tar, the algorithm and the
// level (klauspost/compress is deterministic, and zstd runs on one
// goroutine per layer), so equal layers give equal blobs whichever engine
// made them. It is also several times faster than the standard library's
// gzip, which BuildKit's exporter uses, on incompressible data.
type compressor struct {
	algorithm string
	level     int // -1: the algorithm's default
}

func newCompressor(c engine.Compression) (compressor, error) {
	switch c.Algorithm {
	case "":
		return compressor{Gzip, -1}, nil // unset: the defaults
	case Gzip:
		return compressor{Gzip, c.Level}, nil
	case Zstd, Uncompressed:
		return compressor{c.Algorithm, c.Level}, nil
	}
	return compressor{}, fmt.Errorf("compression %q: want gzip, zstd or uncompressed", c.Algorithm)
}

// wrap returns a writer that compresses into w.
func (c compressor) wrap(w io.Writer) (io.WriteCloser, error) {
	switch c.algorithm {
	case Gzip:
		level := gzip.DefaultCompression
		if c.level >= 0 {
			level = c.level
		}
		return gzip.NewWriterLevel(w, level)
	case Zstd:
		opts := []zstd.EOption{zstd.WithEncoderConcurrency(1)}
		if c.level >= 0 {
			opts = append(opts, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(c.level)))
		}
		return zstd.NewWriter(w, opts...)
	}
	return nopCloser{w}, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// mediaType is the layer media type for the compression in format
// ("oci" or "docker").
func (c compressor) mediaType(format string) types.MediaType {
	docker := format == engine.FormatDocker
	switch c.algorithm {
	case Gzip:
		if docker {
			return types.DockerLayer
		}
		return types.OCILayer
	case Zstd:
		if docker {
			return "application/vnd.docker.image.rootfs.diff.tar.zstd"
		}
		return types.OCILayerZStd
	}
	if docker {
		return types.DockerUncompressedLayer
	}
	return types.OCIUncompressedLayer
}

// algorithmOf says how a layer blob of media type mt is compressed, or ""
// for a media type that is not a layer kimia knows.
func algorithmOf(mt string) string {
	switch types.MediaType(mt) {
	case types.OCILayer, types.DockerLayer, types.DockerForeignLayer, types.OCIRestrictedLayer:
		return Gzip
	case types.OCILayerZStd, "application/vnd.docker.image.rootfs.diff.tar.zstd":
		return Zstd
	case types.OCIUncompressedLayer, types.DockerUncompressedLayer, types.OCIUncompressedRestrictedLayer:
		return Uncompressed
	}
	return ""
}

// cacheKey names the compressor's output in the blob cache: the
// algorithm, the level and a fingerprint of the code that compresses (the
// digest of its output for a fixed sample), so that an upgrade that
// changes the bytes never reuses an old answer. It is "" when the
// fingerprint cannot be made (no caching then).
func (c compressor) cacheKey() string {
	fingerprints.Lock()
	defer fingerprints.Unlock()
	k := fmt.Sprintf("%s-%d", c.algorithm, c.level)
	if fp, ok := fingerprints.m[k]; ok {
		return fp
	}
	h := sha256.New()
	w, err := c.wrap(h)
	if err == nil {
		_, err = w.Write(fingerprintSample())
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	fp := ""
	if err == nil {
		fp = k + "-" + hex.EncodeToString(h.Sum(nil))[:16]
	}
	fingerprints.m[k] = fp
	return fp
}

var fingerprints = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

// fingerprintSample is 256 KiB of text and noise, a tar's mix, the same
// on every run.
func fingerprintSample() []byte {
	var b bytes.Buffer
	x := uint32(2463534242)
	for b.Len() < 256<<10 {
		fmt.Fprintf(&b, "usr/lib/kimia/file-%d.txt\n", b.Len())
		for i := 0; i < 64; i++ {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			b.WriteByte(byte(x))
		}
	}
	return b.Bytes()
}
