// Package provenance describes how kimia built an image as a SLSA
// provenance v1 predicate, for an in-toto Statement v1.
//
// The predicate's buildType is BuildType; the schema of its parameters is
// documented in docs/attestation-signing.md. Only references to secrets
// (their ids) are recorded, never their values; build-arg values only in
// max mode.
package provenance

import (
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/common"
	slsa1 "github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/v1"
)

// BuildType is the URI of kimia's build type: a Dockerfile build.
const BuildType = "https://github.com/rapidfort/kimia/buildtypes/dockerfile/v1"

// DefaultBuilderID identifies kimia as the builder when the user does not
// name one (--attest type=provenance,builder-id=URI).
const DefaultBuilderID = "https://github.com/rapidfort/kimia"

// Modes.
const (
	ModeMin = "min"
	ModeMax = "max"
)

// Params is what a build's provenance records.
type Params struct {
	// Mode is ModeMin (build-arg names only) or ModeMax (names and
	// values).
	Mode string
	// BuilderID overrides DefaultBuilderID.
	BuilderID string
	// InvocationID identifies this run; see InvocationFromEnv.
	InvocationID string

	Source       Source
	Dockerfile   string
	Target       string
	Platforms    []string
	Destinations []string
	BuildArgs    []KeyValue
	Labels       []KeyValue
	Annotations  []KeyValue
	// SecretIDs and SSHIDs name what RUN --mount may use; values are
	// never recorded.
	SecretIDs []string
	SSHIDs    []string
	// Reproducible and SourceDateEpoch are the user's reproducibility
	// settings.
	Reproducible    bool
	SourceDateEpoch *time.Time

	// Engine, EngineVersion, Daemon (e.g. buildkitd v0.34.2),
	// StorageDriver, Rootless and KimiaVersion describe the builder's
	// internals.
	Engine        string
	EngineVersion string
	Daemon        string
	StorageDriver string
	Rootless      bool
	KimiaVersion  string

	// BaseImages are the images the build pulled, by digest.
	BaseImages []BaseImage

	Started  time.Time
	Finished time.Time
}

// KeyValue is a build argument, label or annotation.
type KeyValue struct {
	Key   string
	Value string
}

// Source is the build context.
type Source struct {
	// Context is the context as the user gave it (credentials removed).
	Context string
	// SubPath is --context-sub-path.
	SubPath string
	// Git is set for a git context.
	Git *Git
}

// Git is a git context resolved to a commit.
type Git struct {
	URL    string
	Ref    string
	Commit string
	SubDir string
}

// BaseImage is a pulled image by reference and digest.
type BaseImage struct {
	Ref    string
	Digest string
}

// ExternalParameters are the parameters the user controlled. Their JSON
// form is the documented schema of BuildType.
type ExternalParameters struct {
	Context         ContextParam `json:"context"`
	Dockerfile      string       `json:"dockerfile"`
	Target          string       `json:"target,omitempty"`
	Platforms       []string     `json:"platforms"`
	Destinations    []string     `json:"destinations"`
	BuildArgs       []Arg        `json:"buildArgs,omitempty"`
	Labels          []Arg        `json:"labels,omitempty"`
	Annotations     []Arg        `json:"annotations,omitempty"`
	Secrets         []IDParam    `json:"secrets,omitempty"`
	SSH             []IDParam    `json:"ssh,omitempty"`
	Reproducible    bool         `json:"reproducible"`
	SourceDateEpoch *int64       `json:"sourceDateEpoch,omitempty"`
}

// ContextParam is the build context parameter.
type ContextParam struct {
	URI     string    `json:"uri"`
	SubPath string    `json:"subPath,omitempty"`
	Git     *GitParam `json:"git,omitempty"`
}

// GitParam is a git context with its resolved commit.
type GitParam struct {
	URL    string `json:"url"`
	Ref    string `json:"ref,omitempty"`
	Commit string `json:"commit"`
	SubDir string `json:"subdir,omitempty"`
}

