package buildah

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/rapidfort/kimia/engine"
)

// cacheHitPrefix starts the line Buildah prints on its output when a step
// is served from cache, from the local store or pulled from the cache
// repository.
// Buildah has no other report of cache hits, so the progress writer
// counts these lines.
const cacheHitPrefix = "--> Using cache "

// progress receives Buildah's step log and output, shows them on the
// request's progress writer (not at all when quiet) and counts steps and
// cache hits for the metadata file.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	prefix  string
	partial []byte

	stages int
	steps  int // instructions other than FROM
	cached int
}

func newProgress(req *engine.Request) *progress {
	w := req.Progress
	if w == nil || req.ProgressMode == engine.ProgressQuiet {
		w = io.Discard
	}
	return &progress{w: w}
}

// setPlatform prefixes the lines of one platform's build when several
// are built.
func (p *progress) setPlatform(prefix string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flushLocked()
	p.prefix = prefix
	p.stages = 0
}

// log is Buildah's step log (BuildOptions.Log): "FROM busybox",
// "RUN make", "COMMIT name".
func (p *progress) log(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flushLocked()
	switch {
	case strings.HasPrefix(msg, "COMMIT"):
	case strings.HasPrefix(strings.ToUpper(msg), "FROM "):
		p.stages++
	default:
		p.steps++
	}
	fmt.Fprintf(p.w, "%s#%d %s\n", p.prefix, p.stages, msg)
}

// Write is Buildah's output (BuildOptions.Out): cache notices, image ids
// and the output of RUN steps.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	data := append(p.partial, b...)
	p.partial = nil
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		p.lineLocked(data[:i])
		data = data[i+1:]
	}
	if len(data) > 0 {
		p.partial = append([]byte(nil), data...)
	}
	return len(b), nil
}

func (p *progress) flushLocked() {
	if len(p.partial) > 0 {
		p.lineLocked(p.partial)
		p.partial = nil
	}
}

func (p *progress) lineLocked(line []byte) {
	if bytes.HasPrefix(line, []byte(cacheHitPrefix)) {
		p.cached++
		fmt.Fprintf(p.w, "%sCACHED %s\n", p.prefix, bytes.TrimPrefix(line, []byte(cacheHitPrefix)))
		return
	}
	fmt.Fprintf(p.w, "%s%s\n", p.prefix, line)
}

// stats returns the counts so far.
func (p *progress) stats() *engine.CacheStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flushLocked()
	return &engine.CacheStats{Steps: p.steps, Cached: p.cached}
}

// passthrough shows Buildah's other writers (pull progress, warnings) on
// the progress writer with the platform prefix.
type passthrough struct{ p *progress }

func (t passthrough) Write(b []byte) (int, error) {
	t.p.mu.Lock()
	defer t.p.mu.Unlock()
	if t.p.prefix == "" {
		return t.p.w.Write(b)
	}
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			io.WriteString(t.p.w, t.p.prefix+line)
		}
	}
	return len(b), nil
}
