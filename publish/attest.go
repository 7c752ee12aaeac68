package publish

// The supply-chain step of a run: after the engine's layout is read, an
// SBOM and a provenance statement per platform image (attest/sbom,
// attest/provenance), added to the index when they are stored there
// (attest/attach); after the push, cosign-style signatures and signed
// attestations per destination (attest/sign, attest/attach). Both
// binaries run this same code on the same OCI layout, so they attest and
// sign alike.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/rapidfort/kimia/attest"
	"github.com/rapidfort/kimia/attest/attach"
	"github.com/rapidfort/kimia/attest/provenance"
	"github.com/rapidfort/kimia/attest/sbom"
	"github.com/rapidfort/kimia/buildctx"
	"github.com/rapidfort/kimia/engine"
)

// KimiaVersion is the binary's version, recorded in SBOMs and
// provenance; the CLI sets it.
var KimiaVersion = "dev"

// AttestationMetadata is the "attestations" entry of --metadata-file.
type AttestationMetadata struct {
	// Storage is where the attestations went (--attestation-storage).
	Storage    string            `json:"storage"`
	SBOM       []AttestationInfo `json:"sbom,omitempty"`
	Provenance []AttestationInfo `json:"provenance,omitempty"`
	// Manifests are the attestation manifests in the pushed index.
	Manifests []AttestationManifest `json:"manifests,omitempty"`
}

// AttestationInfo is one SBOM or provenance statement.
type AttestationInfo struct {
	Platform      string `json:"platform"`
	Subject       string `json:"subject"`
	PredicateType string `json:"predicateType"`
	// Digest is the in-toto statement's digest (the layer's digest in
	// an attestation manifest).
	Digest string `json:"digest"`
	// File and FileDigest are the --sbom-file/--provenance-file written
	// for this platform and its sha256.
	File       string `json:"file,omitempty"`
	FileDigest string `json:"fileDigest,omitempty"`
}

// AttestationManifest is an attestation manifest in the index.
type AttestationManifest struct {
	Digest string `json:"digest"`
	// Subject is the image it describes.
	Subject string `json:"subject"`
}

// SignatureMetadata is one signed manifest in one repository.
type SignatureMetadata struct {
	Repository string `json:"repository"`
	// Digest is the signed manifest.
	Digest string `json:"digest"`
	// Tag is cosign's sha256-<hex>.sig tag that holds the signature.
	Tag string `json:"tag"`
	// Attestations is the sha256-<hex>.att tag, when signed
	// attestations were stored there.
	Attestations string `json:"attestations,omitempty"`
	// Referrers are the OCI 1.1 referrer manifests written for Digest.
	Referrers []string `json:"referrers,omitempty"`
}

// attestations is what the supply-chain step made for one run.
type attestations struct {
	storage string
	// images are the platform images, in index order.
	images []platformImage
	// root is what the destinations serve (an index or an image).
	root v1.Descriptor
	// statements per platform image digest.
	statements map[v1.Hash][]attest.Statement
	md         AttestationMetadata
	signatures []SignatureMetadata
}

type platformImage struct {
	platform string
	desc     v1.Descriptor
	image    v1.Image
}

// StartSBOM starts the SBOM helper when the build asks for SBOMs, before
// the build, so that syft's set-up (seconds of CPU) overlaps it and a
// missing helper fails at once. The caller closes it; nil means no SBOM.
func StartSBOM(o Options) (*sbom.Helper, error) {
	if !o.Attest.SBOM {
		return nil, nil
	}
	path, err := sbom.FindHelper()
	if err != nil {
		return nil, engine.Wrap(engine.KindEnvironment, err)
	}
	h, err := sbom.Start(path)
	if err != nil {
		return nil, engine.Wrap(engine.KindEnvironment, err)
	}
	return h, nil
}

