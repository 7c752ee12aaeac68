package build

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
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rapidfort/kimia/attest"
	"github.com/rapidfort/kimia/attest/attach"
	"github.com/rapidfort/kimia/attest/provenance"
	"github.com/rapidfort/kimia/attest/sbom"
	"github.com/rapidfort/kimia/attest/sign"
	"github.com/rapidfort/kimia/buildctx"
	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/output"
	"github.com/rapidfort/kimia/registry"
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

// wantsIndex, wantsCosign and wantsReferrers say where attestations go.
func wantsIndex(s string) bool  { return s == engine.StorageIndex || s == engine.StorageBoth }
func wantsCosign(s string) bool { return s == engine.StorageCosign || s == engine.StorageBoth }

// prepareAttestations starts what the SBOM step needs once per process
// (syft's license scanner, seconds of CPU) so that it overlaps the
// engine's build instead of following it.
func prepareAttestations(req *engine.Request) {
	if req.Attest.SBOM {
		sbom.Prepare()
	}
}

// attestImage makes the SBOMs and provenance the request asks for and,
// for index storage, replaces img by the index the destinations will
// serve. It returns nil when nothing is attested or signed.
func attestImage(ctx context.Context, req *engine.Request, info engine.Info, res *engine.Result, src *buildctx.Prepared, img *output.Image, started time.Time) (*attestations, error) {
	a := req.Attest
	if !a.SBOM && !a.Provenance && !req.Sign.Enabled {
		return nil, nil
	}
	finished := time.Now()
	log := req.Log
	att := &attestations{storage: a.Storage, statements: map[v1.Hash][]attest.Statement{}}
	if att.storage == "" {
		att.storage = engine.StorageBoth
	}
	att.md.Storage = att.storage
	var err error
	if att.images, err = platformImages(*img); err != nil {
		return nil, engine.Wrap(engine.KindInternal, err)
	}
	if !a.SBOM && !a.Provenance {
		return att, att.setRoot(*img)
	}

	subjectName := imageName(req.Output.Destinations)
	var pred any
	if a.Provenance {
		pred = provenance.Predicate(provenanceParams(req, info, res, src, att.images, started, finished))
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
				docs[i], errs[i] = sbom.Generate(ctx, pi.image, sbom.Options{
					Format:      a.SBOMFormat,
					Name:        subjectName,
					ToolName:    "kimia",
					ToolVersion: KimiaVersion,
					Created:     created,
				})
				if errs[i] != nil {
					errs[i] = fmt.Errorf("generating the SBOM of the %s image: %w", pi.platform, errs[i])
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, canceled(ctx, engine.Wrap(engine.KindInternal, err))
		}
		log.Info("generated SBOMs", "images", len(att.images), "seconds", fmt.Sprintf("%.2f", time.Since(sbomStart).Seconds()))
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
	if (req.Output.NoPush || len(req.Output.Destinations) == 0) && !wantsIndex(att.storage) {
		log.Warn("attestations are only written to files: --attestation-storage=" + att.storage + " stores them in a registry, and nothing is pushed")
	}
	if att.storage == engine.StorageBoth && !req.Sign.Enabled {
		log.Info("attestations are stored in the image index only: cosign's .att tag holds signed attestations (add --sign --cosign-key)")
	}
	return att, att.setRoot(*img)
}

func (att *attestations) add(pi platformImage, st attest.Statement) {
	att.statements[pi.desc.Digest] = append(att.statements[pi.desc.Digest], st)
}

func (att *attestations) setRoot(img output.Image) error {
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

// publish signs and attaches, per destination repository, after the push:
// signatures of the root and of every platform image (cosign's .sig, and
// referrers with --attestation-storage=referrers); signed attestations in
// cosign's .att; attestations as referrers. A failure here is a signing
// failure; the push itself stays done (and reported).
func (att *attestations) publish(ctx context.Context, reg *registry.Client, req *engine.Request, signer *sign.Signer, pushed []registry.Pushed) error {
	if att == nil || len(pushed) == 0 {
		return nil
	}
	log := req.Log
	storeCosign := wantsCosign(att.storage) && signer != nil && len(att.statements) > 0
	storeReferrers := att.storage == engine.StorageReferrers && len(att.statements) > 0
	if signer == nil && !storeReferrers {
		return nil
	}
	annotations := map[string]string{}
	for _, kv := range req.Sign.Annotations {
		annotations[kv.Key] = kv.Value
	}

	// Sign each statement once: the envelopes are the same for every
	// repository. The root index gets the platforms' statements with the
	// index added to their subjects, so that cosign verify-attestation
	// on the tag (which resolves to the index) finds them too.
	envelopes := map[v1.Hash][]attach.Envelope{}
	statements := map[v1.Hash][]attest.Statement{}
	for h, sts := range att.statements {
		statements[h] = sts
	}
	if att.root.MediaType.IsIndex() {
		name := imageName(req.Output.Destinations)
		for _, pi := range att.images {
			for _, st := range att.statements[pi.desc.Digest] {
				js, err := attest.Resubject(st.JSON, []attest.Subject{
					{Name: name, Digest: att.root.Digest},
					{Name: purl(name, pi.platform), Digest: pi.desc.Digest},
				})
				if err != nil {
					return engine.Wrap(engine.KindInternal, err)
				}
				statements[att.root.Digest] = append(statements[att.root.Digest], attest.Statement{PredicateType: st.PredicateType, Platform: st.Platform, JSON: js})
			}
		}
	}
	if signer != nil && (storeCosign || storeReferrers) {
		for h, sts := range statements {
			for _, st := range sts {
				env, err := signer.SignStatement(ctx, st.JSON)
				if err != nil {
					return engine.Wrap(engine.KindSigning, fmt.Errorf("signing the %s attestation of %s: %w", attest.ShortType(st.PredicateType), h, err))
				}
				envelopes[h] = append(envelopes[h], attach.Envelope{PredicateType: st.PredicateType, JSON: env})
			}
		}
	}

	targets := append([]v1.Descriptor{att.root}, descriptors(att.images)...)
	if len(att.images) == 1 && att.images[0].desc.Digest == att.root.Digest {
		targets = targets[:1]
	}
	seen := map[string]bool{}
	for _, p := range pushed {
		tag, err := reg.Tag(p.Tag, engine.Push)
		if err != nil {
			return engine.Errorf(engine.KindUsage, "destination %q: %v", p.Tag, err)
		}
		repo := tag.Context()
		if seen[repo.String()] {
			continue
		}
		seen[repo.String()] = true
		opts, err := reg.Options(remote.WithContext(ctx), repo.RegistryStr(), engine.Push)
		if err != nil {
			return err
		}
		fail := func(what string, err error) error {
			return canceled(ctx, engine.Wrap(engine.KindSigning, fmt.Errorf("%s in %q: %w (the image was pushed: %s)", what, repo.Name(), err, p.Ref)))
		}
		// The targets of one repository are independent: sign and store
		// them at once.
		one := func(t v1.Descriptor) (SignatureMetadata, error) {
			sm := SignatureMetadata{Repository: repo.Name(), Digest: t.Digest.String()}
			if signer != nil {
				payload, b64, err := signer.SignImage(ctx, repo.Name(), t.Digest, annotations)
				if err != nil {
					return sm, fail("signing "+t.Digest.String(), err)
				}
				sig := attach.Signature{Payload: payload, Base64: b64, Annotations: signer.Annotations()}
				st, err := attach.AppendSignatures(repo, t.Digest, []attach.Signature{sig}, opts...)
				if err != nil {
					return sm, fail("storing the signature of "+t.Digest.String(), err)
				}
				sm.Tag = st.String()
				log.Info("signed", "image", repo.Name()+"@"+t.Digest.String(), "tag", st.TagStr())
				if att.storage == engine.StorageReferrers {
					d, err := attach.WriteSignatureReferrer(repo, t, sig, opts...)
					if err != nil {
						return sm, fail("storing the signature of "+t.Digest.String()+" as a referrer", err)
					}
					sm.Referrers = append(sm.Referrers, d.String())
				}
			}
			if storeCosign && len(envelopes[t.Digest]) > 0 {
				at, err := attach.AppendAttestations(repo, t.Digest, envelopes[t.Digest], opts...)
				if err != nil {
					return sm, fail("storing the attestations of "+t.Digest.String(), err)
				}
				sm.Attestations = at.String()
			}
			if storeReferrers && len(statements[t.Digest]) > 0 {
				var unsigned []attest.Statement
				if signer == nil {
					unsigned = statements[t.Digest]
				}
				d, err := attach.WriteAttestationReferrer(repo, t, envelopes[t.Digest], unsigned, opts...)
				if err != nil {
					return sm, fail("storing the attestations of "+t.Digest.String()+" as a referrer", err)
				}
				sm.Referrers = append(sm.Referrers, d.String())
			}
			return sm, nil
		}
		sms := make([]SignatureMetadata, len(targets))
		errs := make([]error, len(targets))
		var wg sync.WaitGroup
		for i, t := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sms[i], errs[i] = one(t)
			}()
		}
		wg.Wait()
		// Record what was done; report the first failure (the others
		// usually share its cause).
		var first error
		for i := range targets {
			if errs[i] != nil {
				if first == nil {
					first = errs[i]
				}
				continue
			}
			att.signatures = append(att.signatures, sms[i])
		}
		if first != nil {
			return first
		}
	}
	return nil
}

