package buildah

import (
	"encoding/json"
	"fmt"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/buildah/docker"
)

// imageConfig turns the Docker-format config Buildah committed into the
// config kimia writes in both formats: the OCI image config with Docker's
// extensions (Healthcheck, OnBuild, Shell), the same document BuildKit
// writes. Buildah drops those three instructions when it commits in OCI
// format, so kimia-bud always commits in Docker format and converts;
// Docker-only leftovers (container, container_config, docker_version,
// hostname) are left out, as BuildKit leaves them out.
func imageConfig(raw []byte) ([]byte, error) {
	var d docker.V2Image
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("reading the image config: %w", err)
	}
	var out dockerspec.DockerOCIImage
	if !d.Created.IsZero() {
		t := d.Created.UTC()
		out.Created = &t
	}
	out.Author = d.Author
	out.Platform = ocispec.Platform{
		Architecture: d.Architecture,
		OS:           d.OS,
		OSVersion:    d.OSVersion,
		OSFeatures:   d.OSFeatures,
		Variant:      d.Variant,
	}
	out.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: nil}
	if d.RootFS != nil {
		out.RootFS.Type = d.RootFS.Type
		out.RootFS.DiffIDs = d.RootFS.DiffIDs
	}
	if out.RootFS.DiffIDs == nil {
		out.RootFS.DiffIDs = []digest.Digest{}
	}
	for _, h := range d.History {
		oh := ocispec.History{Author: h.Author, CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer}
		if !h.Created.IsZero() {
			t := h.Created.UTC()
			oh.Created = &t
		}
		out.History = append(out.History, oh)
	}
	if c := d.Config; c != nil {
		ic := &out.Config
		ic.User = c.User
		ic.Env = c.Env
		ic.Entrypoint = c.Entrypoint
		ic.Cmd = c.Cmd
		ic.WorkingDir = c.WorkingDir
		ic.Labels = c.Labels
		ic.StopSignal = c.StopSignal
		ic.ArgsEscaped = c.ArgsEscaped //nolint:staticcheck // kept as written
		if len(c.ExposedPorts) > 0 {
			ic.ExposedPorts = map[string]struct{}{}
			for p := range c.ExposedPorts {
				ic.ExposedPorts[string(p)] = struct{}{}
			}
		}
		if len(c.Volumes) > 0 {
			ic.Volumes = c.Volumes
		}
		ic.OnBuild = c.OnBuild
		ic.Shell = c.Shell
		if h := c.Healthcheck; h != nil {
			ic.Healthcheck = &dockerspec.HealthcheckConfig{
				Test:          h.Test,
				Interval:      h.Interval,
				Timeout:       h.Timeout,
				StartPeriod:   h.StartPeriod,
				StartInterval: h.StartInterval,
				Retries:       h.Retries,
			}
		}
	}
	return json.Marshal(out)
}