// Arg is a named value; Value is left out for build arguments in min
// mode.
type Arg struct {
	Name  string  `json:"name"`
	Value *string `json:"value,omitempty"`
}

// IDParam names a secret or SSH agent by id.
type IDParam struct {
	ID string `json:"id"`
}

// InternalParameters are the builder's own settings.
type InternalParameters struct {
	Engine        string `json:"engine"`
	EngineVersion string `json:"engineVersion"`
	Daemon        string `json:"daemon,omitempty"`
	StorageDriver string `json:"storageDriver,omitempty"`
	Rootless      bool   `json:"rootless"`
	KimiaVersion  string `json:"kimiaVersion"`
}

// Predicate returns the SLSA provenance v1 predicate for p.
func Predicate(p Params) slsa1.ProvenancePredicate {
	ext := ExternalParameters{
		Context:      contextParam(p.Source),
		Dockerfile:   p.Dockerfile,
		Target:       p.Target,
		Platforms:    nonNil(p.Platforms),
		Destinations: nonNil(redactAll(p.Destinations)),
		Reproducible: p.Reproducible,
	}
	for _, a := range p.BuildArgs {
		arg := Arg{Name: a.Key}
		if p.Mode == ModeMax {
			v := a.Value
			arg.Value = &v
		}
		ext.BuildArgs = append(ext.BuildArgs, arg)
	}
	ext.Labels = args(p.Labels)
	ext.Annotations = args(p.Annotations)
	for _, id := range p.SecretIDs {
		ext.Secrets = append(ext.Secrets, IDParam{ID: id})
	}
	for _, id := range p.SSHIDs {
		ext.SSH = append(ext.SSH, IDParam{ID: id})
	}
	if p.SourceDateEpoch != nil {
		s := p.SourceDateEpoch.Unix()
		ext.SourceDateEpoch = &s
	}

	var deps []slsa1.ResourceDescriptor
	if g := p.Source.Git; g != nil && g.Commit != "" {
		deps = append(deps, slsa1.ResourceDescriptor{
			URI:    gitURI(g),
			Digest: gitDigest(g.Commit),
			Name:   "context",
		})
	}
	bases := append([]BaseImage(nil), p.BaseImages...)
	sort.Slice(bases, func(i, j int) bool { return bases[i].Ref < bases[j].Ref })
	for _, b := range bases {
		alg, hex, ok := strings.Cut(b.Digest, ":")
		if !ok {
			continue
		}
		deps = append(deps, slsa1.ResourceDescriptor{
			URI:    imageURI(b.Ref),
			Digest: common.DigestSet{alg: hex},
			Name:   b.Ref,
		})
	}

	builderID := p.BuilderID
	if builderID == "" {
		builderID = DefaultBuilderID
	}
	version := map[string]string{"kimia": p.KimiaVersion}
	if p.Engine != "" {
		version[p.Engine] = p.EngineVersion
	}
	started, finished := p.Started.UTC(), p.Finished.UTC()
	pred := slsa1.ProvenancePredicate{
		BuildDefinition: slsa1.ProvenanceBuildDefinition{
			BuildType:          BuildType,
			ExternalParameters: ext,
			InternalParameters: InternalParameters{
				Engine:        p.Engine,
				EngineVersion: p.EngineVersion,
				Daemon:        p.Daemon,
				StorageDriver: p.StorageDriver,
				Rootless:      p.Rootless,
				KimiaVersion:  p.KimiaVersion,
			},
			ResolvedDependencies: deps,
		},
		RunDetails: slsa1.ProvenanceRunDetails{
			Builder:       slsa1.Builder{ID: builderID, Version: version},
			BuildMetadata: slsa1.BuildMetadata{InvocationID: p.InvocationID},
		},
	}
	if !p.Started.IsZero() {
		pred.RunDetails.BuildMetadata.StartedOn = &started
	}
	if !p.Finished.IsZero() {
		pred.RunDetails.BuildMetadata.FinishedOn = &finished
	}
	return pred
}

