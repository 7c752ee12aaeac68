package engine

// Result is what an engine built.
type Result struct {
	// Layout is the OCI image layout directory (the request's OutputDir).
	// Its index.json holds exactly one descriptor: an image manifest for
	// one platform, or an image index for several.
	Layout string
	// StorageDriver is the driver actually used ("native" or "overlay").
	StorageDriver string
	// Rootless reports whether the build ran in a user namespace.
	Rootless bool
	// Cache counts the build steps and how many were served from cache,
	// when the engine knows.
	Cache *CacheStats
	// BaseImages are the images the build pulled, resolved to digests.
	BaseImages []BaseImage
	// Cleanup, when set, finishes work the engine left running once the
	// layout was written (stopping a daemon, removing its temporary
	// state), so that it overlaps the outputs. The caller must call it,
	// once, before it returns; it waits for that work and reports its
	// failure.
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
