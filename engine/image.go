package engine

import "io"

// Image is one platform's image as an engine hands it over: the config it
// wrote and its layers, uncompressed or as compressed blobs that exist
// already. The shared layer (package assemble) compresses what needs it
// with one implementation for both engines and writes the manifests and
// the index, so equal configs and layers give equal digests whichever
// engine built them.
type Image struct {
	Platform Platform
	// Config is the image config JSON as the engine wrote it; its
	// rootfs.diff_ids are the layers' DiffIDs, in order.
	Config []byte
	Layers []Layer
}

// Layer is one layer of an Image.
type Layer struct {
	// DiffID is the digest of the uncompressed tar, as "sha256:<hex>".
	DiffID string
	// Open returns the uncompressed tar; nil when only Blob serves the
	// layer.
	Open func() (io.ReadCloser, error)
	// File is the uncompressed tar's path when the engine holds it as a
	// file, which readers may link but not change.
	File string
	// Blob, when set, is a compressed form of the layer that exists
	// already: a base image's layer as its registry serves it (Keep), or
	// a layer as a registry cache holds it.
	Blob *Blob
}

// Blob is a compressed layer blob.
type Blob struct {
	// Keep says the blob is a base image's layer as its registry serves
	// it: the image keeps it when it is in the compression asked for, so
	// that base layers keep their digests. Other blobs (a layer cached in
	// a registry) are compressed anew, so that an image's digest does not
	// depend on where its layers were cached.
	Keep      bool
	MediaType string
	// Digest is "sha256:<hex>".
	Digest string
	Size   int64
	// Open returns the blob's bytes; nil when the engine does not hold
	// them and Source serves them.
	Open func() (io.ReadCloser, error)
	// Source is the repository the blob was pulled from
	// (registry/repository), when known: a push mounts it from there, or
	// copies it when the engine does not hold it.
	Source string
}
