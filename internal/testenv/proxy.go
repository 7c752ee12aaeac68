package testenv

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// FlakyProxy sits in front of a registry and fails some requests, the way
// an overloaded registry or a bad network does.
type FlakyProxy struct {
	// Host is host:port of the proxy.
	Host string
	// Requests and Failed count requests seen and failed.
	Requests, Failed atomic.Int64

	mu sync.Mutex
	// fail decides, for the n-th request (from 1), whether to fail it and
	// how: "503" answers 503, "reset" drops the connection, "immutable"
	// answers as ECR does to a write of an immutable tag.
	fail func(n int64, r *http.Request) string
}

// StartFlakyProxy proxies to reg. fail picks the requests to fail.
func StartFlakyProxy(t testing.TB, reg *Registry, fail func(n int64, r *http.Request) string) *FlakyProxy {
	t.Helper()
	target, _ := url.Parse(reg.URL())
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = reg.Transport()
	// Canceled requests (the point of the proxy) are not news.
	rp.ErrorLog = log.New(io.Discard, "", 0)
	p := &FlakyProxy{fail: fail}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.Host = l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := p.Requests.Add(1)
		p.mu.Lock()
		how := p.fail(n, r)
		p.mu.Unlock()
		switch how {
		case "503":
			p.Failed.Add(1)
			http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"flaky proxy"}]}`, http.StatusServiceUnavailable)
			return
		case "immutable":
			p.Failed.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"errors":[{"code":"TAG_INVALID","message":"The image tag 'v1' already exists in the 'imm/app' repository and cannot be overwritten because the repository is immutable."}]}`))
			return
		case "reset":
			p.Failed.Add(1)
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					if tc, ok := c.(*net.TCPConn); ok {
						tc.SetLinger(0) // RST, not FIN
					}
					c.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return p
}

// SetFail replaces the failure rule.
func (p *FlakyProxy) SetFail(fail func(n int64, r *http.Request) string) {
	p.mu.Lock()
	p.fail = fail
	p.mu.Unlock()
}
