package syftgen

import (
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
)

// fastImage hands syft layers that decompress with klauspost's gzip,
// about a third faster than the standard library's: every layer of the
// image, the base's included, is decompressed for the SBOM, and that is
// most of its time for a distribution-sized image.
type fastImage struct {
	v1.Image
}

func (f fastImage) Layers() ([]v1.Layer, error) {
	ls, err := f.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = fastLayer{l}
	}
	return out, nil
}

func (f fastImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := f.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return fastLayer{l}, nil
}

type fastLayer struct {
	v1.Layer
}

func (l fastLayer) Uncompressed() (io.ReadCloser, error) {
	mt, err := l.MediaType()
	if err != nil || !mt.IsLayer() || !isGzip(string(mt)) {
		return l.Layer.Uncompressed()
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(rc)
	if err != nil {
		rc.Close()
		return l.Layer.Uncompressed()
	}
	return &gzipReadCloser{Reader: zr, c: rc}, nil
}

func isGzip(mt string) bool {
	switch mt {
	case "application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.docker.image.rootfs.diff.tar.gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
		return true
	}
	return false
}

type gzipReadCloser struct {
	*gzip.Reader
	c io.Closer
}

func (g *gzipReadCloser) Close() error {
	err := g.Reader.Close()
	if cerr := g.c.Close(); err == nil {
		err = cerr
	}
	return err
}
