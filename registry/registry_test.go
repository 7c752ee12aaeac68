package registry

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/rapidfort/kimia/engine"
)

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"503", &transport.Error{StatusCode: http.StatusServiceUnavailable}, true},
		{"500", &transport.Error{StatusCode: http.StatusInternalServerError}, true},
		{"429", &transport.Error{StatusCode: http.StatusTooManyRequests}, true},
		{"408", &transport.Error{StatusCode: http.StatusRequestTimeout}, true},
		{"401", &transport.Error{StatusCode: http.StatusUnauthorized}, false},
		{"404", &transport.Error{StatusCode: http.StatusNotFound}, false},
		{"a reset connection", fmt.Errorf("put: %w", syscall.ECONNRESET), true},
		{"a refused connection", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{"a body cut short", fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), true},
		{"anything else", errors.New("manifest invalid"), false},
		{"nil", nil, false},
	} {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("%s: Transient = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestClassify(t *testing.T) {
	tlsErr := &url.Error{Op: "Get", URL: "https://reg.example:5000/v2/", Err: x509.UnknownAuthorityError{}}
	for _, tc := range []struct {
		name     string
		err      error
		kind     engine.Kind
		contains string
	}{
		{"401 is auth", &transport.Error{StatusCode: http.StatusUnauthorized}, engine.KindAuth, ""},
		{"403 is auth", &transport.Error{StatusCode: http.StatusForbidden}, engine.KindAuth, ""},
		{"DENIED is auth", &transport.Error{StatusCode: http.StatusBadRequest, Errors: []transport.Diagnostic{{Code: transport.DeniedErrorCode}}}, engine.KindAuth, ""},
		{"an unknown CA is a registry error with the advice for its host", tlsErr, engine.KindRegistry, engine.FieldCertificates.String() + "=reg.example:5000=CA.pem"},
		{"a 500 is a registry error", &transport.Error{StatusCode: http.StatusInternalServerError}, engine.KindRegistry, ""},
	} {
		err := Classify(tc.err)
		if engine.KindOf(err) != tc.kind || !strings.Contains(err.Error(), tc.contains) {
			t.Errorf("%s: %v (kind %v), want kind %v containing %q", tc.name, err, engine.KindOf(err), tc.kind, tc.contains)
		}
	}
}

func TestIsImmutableTag(t *testing.T) {
	for _, m := range immutableTagMessages {
		if !IsImmutableTag(&transport.Error{StatusCode: http.StatusBadRequest, Errors: []transport.Diagnostic{{Code: transport.TagInvalidErrorCode, Message: "tag v1: " + m}}}) {
			t.Errorf("%q is not taken for an immutable tag", m)
		}
	}
	if IsImmutableTag(&transport.Error{StatusCode: http.StatusBadRequest, Errors: []transport.Diagnostic{{Code: transport.ManifestInvalidErrorCode, Message: "manifest invalid"}}}) {
		t.Error("an invalid manifest is taken for an immutable tag")
	}
}

// flaky answers the first n uploads (POST/PUT/PATCH) with 503, then
// passes everything to an in-memory registry.
func flaky(n int64) (*httptest.Server, *atomic.Int64) {
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var failed atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && failed.Load() < n {
			failed.Add(1)
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	return s, &failed
}

func TestPushRetriesTransientFailures(t *testing.T) {
	old := requestBackoff
	requestBackoff = Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Factor: 2}
	defer func() { requestBackoff = old }()
	img, err := random.Image(256, 2)
	if err != nil {
		t.Fatal(err)
	}
	fast := Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Factor: 2}
	t.Run("within the budget", func(t *testing.T) {
		s, failed := flaky(2)
		defer s.Close()
		host := strings.TrimPrefix(s.URL, "http://")
		c := New(engine.RegistryConfig{InsecureRegistries: []string{host}}, 0, fast)
		if _, err := c.Push(context.Background(), img, []string{host + "/app:v1"}, PushOptions{Jobs: 1}); err != nil {
			t.Fatalf("push through two 503s, retried request by request: %v", err)
		}
		if failed.Load() != 2 {
			t.Errorf("%d failed requests, want 2", failed.Load())
		}
	})
	t.Run("past the budget", func(t *testing.T) {
		s, _ := flaky(1000)
		defer s.Close()
		host := strings.TrimPrefix(s.URL, "http://")
		c := New(engine.RegistryConfig{InsecureRegistries: []string{host}}, 1, fast)
		_, err := c.Push(context.Background(), img, []string{host + "/app:v1"}, PushOptions{Jobs: 1})
		if engine.KindOf(err) != engine.KindRegistry {
			t.Fatalf("push past the retry budget: %v (kind %v), want a registry error", err, engine.KindOf(err))
		}
	})
}

// A registry that rate-limits with Retry-After, or fails one request in a
// few, is got through request by request: a push with no whole retries
// succeeds, and waits as the registry says.
func TestRequestsAreRetriedOneByOne(t *testing.T) {
	old := requestBackoff
	requestBackoff = Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Factor: 2}
	defer func() { requestBackoff = old }()
	img, err := random.Image(256, 2)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var n, limited atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch c := n.Add(1); {
		case c == 2:
			w.Header().Set("Retry-After", "1")
			limited.Add(1)
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		case c%4 == 0:
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer s.Close()
	host := strings.TrimPrefix(s.URL, "http://")
	start := time.Now()
	c := New(engine.RegistryConfig{InsecureRegistries: []string{host}}, 0, Backoff{Initial: time.Hour})
	if _, err := c.Push(context.Background(), img, []string{host + "/app:v1"}, PushOptions{Jobs: 1}); err != nil {
		t.Fatalf("push with every fourth request failing and no whole retries: %v", err)
	}
	if limited.Load() != 1 {
		t.Fatalf("the registry rate-limited %d requests, want 1", limited.Load())
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("the push took %s: Retry-After: 1 was not honoured", d)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"soon":                          0,
		"Thu, 01 Jan 2026 00:00:05 GMT": 5 * time.Second,
		"Wed, 31 Dec 2025 23:00:00 GMT": 0,
	} {
		if got := retryAfter(h, now); got != want {
			t.Errorf("Retry-After %q: %s, want %s", h, got, want)
		}
	}
}
