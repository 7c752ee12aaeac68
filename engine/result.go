package engine

// Result is what an engine built.
type Result struct {
	// Images are the built images, one per platform, in the order of
	// the request's platforms. Their layers can be read until Cleanup.
	Images []Image
	// StorageDriver is the driver actually used ("native" or "overlay").
	StorageDriver string
	// Rootless reports whether the build ran in a user namespace.
	Rootless bool
	// Cache counts the build steps and how many were served from cache,
	// when the engine knows.
	Cache *CacheStats
	// BaseImages are the images the build pulled, resolved to digests.
	BaseImages []BaseImage
	// Cleanup, when set, finishes work the engine left running (stopping
	// a daemon, closing a store, removing temporary state), so that it
	// overlaps the outputs. The caller must call it, once, when it no
	// longer reads the images' layers, and before it returns; it waits
	// for that work and reports its failure.
	Cleanup func() error `json:"-"`
}

// CacheStats counts cacheable steps.
type CacheStats struct {
	Steps  int `json:"steps"`
	Cached int `json:"cached"`
}

// BaseImage is an image the build used, by the name it was asked for and
// the digest it resolved to.
type BaseImage struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
}
