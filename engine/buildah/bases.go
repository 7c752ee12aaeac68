package buildah

import (
	"os"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"
	"github.com/openshift/imagebuilder"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/storage"

	"github.com/rapidfort/kimia/engine"
)

// dockerfileBases lists the images the Dockerfile's stages start FROM,
// ARGs expanded as Buildah expands them, in order and without stage
// names, scratch or duplicates.
func dockerfileBases(path string, args []engine.KeyValue, plat engine.Platform) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	node, err := imagebuilder.ParseDockerfile(f)
	if err != nil {
		return nil
	}
	userArgs := map[string]string{}
	for _, kv := range args {
		userArgs[kv.Key] = kv.Value
	}
	b := imagebuilder.NewBuilder(userArgs)
	tp := plat.OS + "/" + plat.Architecture
	if plat.Variant != "" {
		tp += "/" + plat.Variant
	}
	for k, v := range map[string]string{"TARGETOS": plat.OS, "TARGETARCH": plat.Architecture, "TARGETVARIANT": plat.Variant, "TARGETPLATFORM": tp} {
		b.BuiltinArgDefaults[k] = v
	}
	stages, err := imagebuilder.NewStages(node, b)
	if err != nil {
		return nil
	}
	stageNames := map[string]bool{}
	seen := map[string]bool{}
	var out []string
	for _, st := range stages {
		from, err := st.Builder.From(st.Node)
		if err == nil && from != "" && !strings.EqualFold(from, "scratch") && !stageNames[from] && !seen[from] {
			seen[from] = true
			out = append(out, from)
		}
		stageNames[st.Name] = true
		stageNames[strconv.Itoa(st.Position)] = true
	}
	return out
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

// baseImages reports the build's base images with their digests; images
// the build did not pull (stages the target does not need) are left out.
func baseImages(s storage.Store, req *engine.Request, plat engine.Platform) []engine.BaseImage {
	var out []engine.BaseImage
	for _, ref := range dockerfileBases(req.Dockerfile, req.BuildArgs, plat) {
		if d, ok := resolvedBase(s, ref); ok {
			out = append(out, engine.BaseImage{Ref: ref, Digest: d.String()})
		}
	}
	return out
}
