package buildah

import (
	digest "github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/storage"

	"github.com/rapidfort/kimia/dockerfile"
	"github.com/rapidfort/kimia/engine"
)

// dockerfileImages lists the images the build pulls (FROM, COPY --from,
// RUN --mount from=), ARGs expanded, as kimia lists them (package
// dockerfile), so that both engines record the same base images.
func dockerfileImages(path string, args []engine.KeyValue, plat engine.Platform) []string {
	info, err := dockerfile.Read(path, args, plat)
	if err != nil {
		return nil
	}
	return info.Images
}

// resolvedBase finds the image the build pulled for ref in the store and
// returns the digest the registry served for it: the manifest list's
// when the tag named one, else the image manifest's.
func resolvedBase(s storage.Store, ref string) (digest.Digest, bool) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", false
	}
	if d, ok := named.(reference.Digested); ok {
		return d.Digest(), true
	}
	img, err := s.Image(reference.TagNameOnly(named).String())
	if err != nil {
		return "", false
	}
	for _, d := range img.Digests {
		b, err := s.ImageBigData(img.ID, storage.ImageDigestManifestBigDataNamePrefix+"-"+d.String())
		if err == nil && manifest.MIMETypeIsMultiImage(manifest.GuessMIMEType(b)) {
			return d, true
		}
	}
	return img.Digest, img.Digest != ""
}

// baseImages reports the images the build pulled with their digests;
// images it did not pull (stages the target does not need) are left out.
func baseImages(s storage.Store, req *engine.Request, plat engine.Platform) []engine.BaseImage {
	var out []engine.BaseImage
	for _, ref := range dockerfileImages(req.Dockerfile, req.BuildArgs, plat) {
		if d, ok := resolvedBase(s, ref); ok {
			out = append(out, engine.BaseImage{Ref: ref, Digest: d.String()})
		}
	}
	return out
}
