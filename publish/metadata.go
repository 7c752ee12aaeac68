package publish

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rapidfort/kimia/buildctx"
	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/registry"
)

// Metadata is the --metadata-file document. Its fields are stable: CI
// systems read them.
type Metadata struct {
	Digest       string              `json:"digest"`
	MediaType    string              `json:"mediaType"`
	Size         int64               `json:"size"`
	Platforms    []PlatformImage     `json:"platforms"`
	Destinations []registry.Pushed   `json:"destinations"`
	Pushed       bool                `json:"pushed"`
	Engine       EngineMetadata      `json:"engine"`
	BuildSeconds float64             `json:"buildDurationSeconds"`
	TotalSeconds float64             `json:"totalDurationSeconds"`
	Cache        *engine.CacheStats  `json:"cache,omitempty"`
	BaseImages   []engine.BaseImage  `json:"baseImages,omitempty"`
	Git          *buildctx.GitSource `json:"git,omitempty"`
	Reproducible bool                `json:"reproducible"`
	Created      string              `json:"created,omitempty"`
	// Attestations and Signatures are set by the supply-chain step
	// (attest.go).
	Attestations *AttestationMetadata `json:"attestations,omitempty"`
	Signatures   []SignatureMetadata  `json:"signatures,omitempty"`
}

// PlatformImage is one platform's image.
type PlatformImage struct {
	Platform string `json:"platform"`
	Digest   string `json:"digest"`
	// Size is the image's manifest, config and layers, compressed.
	Size int64 `json:"size"`
}

// EngineMetadata describes the engine that built the image.
type EngineMetadata struct {
	Name          string `json:"name"`
	Version       string `json:"version"`
	StorageDriver string `json:"storageDriver"`
	Rootless      bool   `json:"rootless"`
}

func newMetadata(b Build, img Image, sum *Summary, total time.Duration) (*Metadata, error) {
	req, info, res, src := b.Request, b.Engine, b.Result, b.Context
	md := &Metadata{
		Digest:       sum.Digest.String(),
		MediaType:    sum.MediaType,
		Pushed:       len(sum.Pushed) > 0,
		Destinations: sum.Pushed,
		Engine: EngineMetadata{
			Name: info.Name, Version: info.Version,
			StorageDriver: res.StorageDriver, Rootless: res.Rootless,
		},
		BuildSeconds: b.BuildTime.Seconds(),
		TotalSeconds: total.Seconds(),
		Cache:        res.Cache,
		BaseImages:   res.BaseImages,
		Git:          src.Git,
		Reproducible: req.Reproducible,
	}
	if md.Destinations == nil {
		md.Destinations = []registry.Pushed{}
	}
	if req.SourceDateEpoch != nil {
		md.Created = req.SourceDateEpoch.UTC().Format(time.RFC3339)
	}
	add := func(img v1.Image, platform string) error {
		p, err := imageSize(img)
		if err != nil {
			return err
		}
		d, err := img.Digest()
		if err != nil {
			return err
		}
		if platform == "" {
			cf, err := img.ConfigFile()
			if err != nil {
				return err
			}
			platform = engine.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}.String()
		}
		md.Platforms = append(md.Platforms, PlatformImage{Platform: platform, Digest: d.String(), Size: p})
		md.Size += p
		return nil
	}
	if img.Image != nil {
		if err := add(img.Image, ""); err != nil {
			return nil, err
		}
		return md, nil
	}
	im, err := img.Index.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if d.Platform == nil || d.Platform.OS == "unknown" || !d.MediaType.IsImage() {
			continue // attestation manifests are not platform images
		}
		child, err := img.Index.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		if err := add(child, d.Platform.String()); err != nil {
			return nil, err
		}
	}
	return md, nil
}

// imageSize sums an image's manifest, config and compressed layers.
func imageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	n := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}
