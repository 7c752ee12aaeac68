// Package registry reaches OCI registries the way the user configured them
// (Kaniko's --insecure*, --skip-tls-verify*, --registry-certificate,
// --registry-client-cert, docker config credentials) and pushes built
// images so that a tag never points at an incomplete image.
package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/rapidfort/kimia/engine"
)

// Client reaches registries with one RegistryConfig.
type Client struct {
	cfg      engine.RegistryConfig
	keychain *Keychain
	retries  int
	backoff  Backoff
}

// Backoff is engine.Backoff: one retry policy for the whole program.
type Backoff = engine.Backoff

// New returns a client for cfg. retries is how many times a transient
// failure of one registry operation is retried, waiting as backoff says.
func New(cfg engine.RegistryConfig, retries int, backoff Backoff) *Client {
	if backoff.Initial <= 0 {
		backoff = engine.DefaultBackoff
	}
	return &Client{cfg: cfg, keychain: NewKeychain(cfg.DockerConfigDir), retries: retries, backoff: backoff}
}

// Keychain returns the credentials the client uses.
func (c *Client) Keychain() *Keychain { return c.keychain }

// Tag parses a reference for op, allowing plain HTTP where configured.
func (c *Client) Tag(s string, op engine.Op) (name.Tag, error) {
	t, err := name.NewTag(s)
	if err != nil {
		return name.Tag{}, err
	}
	if c.cfg.Host(t.RegistryStr(), op).PlainHTTP {
		return name.NewTag(s, name.Insecure)
	}
	return t, nil
}

// Repository parses a repository for op, allowing plain HTTP where
// configured.
func (c *Client) Repository(s string, op engine.Op) (name.Repository, error) {
	r, err := name.NewRepository(s)
	if err != nil {
		return name.Repository{}, err
	}
	if c.cfg.Host(r.RegistryStr(), op).PlainHTTP {
		return name.NewRepository(s, name.Insecure)
	}
	return r, nil
}

// Transport returns the HTTP transport for host and op: the configured CA
// certificates, client certificates and verification.
func (c *Client) Transport(host string, op engine.Op) (http.RoundTripper, error) {
	hs := c.cfg.Host(host, op)
	t := http.DefaultTransport.(*http.Transport).Clone()
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: hs.SkipTLSVerify} //nolint:gosec // the user asked for it per registry
	if len(hs.CAFiles) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		for _, f := range hs.CAFiles {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, engine.Errorf(engine.KindUsage, "--registry-certificate %s=%s: %v", host, f, err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, engine.Errorf(engine.KindUsage, "--registry-certificate %s=%s: no PEM certificate in the file", host, f)
			}
		}
		tc.RootCAs = pool
	}
	for _, cc := range hs.ClientCerts {
		pair, err := tls.LoadX509KeyPair(cc.Cert, cc.Key)
		if err != nil {
			return nil, engine.Errorf(engine.KindUsage, "--registry-client-cert %s=%s,%s: %v", host, cc.Cert, cc.Key, err)
		}
		tc.Certificates = append(tc.Certificates, pair)
	}
	t.TLSClientConfig = tc
	return &retryTransport{base: t}, nil
}

// Options returns go-containerregistry options for operations against
// host. go-containerregistry's own retries are off: the transport retries
// single requests (retryTransport), and kimia retries whole operations
// (see retry), so --push-retry N means N whole retries on top.
func (c *Client) Options(ctxOpt remote.Option, host string, op engine.Op) ([]remote.Option, error) {
	t, err := c.Transport(host, op)
	if err != nil {
		return nil, err
	}
	return []remote.Option{
		ctxOpt,
		remote.WithTransport(t),
		remote.WithAuthFromKeychain(c.keychain),
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
	}, nil
}

// retry runs op, and again after a transient failure, at most c.retries
// more times, with c's backoff between attempts.
func (c *Client) retry(ctx context.Context, what string, log func(string, ...any), op func() error) error {
	return c.backoff.Retry(ctx, c.retries, Transient, func(attempt int, wait time.Duration, err error) {
		log("retrying after a transient failure", "operation", what, "attempt", attempt, "of", c.retries, "wait", wait.String(), "error", err)
	}, op)
}

// Transient reports whether err is worth retrying: a 5xx or 429 answer, a
// reset or refused connection, a timeout. Authentication, not-found and
// manifest errors are not.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusRequestTimeout, http.StatusTooManyRequests:
			return true
		}
		return te.StatusCode >= 500
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.EPIPE, net.ErrClosed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return errors.Is(err, errUnexpectedEOF) || isEOF(err)
}

// Classify gives a registry error its kind: authentication failures
// apart from every other registry failure.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden {
			return engine.Wrap(engine.KindAuth, err)
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return engine.Wrap(engine.KindAuth, err)
			}
		}
	}
	var cve *tls.CertificateVerificationError
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	if errors.As(err, &cve) || errors.As(err, &ue) || errors.As(err, &he) {
		host := "HOST"
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			if u, perr := url.Parse(urlErr.URL); perr == nil && u.Host != "" {
				host = u.Host
			}
		}
		return engine.Wrap(engine.KindRegistry, fmt.Errorf("%w (%s)", err, engine.TLSAdvice(host)))
	}
	return engine.Wrap(engine.KindRegistry, err)
}

// Blob opens a blob of repo (registry/repository), pulled as base images
// are: from repo's mirrors first (--registry-mirror, --registry-map), then
// from repo's registry unless --skip-default-registry-fallback.
func (c *Client) Blob(ctx context.Context, repo string, digest v1.Hash) (io.ReadCloser, error) {
	r, err := name.NewRepository(repo)
	if err != nil {
		return nil, fmt.Errorf("repository %q: %w", repo, err)
	}
	var tries []name.Repository
	for _, m := range c.cfg.MirrorsFor(r.RegistryStr()) {
		if mr, err := c.Repository(m.Repository(r.RepositoryStr()), engine.Pull); err == nil {
			tries = append(tries, mr)
		}
	}
	if len(tries) == 0 || !c.cfg.SkipDefaultRegistryFallback {
		if rr, err := c.Repository(repo, engine.Pull); err == nil {
			tries = append(tries, rr)
		}
	}
	var errs []error
	for _, t := range tries {
		opts, err := c.Options(remote.WithContext(ctx), t.RegistryStr(), engine.Pull)
		if err != nil {
			return nil, err
		}
		l, err := remote.Layer(t.Digest(digest.String()), opts...)
		if err == nil {
			var rc io.ReadCloser
			if rc, err = l.Compressed(); err == nil {
				return rc, nil
			}
		}
		errs = append(errs, fmt.Errorf("%s: %w", t, err))
	}
	return nil, Classify(fmt.Errorf("fetching blob %s of %s: %w", digest, repo, errors.Join(errs...)))
}

// HasBlob reports whether the repository of dest (a destination,
// registry/repository:tag) has blob digest.
func (c *Client) HasBlob(ctx context.Context, dest string, digest v1.Hash) (bool, error) {
	tag, err := c.Tag(dest, engine.Push)
	if err != nil {
		return false, err
	}
	opts, err := c.Options(remote.WithContext(ctx), tag.RegistryStr(), engine.Push)
	if err != nil {
		return false, err
	}
	l, err := remote.Layer(tag.Context().Digest(digest.String()), opts...)
	if err != nil {
		return false, err
	}
	e, ok := l.(interface{ Exists() (bool, error) })
	if !ok {
		return false, nil
	}
	return e.Exists()
}
