package registry

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rapidfort/kimia/engine"
)

// Artifact is an image or an image index.
type Artifact interface {
	remote.Taggable
	Digest() (v1.Hash, error)
	MediaType() (types.MediaType, error)
	Size() (int64, error)
}

// Pushed is one destination that now serves the image.
type Pushed struct {
	// Tag is the destination as given, normalized: registry/repo:tag.
	Tag string `json:"name"`
	// Digest is the digest the registry serves for Tag.
	Digest string `json:"digest"`
	// Ref is repo@digest.
	Ref string `json:"reference"`
	// ImmutableSkipped is set when the registry refused to move an
	// immutable tag and --push-ignore-immutable-tag-errors accepted that.
	ImmutableSkipped bool `json:"immutableTagKept,omitempty"`
}

// PushOptions configures Push.
type PushOptions struct {
	IgnoreImmutableTagErrors bool
	// Jobs is how many blobs are uploaded at once.
	Jobs int
	Log  *slog.Logger
}

// Push uploads art to every destination in two phases: first everything,
// addressed by digest, to each repository (blobs in parallel, blobs the
// registry has skipped, blobs mounted from a repository of the same
// registry pushed earlier); then the tags. A failure in the first phase
// leaves no tag moved anywhere.
func (c *Client) Push(ctx context.Context, art Artifact, dests []string, o PushOptions) ([]Pushed, error) {
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	digest, err := art.Digest()
	if err != nil {
		return nil, engine.Wrap(engine.KindInternal, fmt.Errorf("computing the image digest: %w", err))
	}
	tags := make([]name.Tag, len(dests))
	for i, d := range dests {
		if tags[i], err = c.Tag(d, engine.Push); err != nil {
			return nil, engine.Errorf(engine.KindUsage, "destination %q: %v", d, err)
		}
	}

	// Phase 1: content by digest, once per repository.
	done := map[string]bool{}
	mountFrom := map[string]name.Reference{}
	for _, tag := range tags {
		repo := tag.Context()
		if done[repo.String()] {
			continue
		}
		opts, err := c.Options(remote.WithContext(ctx), repo.RegistryStr(), engine.Push)
		if err != nil {
			return nil, err
		}
		opts = append(opts, remote.WithJobs(o.Jobs))
		byDigest := repo.Digest(digest.String())
		// Blobs are mounted from a repository of this registry pushed
		// earlier, else from the repository they came from (a base
		// image's), when the registry serves that too.
		src := mountable(art, mountFrom[repo.RegistryStr()])
		o.Log.Info("pushing", "repository", repo.String(), "digest", digest.String())
		err = c.retry(ctx, "push to "+repo.String(), o.Log.Warn, func() error { return remote.Push(byDigest, src, opts...) })
		if err != nil {
			return nil, Classify(fmt.Errorf("pushing to %q: %w", repo.String(), err))
		}
		done[repo.String()] = true
		if _, ok := mountFrom[repo.RegistryStr()]; !ok {
			mountFrom[repo.RegistryStr()] = byDigest
		}
	}

	// Phase 2: tags.
	var out []Pushed
	for _, tag := range tags {
		opts, err := c.Options(remote.WithContext(ctx), tag.RegistryStr(), engine.Push)
		if err != nil {
			return out, err
		}
		p := Pushed{Tag: tag.String(), Digest: digest.String(), Ref: tag.Context().Name() + "@" + digest.String()}
		err = c.retry(ctx, "tag "+tag.String(), o.Log.Warn, func() error { return remote.Tag(tag, art, opts...) })
		if err != nil {
			if o.IgnoreImmutableTagErrors && IsImmutableTag(err) {
				o.Log.Warn("the registry keeps this tag immutable; leaving it as it is (--push-ignore-immutable-tag-errors)", "tag", tag.String(), "error", err)
				p.ImmutableSkipped = true
				out = append(out, p)
				continue
			}
			return out, Classify(fmt.Errorf("tagging %q: %w", tag.String(), err))
		}
		o.Log.Info("pushed", "image", p.Ref, "tag", tag.String())
		out = append(out, p)
	}
	return out, nil
}

