package sbom

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// HelperName is the SBOM helper's binary, shipped beside kimia and
// kimia-bud.
const HelperName = "kimia-sbom"

// FindHelper returns the helper beside the running binary, else on PATH.
func FindHelper() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), HelperName)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath(HelperName)
	if err != nil {
		return "", fmt.Errorf("the SBOM helper %s is neither beside this binary nor on PATH (it ships in kimia's images; make build puts it in bin/)", HelperName)
	}
	return p, nil
}

// Request asks the helper for one SBOM: of the only image of the OCI
// layout at Layout.
type Request struct {
	ID      int     `json:"id"`
	Layout  string  `json:"layout"`
	Options Options `json:"options"`
}

// Response answers the Request of the same ID.
type Response struct {
	ID       int       `json:"id"`
	Document *Document `json:"document,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// Helper is a running kimia-sbom. Start it before the build: it sets syft
// up (seconds of CPU) while the engine builds.
type Helper struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr syncBuffer

	mu      sync.Mutex
	next    int
	waiting map[int]chan Response
	done    chan struct{} // closed when the helper's output ends
	err     error         // why it ended early
}

// Start runs the helper at path. Its environment is the bare minimum: it
// reads image files, never a secret or a registry.
func Start(path string) (*Helper, error) {
	h := &Helper{waiting: map[int]chan Response{}, done: make(chan struct{})}
	h.cmd = exec.Command(path, "serve")
	h.cmd.Env = helperEnv()
	h.cmd.Stderr = &h.stderr
	// The helper must not outlive kimia, whatever stops kimia.
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var err error
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := h.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the SBOM helper %s: %w", path, err)
	}
	go h.read(stdout)
	return h, nil
}

func helperEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "XDG_CACHE_HOME"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func (h *Helper) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<30)
	for sc.Scan() {
		var resp Response
		if err := json.Unmarshal(sc.Bytes(), &resp); err != nil {
			continue
		}
		h.mu.Lock()
		ch := h.waiting[resp.ID]
		delete(h.waiting, resp.ID)
		h.mu.Unlock()
		if ch != nil {
			ch <- resp
		}
	}
	h.mu.Lock()
	h.err = sc.Err()
	h.mu.Unlock()
	close(h.done)
}

// Generate makes the SBOM of img. The helper reads a copy of img with
// uncompressed layers written under opts.TempDir (linked where the layer
// is a file already); the document's subject is img's digest.
func (h *Helper) Generate(ctx context.Context, img v1.Image, opts Options) (*Document, error) {
	if opts.Subject == (v1.Hash{}) {
		d, err := img.Digest()
		if err != nil {
			return nil, err
		}
		opts.Subject = d
	}
	if opts.Format == "" {
		opts.Format = FormatSPDX
	}
	if opts.Created.IsZero() {
		opts.Created = time.Now()
	}
	opts.Created = opts.Created.UTC().Truncate(time.Second)
	key := ""
	if opts.CacheDir != "" {
		var err error
		if key, err = cacheKey(img, opts); err != nil {
			return nil, err
		}
		if doc := fromCache(opts.CacheDir, key, opts.Subject, opts.Created); doc != nil {
			return doc, nil
		}
	}
	doc, err := h.generate(ctx, img, opts)
	if err == nil && key != "" {
		// A cache that cannot be written only costs the next build.
		_ = toCache(opts.CacheDir, key, doc, opts.Created)
	}
	return doc, err
}

// generate asks the helper.
func (h *Helper) generate(ctx context.Context, img v1.Image, opts Options) (*Document, error) {
	dir, err := os.MkdirTemp(opts.TempDir, "kimia-sbom-image-")
	if err != nil {
		return nil, fmt.Errorf("creating a directory for the SBOM: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := writeView(dir, img); err != nil {
		return nil, fmt.Errorf("writing the image for the SBOM: %w", err)
	}

	h.mu.Lock()
	h.next++
	id := h.next
	ch := make(chan Response, 1)
	h.waiting[id] = ch
	b, err := json.Marshal(Request{ID: id, Layout: dir, Options: opts})
	if err == nil {
		_, err = h.stdin.Write(append(b, '\n'))
	}
	h.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("asking the SBOM helper: %w%s", err, h.tail())
	}
	select {
	case resp := <-ch:
		if resp.Error != "" {
			return nil, errors.New(resp.Error)
		}
		if resp.Document == nil {
			return nil, errors.New("the SBOM helper answered without a document")
		}
		return resp.Document, nil
	case <-h.done:
		return nil, fmt.Errorf("the SBOM helper stopped%s", h.tail())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// syncBuffer is the helper's stderr, written by exec's copier while
// Generate may read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (h *Helper) tail() string {
	s := strings.TrimSpace(h.stderr.String())
	if s == "" {
		return ""
	}
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return ": " + s
}

// Close ends the helper and waits for it.
func (h *Helper) Close() error {
	h.stdin.Close()
	err := h.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return fmt.Errorf("the SBOM helper failed: %w%s", err, h.tail())
	}
	return nil
}