// attestImage makes the SBOMs and provenance the request asks for and,
// for index storage, replaces img by the index the destinations will
// serve. It returns nil when nothing is attested or signed.
func attestImage(ctx context.Context, b Build, o Options, t Tools, img *Image, log *slog.Logger) (*attestations, error) {
	a := o.Attest
	if !a.SBOM && !a.Provenance && !o.Sign.Enabled {
		return nil, nil
	}
	finished := time.Now()
	req := b.Request
	att := &attestations{storage: a.Storage, statements: map[v1.Hash][]attest.Statement{}}
	if att.storage == "" {
		att.storage = StorageBoth
	}
	att.md.Storage = att.storage
	var err error
	if att.images, err = platformImages(*img); err != nil {
		return nil, engine.Wrap(engine.KindInternal, err)
	}
	if !a.SBOM && !a.Provenance {
		return att, att.setRoot(*img)
	}

	subjectName := imageName(o.Destinations)
	var pred any
	if a.Provenance {
		pred = provenance.Predicate(provenanceParams(b, o, att.images, finished))
	}
	created := time.Time{}
	if req.SourceDateEpoch != nil {
		created = *req.SourceDateEpoch
	} else if req.Reproducible {
		created = time.Unix(0, 0)
	}

	docs := make([]*sbom.Document, len(att.images))
	if a.SBOM {
		sbomStart := time.Now()
		sbomCache := ""
		if req.Cache.Enabled && req.Cache.Dir != "" {
			sbomCache = filepath.Join(req.Cache.Dir, "sbom")
		}
		// Two images at a time: syft keeps a layer index in memory and
		// the machines kimia runs on are small.
		errs := make([]error, len(att.images))
		sem := make(chan struct{}, 2)
		var wg sync.WaitGroup
		for i, pi := range att.images {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				docs[i], errs[i] = t.SBOM.Generate(ctx, pi.image, sbom.Options{
					Format:      a.SBOMFormat,
					Name:        subjectName,
					ToolName:    "kimia",
					ToolVersion: KimiaVersion,
					Created:     created,
					CacheDir:    sbomCache,
				})
				if errs[i] != nil {
					errs[i] = fmt.Errorf("generating the SBOM of the %s image: %w", pi.platform, errs[i])
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, engine.Canceled(ctx, engine.Wrap(engine.KindInternal, err))
		}
		cached := 0
		for _, d := range docs {
			if d != nil && d.Cached {
				cached++
			}
		}
		log.Info("generated SBOMs", "images", len(att.images), "cached", cached, "seconds", fmt.Sprintf("%.2f", time.Since(sbomStart).Seconds()))
	}

	for i, pi := range att.images {
		subj := []attest.Subject{{Name: purl(subjectName, pi.platform), Digest: pi.desc.Digest}}
		if d := docs[i]; d != nil {
			st, err := attest.NewStatement(d.PredicateType, subj, json.RawMessage(d.JSON))
			if err != nil {
				return nil, engine.Wrap(engine.KindInternal, err)
			}
			att.add(pi, attest.Statement{PredicateType: d.PredicateType, Platform: pi.platform, JSON: st})
			info := statementInfo(pi, d.PredicateType, st)
			if info.File, info.FileDigest, err = writeAttestationFile(a.SBOMFile, pi.platform, len(att.images), d.JSON); err != nil {
				return nil, engine.Wrap(engine.KindEnvironment, fmt.Errorf("--sbom-file: %w", err))
			}
			att.md.SBOM = append(att.md.SBOM, info)
		}
		if pred != nil {
			st, err := attest.NewStatement(attest.PredicateProvenance, subj, pred)
			if err != nil {
				return nil, engine.Wrap(engine.KindInternal, err)
			}
			att.add(pi, attest.Statement{PredicateType: attest.PredicateProvenance, Platform: pi.platform, JSON: st})
			info := statementInfo(pi, attest.PredicateProvenance, st)
			if info.File, info.FileDigest, err = writeAttestationFile(a.ProvenanceFile, pi.platform, len(att.images), st); err != nil {
				return nil, engine.Wrap(engine.KindEnvironment, fmt.Errorf("--provenance-file: %w", err))
			}
			att.md.Provenance = append(att.md.Provenance, info)
		}
	}

	if wantsIndex(att.storage) {
		idx, err := attach.Index(img.Index, img.Image, att.statements)
		if err != nil {
			return nil, engine.Wrap(engine.KindInternal, fmt.Errorf("adding attestations to the index: %w", err))
		}
		// A single image stays in Image (for --tar-path and metadata);
		// the destinations serve the index that wraps it.
		img.Index = idx
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, engine.Wrap(engine.KindInternal, err)
		}
		for _, d := range im.Manifests {
			if attach.IsAttestationManifest(d) {
				att.md.Manifests = append(att.md.Manifests, AttestationManifest{Digest: d.Digest.String(), Subject: d.Annotations[attest.AnnotationReferenceDigest]})
			}
		}
	}
	if (o.NoPush || len(o.Destinations) == 0) && !wantsIndex(att.storage) {
		log.Warn("attestations are only written to files: --attestation-storage=" + att.storage + " stores them in a registry, and nothing is pushed")
	}
	if att.storage == StorageBoth && !o.Sign.Enabled {
		log.Info("attestations are stored in the image index only: cosign's .att tag holds signed attestations (add --sign --cosign-key)")
	}
	return att, att.setRoot(*img)
}