// signerFor loads the signing key when the build will sign what it
// pushes. Run calls it before building: a wrong key or password fails in
// a second, not after a whole build and push.
func signerFor(req *engine.Request) (*sign.Signer, error) {
	if !req.Sign.Enabled || req.Output.NoPush {
		return nil, nil
	}
	return loadSigner(req.Sign)
}

// loadSigner reads the cosign key; the password is read from its
// environment variable now, used once and not kept.
func loadSigner(s engine.Sign) (*sign.Signer, error) {
	var pw []byte
	envSet := false
	if s.PasswordEnv != "" {
		var v string
		v, envSet = os.LookupEnv(s.PasswordEnv)
		pw = []byte(v)
	}
	signer, err := sign.Load(s.KeyPath, pw)
	clear(pw)
	if err == nil {
		return signer, nil
	}
	var ke *sign.KeyError
	if errors.As(err, &ke) && ke.WrongPassword {
		hint := fmt.Sprintf("check the password in $%s (--cosign-password-env)", s.PasswordEnv)
		if !envSet {
			hint = fmt.Sprintf("the key is encrypted: put its password in $%s, or name another variable with --cosign-password-env", orDefault(s.PasswordEnv, "COSIGN_PASSWORD"))
		}
		return nil, engine.Errorf(engine.KindSigning, "--cosign-key %s: wrong password: %s", s.KeyPath, hint)
	}
	return nil, engine.Errorf(engine.KindSigning, "--cosign-key: %v", err)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func descriptors(ps []platformImage) []v1.Descriptor {
	out := make([]v1.Descriptor, len(ps))
	for i, p := range ps {
		out[i] = p.desc
	}
	return out
}

// platformImages lists the platform images of what the engine built.
func platformImages(img output.Image) ([]platformImage, error) {
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

func provenanceParams(req *engine.Request, info engine.Info, res *engine.Result, src *buildctx.Prepared, images []platformImage, started, finished time.Time) provenance.Params {
	kv := func(in []engine.KeyValue) []provenance.KeyValue {
		out := make([]provenance.KeyValue, len(in))
		for i, x := range in {
			out[i] = provenance.KeyValue{Key: x.Key, Value: x.Value}
		}
		return out
	}
	p := provenance.Params{
		Mode:            req.Attest.ProvenanceMode,
		BuilderID:       req.Attest.BuilderID,
		InvocationID:    provenance.InvocationFromEnv(os.Getenv),
		Source:          provenance.Source{Context: req.Source.Context, SubPath: req.Source.SubPath},
		Dockerfile:      dockerfileParam(req, src),
		Target:          req.Target,
		Destinations:    req.Output.Destinations,
		BuildArgs:       kv(req.BuildArgs),
		Labels:          kv(req.Labels),
		Annotations:     kv(req.Annotations),
		Reproducible:    req.Reproducible,
		SourceDateEpoch: req.SourceDateEpoch,
		Engine:          info.Name,
		EngineVersion:   info.Version,
		KimiaVersion:    KimiaVersion,
		Started:         started,
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
func dockerfileParam(req *engine.Request, src *buildctx.Prepared) string {
	if src != nil && src.Dockerfile != "" && src.Root != "" {
		if rel, err := filepath.Rel(src.Root, src.Dockerfile); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.ToSlash(rel)
		}
	}
	if req.Source.Dockerfile != "" {
		return req.Source.Dockerfile
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
