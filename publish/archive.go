package publish

// The image as local files: a docker-archive (--tar-path) or an OCI image
// layout (--oci-layout-path).

import (
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/rapidfort/kimia/engine"
)

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

// writeLocal writes the image files the user asked for.
func writeLocal(o Options, img Image) error {
	if o.OCILayoutPath != "" {
		if err := WriteOCILayout(o.OCILayoutPath, img, o.Destinations); err != nil {
			return engine.Wrap(engine.KindEnvironment, fmt.Errorf("--oci-layout-path: %w", err))
		}
	}
	if o.TarPath != "" {
		one := img.Image
		if one == nil {
			return engine.Errorf(engine.KindUsage, "--tar-path: a multi-platform image cannot be written as a docker-archive; use --oci-layout-path")
		}
		if err := WriteTarball(o.TarPath, one, o.Destinations); err != nil {
			return engine.Wrap(engine.KindEnvironment, fmt.Errorf("--tar-path: %w", err))
		}
	}
	return nil
}
