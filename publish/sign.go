package publish

// After the push: cosign-style signatures and signed attestations per
// destination repository (attest/sign, attest/attach), and OCI 1.1
// referrers with --attestation-storage=referrers.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rapidfort/kimia/attest"
	"github.com/rapidfort/kimia/attest/attach"
	"github.com/rapidfort/kimia/attest/sign"
	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/registry"
)

// publish signs and attaches, per destination repository, after the push:
// signatures of the root and of every platform image (cosign's .sig, and
// referrers with --attestation-storage=referrers); signed attestations in
// cosign's .att; attestations as referrers. A failure here is a signing
// failure; the push itself stays done (and reported).
func (att *attestations) publish(ctx context.Context, reg *registry.Client, o Options, signer *sign.Signer, pushed []registry.Pushed, log *slog.Logger) error {
	if att == nil || len(pushed) == 0 {
		return nil
	}
	storeCosign := wantsCosign(att.storage) && signer != nil && len(att.statements) > 0
	storeReferrers := att.storage == StorageReferrers && len(att.statements) > 0
	if signer == nil && !storeReferrers {
		return nil
	}
	annotations := map[string]string{}
	for _, kv := range o.Sign.Annotations {
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
		name := imageName(o.Destinations)
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
			return engine.Canceled(ctx, engine.Wrap(engine.KindSigning, fmt.Errorf("%s in %q: %w (the image was pushed: %s)", what, repo.Name(), err, p.Ref)))
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
				if att.storage == StorageReferrers {
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

// LoadSigner loads the signing key when the build will sign what it
// pushes, and returns nil otherwise. build.Run calls it before building:
// a wrong key or password fails in a second, not after a whole build and
// push. The password is read from its environment variable now, used
// once and not kept.
func LoadSigner(o Options) (*sign.Signer, error) {
	if !o.Sign.Enabled || o.NoPush {
		return nil, nil
	}
	s := o.Sign
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