func (att *attestations) add(pi platformImage, st attest.Statement) {
	att.statements[pi.desc.Digest] = append(att.statements[pi.desc.Digest], st)
}

func (att *attestations) setRoot(img Image) error {
	var d *v1.Descriptor
	var err error
	if img.Index != nil {
		d, err = partial.Descriptor(img.Index)
	} else {
		d, err = partial.Descriptor(img.Image)
	}
	if err != nil {
		return engine.Wrap(engine.KindInternal, err)
	}
	att.root = *d
	return nil
}

func descriptors(ps []platformImage) []v1.Descriptor {
	out := make([]v1.Descriptor, len(ps))
	for i, p := range ps {
		out[i] = p.desc
	}
	return out
}

// platformImages lists the platform images of what the engine built.
func platformImages(img Image) ([]platformImage, error) {
	if img.Image != nil {
		d, err := partial.Descriptor(img.Image)
		if err != nil {
			return nil, err
		}
		cf, err := img.Image.ConfigFile()
		if err != nil {
			return nil, err
		}
		p := engine.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		return []platformImage{{platform: p.String(), desc: *d, image: img.Image}}, nil
	}
	im, err := img.Index.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []platformImage
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() || attach.IsAttestationManifest(d) || (d.Platform != nil && d.Platform.OS == "unknown") {
			continue
		}
		child, err := img.Index.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		p := ""
		if d.Platform != nil {
			p = d.Platform.String()
		} else {
			cf, err := child.ConfigFile()
			if err != nil {
				return nil, err
			}
			p = engine.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}.String()
		}
		out = append(out, platformImage{platform: p, desc: d, image: child})
	}
	return out, nil
}

