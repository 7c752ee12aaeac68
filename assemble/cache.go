package assemble

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// blobCache remembers which compressed blob each uncompressed layer
// became, under --cache-dir, so that a rebuild does not compress again a
// layer the registry already has: the compressor is deterministic, so the
// answer never goes stale for one cache key. It keeps digests and sizes,
// not blobs: a blob the registry lacks is compressed again when it is
// pushed, to the same bytes.
type blobCache struct {
	dir string // "" when there is no cache
}

func newBlobCache(cacheDir, key string) blobCache {
	if cacheDir == "" || key == "" {
		return blobCache{}
	}
	return blobCache{dir: filepath.Join(cacheDir, "layers", key)}
}

func (c blobCache) path(diffID v1.Hash) string {
	return filepath.Join(c.dir, diffID.Algorithm+"-"+diffID.Hex)
}

// get returns the blob diffID was compressed to, if known.
func (c blobCache) get(diffID v1.Hash) (v1.Hash, int64, bool) {
	if c.dir == "" {
		return v1.Hash{}, 0, false
	}
	b, err := os.ReadFile(c.path(diffID))
	if err != nil {
		return v1.Hash{}, 0, false
	}
	var d string
	var size int64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%s %d", &d, &size); err != nil || size < 0 {
		return v1.Hash{}, 0, false
	}
	h, err := v1.NewHash(d)
	if err != nil {
		return v1.Hash{}, 0, false
	}
	return h, size, true
}

// put records that diffID compressed to digest; a failure only costs a
// compression next time.
func (c blobCache) put(diffID, digest v1.Hash, size int64) {
	if c.dir == "" {
		return
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return
	}
	f, err := os.CreateTemp(c.dir, ".tmp-")
	if err != nil {
		return
	}
	_, werr := fmt.Fprintf(f, "%s %d\n", digest, size)
	if cerr := f.Close(); werr != nil || cerr != nil {
		os.Remove(f.Name())
		return
	}
	if err := os.Rename(f.Name(), c.path(diffID)); err != nil {
		os.Remove(f.Name())
	}
}
