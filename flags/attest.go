package flags

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/rapidfort/kimia/attest/sbom"
	"github.com/rapidfort/kimia/build"
	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/publish"
)

// attest resolves --attestation, --attest and the signing flags.
func (r *resolver) attest(o *build.Options) error {
	a := &o.Publish.Attest
	a.SBOMFormat = "spdx-json"
	mode := strings.ToLower(r.c.String("attestation"))
	switch mode {
	case publish.AttestationOff:
	case publish.AttestationMin:
		a.Provenance, a.ProvenanceMode = true, publish.AttestationMin
	case publish.AttestationMax:
		a.SBOM = true
		a.Provenance, a.ProvenanceMode = true, publish.AttestationMax
	default:
		return usagef("attestation", "%q is not off, min or max", mode)
	}
	attests := r.list("attest")
	if mode == publish.AttestationOff && r.set("attestation") && len(attests) > 0 {
		return engine.Errorf(engine.KindUsage, "--attestation=off conflicts with --attest %s", attests[0])
	}
	seen := map[string]bool{}
	for _, s := range attests {
		f, err := parseFields("attest", s)
		if err != nil {
			return err
		}
		typ := f["type"]
		if seen[typ] {
			return usagef("attest", "type=%s is given twice", typ)
		}
		seen[typ] = true
		switch typ {
		case "sbom":
			a.SBOM = true
			for k, v := range f {
				switch k {
				case "type":
				case "format":
					switch v {
					case "spdx-json", "spdx", "spdxjson":
						a.SBOMFormat = "spdx-json"
					case "cyclonedx-json", "cyclonedx":
						a.SBOMFormat = "cyclonedx-json"
					default:
						return usagef("attest", "%q: format must be spdx-json or cyclonedx-json", s)
					}
				default:
					return usagef("attest", "%q: unknown field %q for type=sbom (want format)", s, k)
				}
			}
		case "provenance":
			pmode := publish.AttestationMax
			if v, ok := f["mode"]; ok {
				if v != publish.AttestationMin && v != publish.AttestationMax {
					return usagef("attest", "%q: mode must be min or max", s)
				}
				pmode = v
			}
			if a.Provenance && a.ProvenanceMode != pmode {
				return engine.Errorf(engine.KindUsage, "--attestation=%s conflicts with --attest %s: they ask for different provenance modes", mode, s)
			}
			a.Provenance, a.ProvenanceMode = true, pmode
			for k, v := range f {
				switch k {
				case "type", "mode":
				case "builder-id":
					if v == "" || !strings.Contains(v, ":") {
						return usagef("attest", "%q: builder-id must be a URI", s)
					}
					a.BuilderID = v
				default:
					return usagef("attest", "%q: unknown field %q for type=provenance (want mode, builder-id)", s, k)
				}
			}
		case "":
			return usagef("attest", "%q: missing type=sbom or type=provenance", s)
		default:
			return usagef("attest", "%q: type must be sbom or provenance", s)
		}
	}
	if a.SBOM {
		if _, err := sbom.FindHelper(); err != nil {
			return engine.Errorf(engine.KindEnvironment, "an SBOM is asked for (--attestation=max or --attest type=sbom), but %v; or use --attestation=min", err)
		}
	}
	switch st := strings.ToLower(r.c.String("attestation-storage")); st {
	case publish.StorageIndex, publish.StorageCosign, publish.StorageBoth, publish.StorageReferrers:
		a.Storage = st
	default:
		return usagef("attestation-storage", "%q is not index, cosign, both or referrers", st)
	}
	for _, p := range []struct {
		flag string
		dst  *string
		ok   bool
		what string
	}{
		{"sbom-file", &a.SBOMFile, a.SBOM, "an SBOM (--attestation=max or --attest type=sbom)"},
		{"provenance-file", &a.ProvenanceFile, a.Provenance, "provenance (--attestation=min|max or --attest type=provenance)"},
	} {
		v := r.c.String(p.flag)
		if v == "" {
			continue
		}
		if !p.ok {
			return usagef(p.flag, "nothing to write: ask for %s", p.what)
		}
		abs, err := filepath.Abs(v)
		if err != nil {
			return usagef(p.flag, "%q: %v", v, err)
		}
		*p.dst = abs
	}

	s := &o.Publish.Sign
	s.Enabled = r.c.Bool("sign")
	s.KeyPath = r.c.String("cosign-key")
	s.PasswordEnv = r.c.String("cosign-password-env")
	var err error
	if s.Annotations, err = r.kvs("sign-annotations"); err != nil {
		return err
	}
	if !s.Enabled {
		// cosign's .att tag holds signed attestations only.
		if a.Storage == publish.StorageCosign && (a.SBOM || a.Provenance) {
			return engine.Errorf(engine.KindUsage, "--attestation-storage=cosign stores signed attestations: add --sign and --cosign-key, or use --attestation-storage=index, both or referrers")
		}
		if s.KeyPath != "" {
			return engine.Errorf(engine.KindUsage, "--cosign-key is given without --sign; add --sign to sign the image")
		}
		if len(s.Annotations) > 0 {
			return engine.Errorf(engine.KindUsage, "--sign-annotations is given without --sign")
		}
		return nil
	}
	if s.KeyPath == "" {
		return engine.Errorf(engine.KindUsage, "--sign needs --cosign-key: keyless signing needs the network and is not supported")
	}
	if _, err := os.Stat(s.KeyPath); err != nil {
		return usagef("cosign-key", "%v", unwrapPathError(err))
	}
	if r.c.Bool("no-push") || len(o.Publish.Destinations) == 0 {
		return engine.Errorf(engine.KindUsage, "--sign with nothing to sign: signatures are stored beside a pushed image; give a --destination and drop --no-push")
	}
	return nil
}