func provenanceParams(b Build, o Options, images []platformImage, finished time.Time) provenance.Params {
	req, info, res, src := b.Request, b.Engine, b.Result, b.Context
	kv := func(in []engine.KeyValue) []provenance.KeyValue {
		out := make([]provenance.KeyValue, len(in))
		for i, x := range in {
			out[i] = provenance.KeyValue{Key: x.Key, Value: x.Value}
		}
		return out
	}
	p := provenance.Params{
		Mode:            o.Attest.ProvenanceMode,
		BuilderID:       o.Attest.BuilderID,
		InvocationID:    provenance.InvocationFromEnv(os.Getenv),
		Source:          provenance.Source{Context: b.Source.Context, SubPath: b.Source.SubPath},
		Dockerfile:      dockerfileParam(b.Source, src),
		Target:          req.Target,
		Destinations:    o.Destinations,
		BuildArgs:       kv(req.BuildArgs),
		Labels:          kv(req.Labels),
		Annotations:     kv(req.Annotations),
		Reproducible:    req.Reproducible,
		SourceDateEpoch: req.SourceDateEpoch,
		Engine:          info.Name,
		EngineVersion:   info.Version,
		KimiaVersion:    KimiaVersion,
		Started:         b.Started,
		Finished:        finished,
	}
	if p.Source.Context == "" {
		p.Source.Context = "."
	}
	if info.Daemon != nil {
		p.Daemon = info.Daemon.Name + " " + info.Daemon.Version
	}
	if res != nil {
		p.StorageDriver, p.Rootless = res.StorageDriver, res.Rootless
		for _, b := range res.BaseImages {
			p.BaseImages = append(p.BaseImages, provenance.BaseImage{Ref: b.Ref, Digest: b.Digest})
		}
	}
	if src != nil && src.Git != nil {
		g := src.Git
		p.Source.Git = &provenance.Git{URL: g.URL, Ref: g.Ref, Commit: g.Commit, SubDir: g.SubDir}
	}
	for _, s := range req.Secrets {
		p.SecretIDs = append(p.SecretIDs, s.ID)
	}
	for _, s := range req.SSH {
		p.SSHIDs = append(p.SSHIDs, s.ID)
	}
	for _, pl := range req.Platforms {
		p.Platforms = append(p.Platforms, pl.String())
	}
	if len(p.Platforms) == 0 {
		for _, pi := range images {
			p.Platforms = append(p.Platforms, pi.platform)
		}
	}
	return p
}

// dockerfileParam is the Dockerfile as the user named it, relative to the
// context when it lies inside (a clone's temporary path means nothing
// later).
func dockerfileParam(s buildctx.Source, src *buildctx.Prepared) string {
	if src != nil && src.Dockerfile != "" && src.Root != "" {
		if rel, err := filepath.Rel(src.Root, src.Dockerfile); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.ToSlash(rel)
		}
	}
	if s.Dockerfile != "" {
		return s.Dockerfile
	}
	return "Dockerfile"
}

// imageName is the repository statements name as their subject: the
// first destination's.
func imageName(dests []string) string {
	for _, d := range dests {
		if t, err := name.NewTag(d, name.WeakValidation); err == nil {
			return t.Context().Name()
		}
	}
	return "kimia/image"
}

// purl is the package URL buildx gives an attestation subject:
// pkg:docker/NAME?platform=OS%2FARCH.
func purl(repo, platform string) string {
	return "pkg:docker/" + strings.ReplaceAll(repo, ":", "%3A") + "?platform=" + url.QueryEscape(platform)
}

func statementInfo(pi platformImage, predicateType string, st []byte) AttestationInfo {
	sum := sha256.Sum256(st)
	return AttestationInfo{
		Platform:      pi.platform,
		Subject:       pi.desc.Digest.String(),
		PredicateType: predicateType,
		Digest:        "sha256:" + hex.EncodeToString(sum[:]),
	}
}

// writeAttestationFile writes data to path; with several platforms, one
// file each, named path with the platform before the extension
// (sbom.json -> sbom.linux-amd64.json).
func writeAttestationFile(path, platform string, n int, data []byte) (string, string, error) {
	if path == "" {
		return "", "", nil
	}
	if n > 1 {
		ext := filepath.Ext(path)
		path = strings.TrimSuffix(path, ext) + "." + strings.ReplaceAll(platform, "/", "-") + ext
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return "", "", err
	}
	sum := sha256.Sum256(append(data, '\n'))
	return path, "sha256:" + hex.EncodeToString(sum[:]), nil
}

// metadata returns what goes into --metadata-file.
func (att *attestations) metadata() (*AttestationMetadata, []SignatureMetadata) {
	if att == nil {
		return nil, nil
	}
	var md *AttestationMetadata
	if len(att.md.SBOM)+len(att.md.Provenance) > 0 {
		m := att.md
		md = &m
	}
	return md, att.signatures
}
