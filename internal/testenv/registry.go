// Package e2e is kimia's end-to-end test sandbox: a real CNCF Distribution
// registry on loopback (plain, TLS, htpasswd auth), offline base images,
// and a runner that executes every test against each binary, as BuildKit's
// integration sandbox runs each test against every worker.
package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// RegistryOptions selects a registry variant.
type RegistryOptions struct {
	// TLS serves HTTPS with a certificate from a CA made for this
	// registry (Registry.CAFile).
	TLS bool
	// User and Password turn on htpasswd authentication.
	User, Password string
	// Host is the loopback address to listen on; 127.0.0.1 by default.
	// Use 127.0.0.2 for a TLS registry that clients must not mistake for
	// a local plain-HTTP one.
	Host string
}

// Registry is a running Distribution registry.
type Registry struct {
	// Host is host:port, as image references name it.
	Host string
	// CAFile is the PEM CA that signed the registry's certificate (TLS).
	CAFile string
	// CertFile and KeyFile are the server certificate (TLS).
	CertFile, KeyFile string
	User, Password    string
	TLS               bool
	Dir               string

	cmd *exec.Cmd
	log string
}

// StartRegistry starts a registry for the test; it stops when the test
// ends.
func StartRegistry(t testing.TB, o RegistryOptions) *Registry {
	t.Helper()
	r, err := NewRegistry(t.TempDir(), o)
	if err != nil {
		t.Fatalf("starting registry: %v", err)
	}
	t.Cleanup(r.Stop)
	return r
}

// NewRegistry starts a registry whose data lives in dir, for callers
// without a test (the e2e set-up, benchmarks, the demo); they stop it.
func NewRegistry(dir string, o RegistryOptions) (*Registry, error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return nil, fmt.Errorf("docker-registry is not installed (Debian package docker-registry; run hack/setup.sh): %w", err)
	}
	host := o.Host
	if host == "" {
		host = "127.0.0.1"
	}
	r := &Registry{Dir: dir, User: o.User, Password: o.Password, TLS: o.TLS}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %%s
  secret: kimia-e2e
