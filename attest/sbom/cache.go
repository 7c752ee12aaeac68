package sbom

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The SBOM cache keeps each document in CacheDir by what determines it:
// the image's layers (diff IDs, in order) and platform, the format, the
// subject's name and the tool. An image rebuilt with the same layers (an
// unchanged rebuild, a new tag, a changed label) gets its SBOM without
// reading a layer. The two things in a document that do not follow from
// the layers, the image digest and the creation time, are written again
// for the new image: a hit gives the bytes a miss would.

// cacheEntry is a cached document and what it was made for.
type cacheEntry struct {
	Subject       string    `json:"subject"`
	Created       time.Time `json:"created"`
	PredicateType string    `json:"predicateType"`
	Packages      int       `json:"packages"`
	JSON          []byte    `json:"json"`
}

func cacheKey(img v1.Image, opts Options) (string, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "kimia-sbom-cache v1\n%s\n%s\n%s\n%s\n%s/%s/%s\n", opts.Format, opts.Name, opts.ToolName, opts.ToolVersion,
		cf.OS, cf.Architecture, cf.Variant)
	for _, d := range cf.RootFS.DiffIDs {
		fmt.Fprintln(h, d.String())
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// createdText is how both formats write the creation time.
func createdText(t time.Time) string { return `"` + t.UTC().Format(time.RFC3339) + `"` }

// fromCache returns the cached document for key, rewritten for subject
// and created, or nil.
func fromCache(dir, key string, subject v1.Hash, created time.Time) *Document {
	b, err := os.ReadFile(filepath.Join(dir, key+".json"))
	if err != nil {
		return nil
	}
	var e cacheEntry
	if json.Unmarshal(b, &e) != nil || len(e.JSON) == 0 {
		return nil
	}
	old, err := v1.NewHash(e.Subject)
	if err != nil {
		return nil
	}
	doc := e.JSON
	if old != subject {
		doc = bytes.ReplaceAll(doc, []byte(SerialNumber(old)), []byte(SerialNumber(subject)))
		doc = bytes.ReplaceAll(doc, []byte(old.Hex), []byte(subject.Hex))
	}
	if !e.Created.Equal(created) {
		doc = bytes.ReplaceAll(doc, []byte(createdText(e.Created)), []byte(createdText(created)))
	}
	return &Document{PredicateType: e.PredicateType, Subject: subject, Packages: e.Packages, JSON: doc, Cached: true}
}

// toCache stores doc, made at created, under key.
func toCache(dir, key string, doc *Document, created time.Time) error {
	b, err := json.Marshal(cacheEntry{Subject: doc.Subject.String(), Created: created.UTC().Truncate(time.Second),
		PredicateType: doc.PredicateType, Packages: doc.Packages, JSON: doc.JSON})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".entry-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing the SBOM cache: %w", errors.Join(werr, cerr))
	}
	return os.Rename(f.Name(), filepath.Join(dir, key+".json"))
}

// SerialNumber is the CycloneDX serial number of the SBOM of the image
// with digest d: a UUID URN derived from the digest, so that the SBOM of
// an unchanged image is unchanged.
func SerialNumber(d v1.Hash) string {
	sum := sha256.Sum256([]byte("kimia-sbom:" + d.String()))
	u := hex.EncodeToString(sum[:16])
	return fmt.Sprintf("urn:uuid:%s-%s-5%s-8%s-%s", u[0:8], u[8:12], u[13:16], u[17:20], u[20:32])
}
