package engine

import (
	"fmt"
	"path/filepath"
)

// PullProblem is why a pull from a registry failed.
type PullProblem int

// Pull problems, from the engines' errors.
const (
	PullFailed       PullProblem = iota // anything else the registry answered
	PullUnauthorized                    // the credentials were refused, or missing
	PullNotFound                        // no such image or tag
	PullPlainHTTP                       // the registry speaks HTTP, kimia asked HTTPS
	PullTLS                             // the certificate did not verify
	PullUnreachable                     // no answer: DNS, refused, timeout, reset
)

// PullError is a failed pull of an image (a base image, an image a COPY
// or RUN --mount names), worded once for both engines: where the build
// failed, the image and its registry, why, and what to change.
type PullError struct {
	// Where locates the failure in the Dockerfile ("Dockerfile:3: "), or
	// is "".
	Where    string
	Registry string
	// Image is the reference that failed, when known.
	Image   string
	Problem PullProblem
	// Credentials says where the credentials came from
	// (CredentialsSource), for PullUnauthorized.
	Credentials string
	// Detail is the engine's or the registry's own words.
	Detail string
}

// NewPullError returns e as an error of its kind: authentication for
// refused credentials, registry otherwise.
func NewPullError(e PullError) error {
	kind := KindRegistry
	if e.Problem == PullUnauthorized {
		kind = KindAuth
	}
	return &Error{Kind: kind, Err: &e}
}

func (e *PullError) Error() string {
	host := e.Registry
	if host == "" {
		host = "(unknown)"
	}
	switch e.Problem {
	case PullUnauthorized:
		return fmt.Sprintf("%sregistry %s refused the credentials for pulling (check %s): %s", e.Where, host, e.Credentials, e.Detail)
	case PullNotFound:
		what := "the image"
		if e.Image != "" {
			what = "image " + e.Image
		}
		return fmt.Sprintf("%s%s does not exist in registry %s: %s", e.Where, what, host, e.Detail)
	case PullPlainHTTP:
		return fmt.Sprintf("%sregistry %s speaks plain HTTP: allow it with %s=%s (or %s): %s", e.Where, host, FieldInsecureRegistries, host, FieldInsecurePull, e.Detail)
	case PullTLS:
		return fmt.Sprintf("%sregistry %s: TLS failed (%s): %s", e.Where, host, TLSAdvice(host), e.Detail)
	case PullUnreachable:
		return fmt.Sprintf("%sregistry %s is unreachable: %s", e.Where, host, e.Detail)
	}
	return fmt.Sprintf("%sregistry %s: %s", e.Where, host, e.Detail)
}

// TLSAdvice says what to change when a registry's certificate does not
// verify: pulls and pushes give the same advice.
func TLSAdvice(host string) string {
	return fmt.Sprintf("give the registry's CA with %s=%s=CA.pem, or skip verification with %s=%s", FieldCertificates, host, FieldSkipTLSVerifyRegistries, host)
}

// CredentialsSource names where registry credentials come from, for a
// message about refused credentials.
func CredentialsSource(rc *RegistryConfig) string {
	if rc == nil || rc.DockerConfigDir == "" {
		return "the docker config.json (none was found: set DOCKER_CONFIG, or use $HOME/.docker or /kaniko/.docker)"
	}
	return filepath.Join(rc.DockerConfigDir, "config.json")
}