`, filepath.Join(dir, "data"))
	if o.TLS {
		if err := r.makeCerts(host); err != nil {
			return nil, err
		}
		cfg += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", r.CertFile, r.KeyFile)
	}
	if o.User != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(o.Password), bcrypt.MinCost)
		if err != nil {
			return nil, err
		}
		htp := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htp, []byte(o.User+":"+string(hash)+"\n"), 0o600); err != nil {
			return nil, err
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: kimia-e2e\n    path: %s\n", htp)
	}
	// A free port can be taken between our probe and the registry's
	// bind; try a few.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort(host)
		if err != nil {
			return nil, err
		}
		r.Host = net.JoinHostPort(host, fmt.Sprint(port))
		cfgPath := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(cfg, r.Host)), 0o600); err != nil {
			return nil, err
		}
		r.log = filepath.Join(dir, "registry.log")
		logf, err := os.Create(r.log)
		if err != nil {
			return nil, err
		}
		r.cmd = exec.Command(bin, "serve", cfgPath)
		r.cmd.Stdout, r.cmd.Stderr = logf, logf
		r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := r.cmd.Start(); err != nil {
			logf.Close()
			return nil, err
		}
		logf.Close()
		if lastErr = r.waitReady(10 * time.Second); lastErr == nil {
			return r, nil
		}
		r.Stop()
	}
	return nil, lastErr
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (r *Registry) waitReady(timeout time.Duration) error {
	exited := make(chan error, 1)
	go func() { exited <- r.cmd.Wait() }()
	client := r.HTTPClient()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(r.log)
			r.cmd = nil
			return fmt.Errorf("registry exited (%v): %s", err, b)
		default:
		}
		resp, err := client.Get(r.URL() + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				go func() { <-exited }()
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(r.log)
	return fmt.Errorf("registry on %s not ready after %s: %s", r.Host, timeout, b)
}

// Stop ends the registry process (only the one this sandbox started).
func (r *Registry) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { r.cmd.Process.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			r.cmd.Process.Kill()
		}
		r.cmd = nil
	}
}

// URL is the registry's base URL.
func (r *Registry) URL() string {
	if r.TLS {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// Ref names repo (with tag or digest) in this registry.
func (r *Registry) Ref(repo string) string { return r.Host + "/" + strings.TrimPrefix(repo, "/") }

// Flags are the kimia flags that reach this registry: plain HTTP, or the
// test CA.
func (r *Registry) Flags() []string {
	if r.TLS {
		return []string{"--registry-certificate=" + r.Host + "=" + r.CAFile}
	}
	return []string{"--insecure-registry=" + r.Host}
}

// HTTPClient trusts the registry's CA.
func (r *Registry) HTTPClient() *http.Client {
	return &http.Client{Transport: r.Transport(), Timeout: 10 * time.Second}
}

// Transport trusts the registry's CA.
func (r *Registry) Transport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if r.TLS {
		pool := x509.NewCertPool()
		if b, err := os.ReadFile(r.CAFile); err == nil {
			pool.AppendCertsFromPEM(b)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return t
}

// Options are go-containerregistry options that reach this registry with
// its credentials.
func (r *Registry) Options() []remote.Option {
	opts := []remote.Option{remote.WithTransport(r.Transport())}
	if r.User != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: r.User, Password: r.Password}))
	}
	return opts
}

// NameOptions parse references of this registry.
func (r *Registry) NameOptions() []name.Option {
	if r.TLS {
		return nil
	}
	return []name.Option{name.Insecure}
}

// Descriptor fetches what ref points at; it fails the test when ref is
// missing.
func (r *Registry) Descriptor(t testing.TB, ref string) *remote.Descriptor {
	t.Helper()
	d, err := r.Get(ref)
	if err != nil {
		t.Fatalf("reading %s from the registry: %v", ref, err)
	}
	return d
}

// Get fetches what ref points at.
func (r *Registry) Get(ref string) (*remote.Descriptor, error) {
	n, err := name.ParseReference(ref, r.NameOptions()...)
	if err != nil {
		return nil, err
	}
	return remote.Get(n, r.Options()...)
}

// Image reads a single-platform image; for an index, the linux/amd64 one.
func (r *Registry) Image(t testing.TB, ref string) v1.Image {
	t.Helper()
	d := r.Descriptor(t, ref)
	img, err := d.Image()
	if err != nil {
		t.Fatalf("reading image %s: %v", ref, err)
	}
	return img
}

// Index reads an image index.
func (r *Registry) Index(t testing.TB, ref string) v1.ImageIndex {
	t.Helper()
	d := r.Descriptor(t, ref)
	if !d.MediaType.IsIndex() {
		t.Fatalf("%s is a %s, not an index", ref, d.MediaType)
	}
	idx, err := d.ImageIndex()
	if err != nil {
		t.Fatalf("reading index %s: %v", ref, err)
	}
	return idx
}

// Tags lists repo's tags.
func (r *Registry) Tags(t testing.TB, repo string) []string {
	t.Helper()
	rp, err := name.NewRepository(r.Ref(repo), r.NameOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(rp, r.Options()...)
	if err != nil {
		if strings.Contains(err.Error(), "NAME_UNKNOWN") {
			return nil
		}
		t.Fatalf("listing tags of %s: %v", repo, err)
	}
	return tags
}

// makeCerts makes a CA and a server certificate for host.
func (r *Registry) makeCerts(host string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kimia e2e CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP(host)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	r.CAFile = filepath.Join(r.Dir, "ca.crt")
	r.CertFile = filepath.Join(r.Dir, "server.crt")
	r.KeyFile = filepath.Join(r.Dir, "server.key")
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{r.CAFile, "CERTIFICATE", caDER}, {r.CertFile, "CERTIFICATE", der}, {r.KeyFile, "EC PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o644); err != nil {
			return err
		}
	}
	return nil
}
