// Package output writes what a build produced to local files: the image as
// a docker-archive or an OCI layout, Kaniko's digest files, and a JSON
// metadata file.
package output

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/rapidfort/kimia/registry"
)

// Image is the built artifact read from the engine's layout: one image,
// or an index of per-platform images.
type Image struct {
	// Image is set for a single-platform build.
	Image v1.Image
	// Index is set for a multi-platform build.
	Index v1.ImageIndex
}

// Artifact returns the image or the index.
func (im Image) Artifact() registry.Artifact {
	if im.Index != nil {
		return im.Index
	}
	return im.Image
}

// ReadLayout opens the OCI layout an engine wrote. Its index.json must
// hold exactly one descriptor.
func ReadLayout(dir string) (Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return Image{}, fmt.Errorf("reading the engine's OCI layout %q: %w", dir, err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		return Image{}, fmt.Errorf("reading the engine's OCI layout %q: %w", dir, err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		return Image{}, err
	}
	if len(im.Manifests) != 1 {
		return Image{}, fmt.Errorf("the engine's OCI layout %q holds %d manifests, want 1", dir, len(im.Manifests))
	}
	d := im.Manifests[0]
	switch {
	case d.MediaType.IsIndex():
		idx, err := top.ImageIndex(d.Digest)
		return Image{Index: idx}, err
	case d.MediaType.IsImage():
		img, err := top.Image(d.Digest)
		return Image{Image: img}, err
	}
	return Image{}, fmt.Errorf("the engine's OCI layout %q holds a %s, not an image", dir, d.MediaType)
}

// WriteOCILayout writes the image to dir as an OCI image layout, each
// destination recorded as a reference name.
func WriteOCILayout(dir string, im Image, dests []string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("writing OCI layout %q: %w", dir, err)
	}
	names := dests
	if len(names) == 0 {
		names = []string{""}
	}
	for _, n := range names {
		var opts []layout.Option
		if n != "" {
			opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": n}))
		}
		if im.Index != nil {
			err = p.AppendIndex(im.Index, opts...)
		} else {
			err = p.AppendImage(im.Image, opts...)
		}
		if err != nil {
			return fmt.Errorf("writing OCI layout %q: %w", dir, err)
		}
	}
	return nil
}

// WriteTarball writes a docker-archive (loadable by docker load, readable
// by skopeo) with every destination's tag. Without destinations the
// image is untagged.
func WriteTarball(path string, img v1.Image, dests []string) error {
	refs := map[name.Reference]v1.Image{}
	for _, d := range dests {
		t, err := name.NewTag(d)
		if err != nil {
			return err
		}
		refs[t] = img
	}
	if len(refs) == 0 {
		h, err := img.Digest()
		if err != nil {
			return err
		}
		d, err := name.NewDigest("kimia/image@" + h.String())
		if err != nil {
			return err
		}
		refs[d] = img
	}
	return writeAtomically(path, func(tmp string) error {
		return tarball.MultiRefWriteToFile(tmp, refs)
	})
}

// WriteDigestFile writes the digest, without a newline, as Kaniko does.
func WriteDigestFile(path string, digest v1.Hash) error {
	return writeFile(path, []byte(digest.String()))
}

// WriteImageNameWithDigestFile writes repo@digest, a line per destination.
func WriteImageNameWithDigestFile(path string, pushed []registry.Pushed) error {
	var b strings.Builder
	for _, p := range pushed {
		b.WriteString(p.Ref + "\n")
	}
	return writeFile(path, []byte(b.String()))
}

// TagDigest is an entry of --image-name-tag-with-digest-file, Kaniko's
// format.
type TagDigest struct {
	Image  string `json:"image"`
	Digest string `json:"digest"`
}

// WriteImageNameTagWithDigestFile writes a JSON array with one entry per
// destination tag.
func WriteImageNameTagWithDigestFile(path string, pushed []registry.Pushed) error {
	entries := make([]TagDigest, 0, len(pushed))
	for _, p := range pushed {
		entries = append(entries, TagDigest{Image: p.Tag, Digest: p.Digest})
	}
	b, err := json.Marshal(entries)
	if err != nil {
		return err
	}
	return writeFile(path, b)
}

// WriteJSON writes v as indented JSON.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(path, append(b, '\n'))
}

func writeFile(path string, b []byte) error {
	return writeAtomically(path, func(tmp string) error { return os.WriteFile(tmp, b, 0o644) })
}

// writeAtomically writes through a temporary file in the same directory,
// so a reader never sees half a file and a failure leaves none behind.
func writeAtomically(path string, write func(tmp string) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	tmp := f.Name()
	f.Close()
	if err := write(tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %q: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %q: %w", path, err)
	}
	return nil
}