// Known messages of registries that refuse to move an immutable tag.
var immutableTagMessages = []string{
	"The repository has enabled tag immutability",               // Artifact Registry
	"cannot be overwritten because the repository is immutable", // ECR
	"configured as Immutable",                                   // Harbor
	"cannot be overwritten because the tag is immutable",        // ACR
}

// IsImmutableTag reports whether err is a registry's refusal to move an
// immutable tag.
func IsImmutableTag(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	for _, m := range immutableTagMessages {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// CheckPushPermission checks, before a build, that the credentials may
// push to dest, as Kaniko does.
func (c *Client) CheckPushPermission(ctx context.Context, dest string) error {
	tag, err := c.Tag(dest, engine.Push)
	if err != nil {
		return engine.Errorf(engine.KindUsage, "destination %q: %v", dest, err)
	}
	t, err := c.Transport(tag.RegistryStr(), engine.Push)
	if err != nil {
		return err
	}
	if err := remote.CheckPushPermission(tag, c.keychain, t); err != nil {
		return Classify(fmt.Errorf("checking push permission for %q (skip with --skip-push-permission-check): %w", dest, err))
	}
	return ctx.Err()
}

// Sourced is a layer that knows the repository (registry/repository) it
// was pulled from, as a base image's layers do.
type Sourced interface {
	Source() string
}

// mountable makes every blob of art mountable from the repository of ref,
// so that pushing to a second repository of one registry copies nothing;
// with no ref, the layers that know their source are mountable from it.
func mountable(art Artifact, ref name.Reference) remote.Taggable {
	switch a := art.(type) {
	case v1.ImageIndex:
		return &mountIndex{imageIndex: a, ref: ref}
	case v1.Image:
		return &mountImage{Image: a, ref: ref}
	}
	return art
}

type mountImage struct {
	v1.Image
	ref name.Reference
}

func (m *mountImage) Layers() ([]v1.Layer, error) {
	ls, err := m.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = mountableLayer(l, m.ref)
	}
	return out, nil
}

func mountableLayer(l v1.Layer, ref name.Reference) v1.Layer {
	if ref != nil {
		return &remote.MountableLayer{Layer: l, Reference: ref}
	}
	s, ok := l.(Sourced)
	if !ok || s.Source() == "" {
		return l
	}
	d, err := l.Digest()
	if err != nil {
		return l
	}
	repo, err := name.NewRepository(s.Source())
	if err != nil {
		return l
	}
	return &remote.MountableLayer{Layer: l, Reference: repo.Digest(d.String())}
}

func (m *mountImage) ConfigLayer() (v1.Layer, error) {
	l, err := partial.ConfigLayer(m.Image)
	if err != nil || m.ref == nil {
		return l, err
	}
	return &remote.MountableLayer{Layer: l, Reference: m.ref}, nil
}

func (m *mountImage) Descriptor() (*v1.Descriptor, error) { return partial.Descriptor(m.Image) }

// imageIndex names the embedded index: embedded as v1.ImageIndex, the
// field would be called ImageIndex and hide the ImageIndex method, so
// mountIndex would not be a v1.ImageIndex and its children would not be
// pushed.
type imageIndex = v1.ImageIndex

type mountIndex struct {
	imageIndex
	ref name.Reference
}

func (m *mountIndex) Image(h v1.Hash) (v1.Image, error) {
	img, err := m.imageIndex.Image(h)
	if err != nil {
		return nil, err
	}
	return &mountImage{Image: img, ref: m.ref}, nil
}

func (m *mountIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	idx, err := m.imageIndex.ImageIndex(h)
	if err != nil {
		return nil, err
	}
	return &mountIndex{imageIndex: idx, ref: m.ref}, nil
}

func (m *mountIndex) Descriptor() (*v1.Descriptor, error) {
	return partial.Descriptor(m.imageIndex)
}

// NotPushed describes a destination that was not pushed (--no-push), for
// the digest files Kaniko writes anyway.
func NotPushed(dest string, digest v1.Hash) Pushed {
	p := Pushed{Tag: dest, Digest: digest.String(), Ref: dest + "@" + digest.String()}
	if t, err := name.NewTag(dest); err == nil {
		p.Tag = t.String()
		p.Ref = t.Context().Name() + "@" + digest.String()
	}
	return p
}
