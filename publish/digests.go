package publish

// Kaniko's digest files: --digest-file, --image-name-with-digest-file and
// --image-name-tag-with-digest-file.

import (
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/registry"
)

// WriteDigestFile writes the digest, without a newline, as Kaniko does.
func WriteDigestFile(path string, digest v1.Hash) error {
	return writeFile(path, []byte(digest.String()))
}

// WriteImageNameWithDigestFile writes repo@digest, a line per destination.
func WriteImageNameWithDigestFile(path string, pushed []registry.Pushed) error {
	var b strings.Builder
	for _, p := range pushed {
		b.WriteString(p.Ref + "\n")
	}
	return writeFile(path, []byte(b.String()))
}

// TagDigest is an entry of --image-name-tag-with-digest-file, Kaniko's
// format.
type TagDigest struct {
	Image  string `json:"image"`
	Digest string `json:"digest"`
}

// WriteImageNameTagWithDigestFile writes a JSON array with one entry per
// destination tag.
func WriteImageNameTagWithDigestFile(path string, pushed []registry.Pushed) error {
	entries := make([]TagDigest, 0, len(pushed))
	for _, p := range pushed {
		entries = append(entries, TagDigest{Image: p.Tag, Digest: p.Digest})
	}
	b, err := json.Marshal(entries)
	if err != nil {
		return err
	}
	return writeFile(path, b)
}

func writeDigestFiles(o Options, sum *Summary) error {
	wrap := func(flag string, err error) error {
		if err == nil {
			return nil
		}
		return engine.Wrap(engine.KindEnvironment, fmt.Errorf("--%s: %w", flag, err))
	}
	if o.DigestFile != "" {
		if err := wrap("digest-file", WriteDigestFile(o.DigestFile, sum.Digest)); err != nil {
			return err
		}
	}
	pushed := sum.Pushed
	if o.NoPush {
		// Kaniko writes the names it would have pushed.
		for _, d := range o.Destinations {
			pushed = append(pushed, registry.NotPushed(d, sum.Digest))
		}
	}
	if o.ImageNameWithDigestFile != "" {
		if err := wrap("image-name-with-digest-file", WriteImageNameWithDigestFile(o.ImageNameWithDigestFile, pushed)); err != nil {
			return err
		}
	}
	if o.ImageNameTagWithDigestFile != "" {
		if err := wrap("image-name-tag-with-digest-file", WriteImageNameTagWithDigestFile(o.ImageNameTagWithDigestFile, pushed)); err != nil {
			return err
		}
	}
	return nil
}