// Environment variables that identify the run, in the order they are
// tried; docs/attestation-signing.md shows how a pod sets them with the
// downward API or Tekton's context variables.
const (
	EnvInvocationID  = "KIMIA_INVOCATION_ID"
	EnvTaskRunUID    = "TEKTON_TASKRUN_UID"
	EnvTaskRunName   = "TEKTON_TASKRUN_NAME"
	EnvJobUID        = "KUBERNETES_JOB_UID"
	EnvJobName       = "KUBERNETES_JOB_NAME"
	EnvPodNamespace  = "POD_NAMESPACE"
	EnvPodName       = "POD_NAME"
	EnvPodUID        = "POD_UID"
	invocationPrefix = "urn:uuid:"
)

// InvocationFromEnv returns the invocation id: KIMIA_INVOCATION_ID as
// given; else a Tekton TaskRun ("tekton:taskrun/NAMESPACE/NAME/UID"); else
// a Kubernetes Job ("kubernetes:job/NAMESPACE/NAME/UID"); else the pod
// ("kubernetes:pod/NAMESPACE/NAME/UID"); else a random UUID URN, so that
// every run has one.
func InvocationFromEnv(getenv func(string) string) string {
	if getenv == nil {
		getenv = os.Getenv
	}
	if id := getenv(EnvInvocationID); id != "" {
		return id
	}
	ns := getenv(EnvPodNamespace)
	for _, c := range []struct{ kind, uid, name string }{
		{"tekton:taskrun", getenv(EnvTaskRunUID), getenv(EnvTaskRunName)},
		{"kubernetes:job", getenv(EnvJobUID), getenv(EnvJobName)},
		{"kubernetes:pod", getenv(EnvPodUID), getenv(EnvPodName)},
	} {
		if c.uid == "" && c.name == "" {
			continue
		}
		parts := []string{}
		for _, s := range []string{ns, c.name, c.uid} {
			if s != "" {
				parts = append(parts, s)
			}
		}
		return c.kind + "/" + strings.Join(parts, "/")
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%s%x-%x-%x-%x-%x", invocationPrefix, b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func contextParam(s Source) ContextParam {
	c := ContextParam{URI: Redact(s.Context), SubPath: s.SubPath}
	if g := s.Git; g != nil {
		c.Git = &GitParam{URL: Redact(g.URL), Ref: g.Ref, Commit: g.Commit, SubDir: g.SubDir}
		c.URI = gitURI(g)
	}
	return c
}

func args(kvs []KeyValue) []Arg {
	var out []Arg
	for _, kv := range kvs {
		v := kv.Value
		out = append(out, Arg{Name: kv.Key, Value: &v})
	}
	return out
}

// gitURI is the SPDX-style download location of a commit:
// git+URL@COMMIT.
func gitURI(g *Git) string {
	u := Redact(g.URL)
	if !strings.HasPrefix(u, "git+") && !strings.HasPrefix(u, "git://") {
		u = "git+" + u
	}
	if g.Commit != "" {
		return u + "@" + g.Commit
	}
	if g.Ref != "" {
		return u + "@" + g.Ref
	}
	return u
}

func gitDigest(commit string) common.DigestSet {
	d := common.DigestSet{"gitCommit": commit}
	switch len(commit) {
	case 40:
		d["sha1"] = commit
	case 64:
		d["sha256"] = commit
	}
	return d
}

// imageURI is the package URL of an image reference:
// pkg:docker/REPO@TAG (or @DIGEST).
func imageURI(ref string) string {
	repo, version := ref, "latest"
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		repo, version = ref[:i], ref[i+1:]
	} else if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo, version = ref[:i], ref[i+1:]
	}
	return "pkg:docker/" + strings.ReplaceAll(repo, ":", "%3A") + "@" + url.PathEscape(version)
}

// Redact removes credentials from a URL; other strings are returned as
// they are.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil || u.Host == "" {
		return s
	}
	u.User = nil
	return u.String()
}

func redactAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = Redact(s)
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
