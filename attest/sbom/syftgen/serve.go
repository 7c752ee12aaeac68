package syftgen

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/rapidfort/kimia/attest/sbom"
)

// Serve answers sbom.Requests read from r, one JSON document per line,
// with sbom.Responses written to w, until r ends. It sets up syft's
// license scanner first, while the caller's build runs, and works on two
// requests at a time: syft keeps a layer index in memory and the
// machines kimia runs on are small.
func Serve(ctx context.Context, r io.Reader, w io.Writer) error {
	Prepare()
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var req sbom.Request
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			return fmt.Errorf("reading a request: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			resp := sbom.Response{ID: req.ID}
			doc, err := generateFromLayout(ctx, req)
			if err != nil {
				resp.Error = err.Error()
			}
			resp.Document = doc
			mu.Lock()
			defer mu.Unlock()
			enc.Encode(resp)
		}()
	}
	wg.Wait()
	return sc.Err()
}

func generateFromLayout(ctx context.Context, req sbom.Request) (*sbom.Document, error) {
	p, err := layout.FromPath(req.Layout)
	if err != nil {
		return nil, fmt.Errorf("reading the image for the SBOM: %w", err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading the image for the SBOM: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(im.Manifests) != 1 {
		return nil, fmt.Errorf("the SBOM's image layout holds %d manifests, want 1", len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		return nil, err
	}
	return Generate(ctx, img, req.Options)
}
