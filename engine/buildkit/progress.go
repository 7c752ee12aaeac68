package buildkit

import (
	"context"
	"io"
	"strings"
	"sync"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progressui"
	digest "github.com/opencontainers/go-digest"

	"github.com/rapidfort/kimia/engine"
)

// progress shows the solve's status stream on the user's terminal (or as
// plain lines) and keeps what kimia reports from it: which steps ran and
// which came from the cache.
type progress struct {
	// Ch receives the solve status; Solve closes it.
	Ch   chan *client.SolveStatus
	done chan struct{}

	mu       sync.Mutex
	vertices map[digest.Digest]*vertex
	order    []digest.Digest
}

type vertex struct {
	name      string
	cached    bool
	completed bool
	err       string
	// log is the end of the step's output, kept to explain a failure.
	log []byte
}

// maxVertexLog bounds the output kept per step.
const maxVertexLog = 8 << 10

// displayMode maps kimia's progress mode to BuildKit's display.
func displayMode(m engine.ProgressMode) progressui.DisplayMode {
	switch m {
	case engine.ProgressTTY:
		return progressui.TtyMode
	case engine.ProgressPlain:
		return progressui.PlainMode
	case engine.ProgressQuiet:
		return progressui.QuietMode
	}
	return progressui.AutoMode
}

// startProgress starts displaying to w. Call wait after Solve returned.
func startProgress(w io.Writer, mode engine.ProgressMode) (*progress, error) {
	if w == nil {
		w, mode = io.Discard, engine.ProgressQuiet
	}
	d, err := progressui.NewDisplay(w, displayMode(mode))
	if err != nil && mode == engine.ProgressTTY {
		// A live display asked for without a terminal: plain lines rather than
		// nothing.
		d, err = progressui.NewDisplay(w, progressui.PlainMode)
	}
	if err != nil {
		return nil, err
	}
	p := &progress{Ch: make(chan *client.SolveStatus), done: make(chan struct{}), vertices: map[digest.Digest]*vertex{}}
	show := make(chan *client.SolveStatus)
	go func() {
		defer close(show)
		for s := range p.Ch {
			p.record(s)
			show <- s
		}
	}()
	go func() {
		defer close(p.done)
		// Not the build's context: after a failure or a signal the
		// display still prints what happened.
		_, _ = d.UpdateFrom(context.Background(), show)
	}()
	return p, nil
}

// wait returns when the display has printed everything.
func (p *progress) wait() { <-p.done }

func (p *progress) record(s *client.SolveStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range s.Vertexes {
		x, ok := p.vertices[v.Digest]
		if !ok {
			x = &vertex{}
			p.vertices[v.Digest] = x
			p.order = append(p.order, v.Digest)
		}
		x.name = v.Name
		x.cached = x.cached || v.Cached
		x.completed = x.completed || v.Completed != nil
		if v.Error != "" {
			x.err = v.Error
		}
	}
	for _, l := range s.Logs {
		x, ok := p.vertices[l.Vertex]
		if !ok {
			continue
		}
		x.log = append(x.log, l.Data...)
		if len(x.log) > maxVertexLog {
			x.log = x.log[len(x.log)-maxVertexLog:]
		}
	}
}

// failedLog returns the output of the steps that failed.
func (p *progress) failedLog() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, d := range p.order {
		if v := p.vertices[d]; v.err != "" {
			b.Write(v.log)
		}
	}
	return b.String()
}

// stats counts the Dockerfile's steps and the cached ones, as buildctl's
// cache metrics do: BuildKit's own bookkeeping vertices ([internal],
// [auth], cache import, export) and base-image sources are not steps.
func (p *progress) stats() *engine.CacheStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := &engine.CacheStats{}
	for _, d := range p.order {
		v := p.vertices[d]
		if !isStep(v.name) {
			continue
		}
		st.Steps++
		if v.cached {
			st.Cached++
		}
	}
	return st
}

func isStep(name string) bool {
	for _, prefix := range []string{"[internal]", "[auth]", "importing cache", "exporting ", "resolve image config", "load metadata"} {
		if strings.HasPrefix(name, prefix) {
			return false
		}
	}
	// "[stage 1/3] FROM ..." is the base image, not a step.
	if i := strings.Index(name, "] "); strings.HasPrefix(name, "[") && i > 0 {
		return !strings.HasPrefix(name[i+2:], "FROM ")
	}
	return name != ""
}
